//! The image role of the API backend: converts between the image store's
//! types and the Engine API's wire types, applies list filters, and
//! publishes image events.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use berth_api::backend::{ImageBackend, ImageListOptions, ImportRequest, SaveJob};
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::types::*;
use berth_api::ApiError;
use berth_core::{Digest, ErrorKind, Reference};
use berth_image::{ImageError, ImageInfo, ImportOptions, Removed};
use serde_json::{json, Value};

use super::Api;

fn e<E: berth_core::HasKind + std::fmt::Display>(err: E) -> ApiError {
    ApiError::from_err(err)
}

/// An error reading what the store holds of an image the client's name
/// resolved to. The image record gone (removed meanwhile) is still that
/// image's 404; anything else missing (its config blob under the data root)
/// is the engine's fault, not the client's.
fn stored_image_error(err: ImageError) -> ApiError {
    match err {
        ImageError::NotFound(_) => ApiError::from_err(err),
        err if berth_core::HasKind::kind(&err) == ErrorKind::NotFound => {
            ApiError::internal(format!("reading a stored image: {err}"))
        }
        err => ApiError::from_err(err),
    }
}

/// Go's `path.Match` subset Docker uses for `reference=` filters:
/// `*` (no '/'), `?`, literal characters.
fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && m(p, &s[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

fn summary(info: &ImageInfo) -> ImageSummary {
    ImageSummary {
        id: info.id().to_string(),
        parent_id: info
            .record
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        repo_tags: info.tags.iter().map(|t| t.familiar()).collect(),
        repo_digests: info.repo_digests.iter().map(|t| t.familiar()).collect(),
        created: info.config.created_unix(),
        size: info.record.size() as i64,
        shared_size: -1,
        virtual_size: None,
        labels: info.config.labels(),
        containers: -1,
    }
}

fn label_matches(filter: &str, labels: &BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(filter),
    }
}

/// The config's container defaults in the shape `docker image inspect` prints.
fn config_value(info: &ImageInfo) -> Value {
    let mut base = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null,
        "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    if let Some(c) = &info.config.config {
        if let (Value::Object(b), Ok(Value::Object(over))) = (&mut base, serde_json::to_value(c)) {
            for (k, v) in over {
                b.insert(k, v);
            }
        }
    }
    base
}

fn parse_until(v: &str) -> Result<i64, ApiError> {
    v.split('.')
        .next()
        .unwrap_or("")
        .parse::<i64>()
        .map_err(|_| {
            ApiError::bad_request(format!("invalid until timestamp {v:?}: use unix seconds"))
        })
}

impl Api {
    fn find(&self, name: &str) -> ApiResult<ImageInfo> {
        let id = self.images.store.resolve(name).map_err(e)?;
        self.images.store.info(&id).map_err(stored_image_error)
    }

    fn created_of(&self, name: &str) -> ApiResult<i64> {
        Ok(self.find(name)?.config.created_unix())
    }
}

impl ImageBackend for Api {
    fn list_images(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>> {
        let f = &opts.filters;
        let dangling = match f.get("dangling") {
            [] => None,
            [v] if v == "true" || v == "1" => Some(true),
            [v] if v == "false" || v == "0" => Some(false),
            v => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        let before = f
            .get("before")
            .iter()
            .map(|n| self.created_of(n))
            .collect::<ApiResult<Vec<_>>>()?;
        let since = f
            .get("since")
            .iter()
            .map(|n| self.created_of(n))
            .collect::<ApiResult<Vec<_>>>()?;
        let until = f
            .get("until")
            .iter()
            .map(|v| parse_until(v))
            .collect::<ApiResult<Vec<_>>>()?;
        let mut out = Vec::new();
        for info in self.images.store.list().map_err(e)? {
            let created = info.config.created_unix();
            if let Some(d) = dangling {
                if d != info.tags.is_empty() {
                    continue;
                }
            }
            if !f
                .get("label")
                .iter()
                .all(|l| label_matches(l, &info.config.labels()))
            {
                continue;
            }
            if before.iter().any(|b| created >= *b)
                || since.iter().any(|s| created <= *s)
                || until.iter().any(|u| created > *u)
            {
                continue;
            }
            let mut s = summary(&info);
            let refs = f.get("reference");
            if !refs.is_empty() {
                // Keep only the tags that match, as dockerd does.
                let tags: Vec<String> = info
                    .tags
                    .iter()
                    .filter(|t| {
                        refs.iter().any(|p| {
                            glob(p, &t.familiar())
                                || glob(p, &t.familiar_name())
                                || glob(p, &t.to_string())
                        })
                    })
                    .map(|t| t.familiar())
                    .collect();
                if tags.is_empty() {
                    continue;
                }
                s.repo_tags = tags;
            }
            out.push(s);
        }
        Ok(out)
    }

    fn inspect_image(&self, name: &str) -> ApiResult<ImageInspect> {
        let info = self.find(name)?;
        let dirs = self.images.store.layer_dirs(info.id()).map_err(e)?;
        let mut data = BTreeMap::new();
        if let Some((top, lower)) = dirs.split_last() {
            data.insert("UpperDir".into(), top.display().to_string());
            if !lower.is_empty() {
                data.insert("LowerDir".into(), super::lower_dir(lower));
            }
        }
        let c = &info.config;
        Ok(ImageInspect {
            id: info.id().to_string(),
            repo_tags: info.tags.iter().map(|t| t.familiar()).collect(),
            repo_digests: info.repo_digests.iter().map(|t| t.familiar()).collect(),
            parent: info
                .record
                .parent
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            // Docker keeps the import/commit message at top level; configs
            // written by berth keep it in the newest history entry.
            comment: c
                .comment
                .clone()
                .or_else(|| c.history.last().and_then(|h| h.comment.clone()))
                .unwrap_or_default(),
            created: c.created.clone().unwrap_or_default(),
            docker_version: c
                .extra
                .get("docker_version")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            author: c.author.clone().unwrap_or_default(),
            config: config_value(&info),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            size: info.record.size() as i64,
            virtual_size: None,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFs {
                kind: "layers".into(),
                layers: c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            metadata: ImageMetadata {
                last_tag_time: info.record.last_tag_time.clone(),
            },
        })
    }

    fn image_history(&self, name: &str) -> ApiResult<Vec<HistoryItem>> {
        let info = self.find(name)?;
        let mut layers = info.record.layers.iter();
        let mut items: Vec<HistoryItem> = Vec::new();
        if info.config.history.is_empty() {
            for l in info.record.layers.iter() {
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: info.config.created_unix(),
                    size: l.size as i64,
                    ..Default::default()
                });
            }
        } else {
            for h in &info.config.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layers.next().map(|l| l.size as i64).unwrap_or(0)
                };
                let created = h
                    .created
                    .as_deref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created,
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: vec![],
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = info.id().to_string();
            top.tags = info.tags.iter().map(|t| t.familiar()).collect();
        }
        Ok(items)
    }

    fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()> {
        let target = Reference::from_repo_tag(repo, tag).map_err(e)?;
        self.images.tag(name, &target).map_err(e)?;
        Ok(())
    }

    fn remove_image(&self, name: &str, force: bool, _noprune: bool) -> ApiResult<Vec<DeleteItem>> {
        let removed = self
            .images
            .remove(name, force, &|id: &Digest| {
                self.containers
                    .store()
                    .users_of(&id.to_string())
                    .into_iter()
                    .max_by_key(|(_, running)| *running)
            })
            .map_err(e)?;
        Ok(delete_items(removed))
    }

    fn prune_images(&self, filters: &Filters) -> ApiResult<ImagePruneReport> {
        let all = match filters.get("dangling") {
            [] => false,
            [v] if v == "true" || v == "1" => false,
            [v] if v == "false" || v == "0" => true,
            v => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'dangling={}'",
                    v.join(",")
                )))
            }
        };
        let labels = filters.get("label").to_vec();
        let not_labels = filters.get("label!").to_vec();
        let until = filters
            .get("until")
            .iter()
            .map(|v| parse_until(v))
            .collect::<ApiResult<Vec<_>>>()?;
        let keep = move |info: &ImageInfo| {
            let l = info.config.labels();
            !labels.iter().all(|f| label_matches(f, &l))
                || not_labels.iter().any(|f| label_matches(f, &l))
                || until.iter().any(|u| info.config.created_unix() > *u)
        };
        let (removed, reclaimed) = self
            .images
            .prune(all, &keep, &|id: &Digest| {
                self.containers
                    .store()
                    .users_of(&id.to_string())
                    .into_iter()
                    .next()
            })
            .map_err(e)?;
        let list: Vec<BTreeMap<String, String>> = delete_items(removed)
            .into_iter()
            .map(|i| {
                let mut m = BTreeMap::new();
                match i {
                    DeleteItem::Untagged(s) => m.insert("Untagged".to_string(), s),
                    DeleteItem::Deleted(s) => m.insert("Deleted".to_string(), s),
                };
                m
            })
            .collect();
        Ok(ImagePruneReport {
            images_deleted: if list.is_empty() { None } else { Some(list) },
            space_reclaimed: reclaimed,
        })
    }

    fn import_image(&self, body: Box<dyn Read + Send>, req: ImportRequest) -> ApiResult<String> {
        let tag = match &req.repo {
            Some(r) => Some(Reference::from_repo_tag(r, req.tag.as_deref()).map_err(e)?),
            None => None,
        };
        let opts = ImportOptions {
            tag: tag.clone(),
            changes: req.changes,
            message: req.message,
            source: req.source,
        };
        let id = self.images.import(body, opts).map_err(e)?;
        Ok(id.to_string())
    }

    fn load_images(&self, body: Box<dyn Read + Send>) -> ApiResult<Vec<String>> {
        let loaded = self.images.load(body).map_err(e)?;
        let mut lines = Vec::new();
        for l in loaded {
            if l.tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", l.id));
            }
            for t in &l.tags {
                lines.push(format!("Loaded image: {}", t.familiar()));
            }
        }
        Ok(lines)
    }

    fn pull_image(
        &self,
        req: berth_api::backend::PullRequest,
        progress: berth_api::backend::ProgressFn,
    ) -> ApiResult<()> {
        self.images.pull(req, progress)
    }

    fn push_image(
        &self,
        req: berth_api::backend::PushRequest,
        progress: berth_api::backend::ProgressFn,
    ) -> ApiResult<()> {
        self.images.push(req, progress)
    }

    fn registry_login(&self, auth: berth_api::backend::RegistryAuth) -> ApiResult<()> {
        self.images.login(auth)
    }

    fn save_images(&self, names: &[String], format: Option<&str>) -> ApiResult<SaveJob> {
        let format: berth_image::SaveFormat = format.unwrap_or("").parse().map_err(e)?;
        let plan = self.images.store.plan_save(names).map_err(e)?;
        let images = self.images.clone();
        Ok(Box::new(move |out: &mut dyn Write| {
            images.write_save(&plan, format, out).map_err(e)
        }))
    }
}

/// A removal report in the API's shape.
fn delete_items(removed: Vec<Removed>) -> Vec<DeleteItem> {
    removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => DeleteItem::Untagged(t),
            Removed::Deleted(id) => DeleteItem::Deleted(id.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_blob_of_a_known_image_is_internal() {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let gone = stored_image_error(ImageError::NotFound("busybox".into()));
        assert_eq!(gone.kind, ErrorKind::NotFound);
        let blob = stored_image_error(berth_content::ContentError::NotFound(digest).into());
        assert_eq!(blob.kind, ErrorKind::Internal, "{}", blob.message);
        assert!(blob.message.contains("sha256:aaaa"), "{}", blob.message);
    }

    #[test]
    fn reference_globs() {
        assert!(glob("busybox", "busybox"));
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("*", "library/busybox"));
        assert!(glob("*/app", "me/app"));
        assert!(!glob("busybox", "busybox2"));
    }
}
