//! The registry role of the API backend: pull, push and login through
//! `berth-distribution`, with `registry-mirrors` and `insecure-registries`
//! from daemon.json and credentials from `X-Registry-Auth`.

use std::sync::Arc;

use berth_api::backend::{ProgressFn, PullRequest, PushRequest, RegistryAuth};
use berth_api::error::ApiResult;
use berth_api::ApiError;
use berth_core::{Digest, Reference};
use berth_distribution::{Credentials, Progress, ProgressSink, RegistryOptions};
use serde_json::{json, Value};

use crate::images::ImageService;

fn e<E: berth_core::HasKind + std::fmt::Display>(err: E) -> ApiError {
    ApiError::from_err(err)
}

/// Docker's progress bar text (`[=====>     ]  1.2MB/3.4MB`).
fn bar(current: u64, total: u64) -> String {
    let human = |n: u64| {
        let f = n as f64;
        if f >= 1e9 {
            format!("{:.3}GB", f / 1e9)
        } else if f >= 1e6 {
            format!("{:.3}MB", f / 1e6)
        } else if f >= 1e3 {
            format!("{:.3}kB", f / 1e3)
        } else {
            format!("{n}B")
        }
    };
    if total == 0 {
        return human(current);
    }
    let width = 50usize;
    let filled = ((current.min(total) as f64 / total as f64) * width as f64) as usize;
    let mut s = String::from("[");
    s.push_str(&"=".repeat(filled.saturating_sub(1)));
    if filled > 0 {
        s.push('>');
    }
    s.push_str(&" ".repeat(width - filled.min(width)));
    s.push_str(&format!("] {:>8}/{}", human(current), human(total)));
    s
}

/// One progress message in Docker's JSON shape.
pub(crate) fn progress_json(p: &Progress) -> Value {
    let mut v = json!({});
    if let Some(aux) = &p.aux {
        v["progressDetail"] = json!({});
        v["aux"] = aux.clone();
        return v;
    }
    v["status"] = json!(p.status);
    match p.detail {
        Some((current, total)) => {
            v["progressDetail"] = json!({"current": current, "total": total});
            v["progress"] = json!(bar(current, total));
        }
        None => v["progressDetail"] = json!({}),
    }
    if let Some(id) = &p.id {
        v["id"] = json!(id);
    }
    v
}

fn sink(progress: ProgressFn) -> ProgressSink {
    Arc::new(move |p: Progress| progress(progress_json(&p)))
}

fn credentials(auth: Option<&RegistryAuth>) -> Option<Credentials> {
    auth.and_then(|a| Credentials::from_header(&a.raw))
}

/// `fromImage` plus `tag` (a tag or a digest) → a reference.
fn pull_reference(from: &str, tag: Option<&str>) -> ApiResult<Reference> {
    let base = Reference::parse_name_only_ok(from).map_err(e)?;
    match tag {
        Some(t) if t.contains(':') => {
            let d: Digest = t
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid digest {t:?}")))?;
            Ok(base.with_digest(d))
        }
        Some(t) => base.with_tag(t).map_err(e),
        None if base.tag().is_some() || base.digest().is_some() => Ok(base),
        None => base.with_tag("latest").map_err(e),
    }
}

impl ImageService {
    fn registry_options(&self) -> RegistryOptions {
        self.registry.clone()
    }

    pub fn pull(&self, req: PullRequest, progress: ProgressFn) -> ApiResult<()> {
        let handle = tokio::runtime::Handle::current();
        // The API route decides (a bare name without `tag`, as dockerd);
        // the engine's own pulls (a build's `FROM`) get `:latest`.
        let base = Reference::parse_name_only_ok(&req.from_image).map_err(e)?;
        if req.all_tags && req.tag.is_none() && base.tag().is_none() && base.digest().is_none() {
            let pulled = berth_distribution::pull::pull_all_tags(
                &handle,
                &self.store,
                &self.registry_options(),
                berth_distribution::pull::PullRequest {
                    reference: base,
                    platform: req.platform,
                    creds: credentials(req.auth.as_ref()),
                },
                sink(progress),
            )
            .map_err(e)?;
            for (r, p) in pulled {
                self.events.image(
                    crate::events::ImageAction::Pull,
                    &p.id.to_string(),
                    Some(&r.familiar()),
                );
            }
            return Ok(());
        }
        let reference = pull_reference(&req.from_image, req.tag.as_deref())?;
        let pulled = berth_distribution::pull::pull(
            &handle,
            &self.store,
            &self.registry_options(),
            berth_distribution::pull::PullRequest {
                reference: reference.clone(),
                platform: req.platform,
                creds: credentials(req.auth.as_ref()),
            },
            sink(progress),
        )
        .map_err(e)?;
        self.events.image(
            crate::events::ImageAction::Pull,
            &pulled.id.to_string(),
            Some(&reference.familiar()),
        );
        Ok(())
    }

    pub fn push(&self, req: PushRequest, progress: ProgressFn) -> ApiResult<()> {
        let base = Reference::parse_name_only_ok(&req.name).map_err(e)?;
        let reference = match (&req.tag, base.tag()) {
            (Some(t), _) => base.with_tag(t).map_err(e)?,
            (None, Some(_)) => base,
            (None, None) => base.with_tag("latest").map_err(e)?,
        };
        let handle = tokio::runtime::Handle::current();
        let id = self.store.resolve(&reference.to_string()).ok();
        berth_distribution::push::push(
            &handle,
            &self.store,
            &self.registry_options(),
            berth_distribution::push::PushRequest {
                reference: reference.clone(),
                creds: credentials(req.auth.as_ref()),
                compression: req
                    .compression
                    .as_deref()
                    .unwrap_or("gzip")
                    .parse()
                    .map_err(e)?,
            },
            sink(progress),
        )
        .map_err(e)?;
        if let Some(id) = id {
            self.events.image(
                crate::events::ImageAction::Push,
                &id.to_string(),
                Some(&reference.familiar()),
            );
        }
        Ok(())
    }

    pub fn login(&self, auth: RegistryAuth) -> ApiResult<()> {
        let creds: Credentials = serde_json::from_str(&auth.raw)
            .map_err(|err| ApiError::bad_request(format!("invalid auth configuration: {err}")))?;
        let handle = tokio::runtime::Handle::current();
        berth_distribution::login(&handle, &self.registry_options(), creds).map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_from_query() {
        let r = pull_reference("busybox", None).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = pull_reference("127.0.0.1:5000/app", Some("v1")).unwrap();
        assert_eq!(r.to_string(), "127.0.0.1:5000/app:v1");
        let d = Digest::sha256_of(b"x");
        let r = pull_reference("busybox", Some(&d.to_string())).unwrap();
        assert_eq!(r.digest(), Some(&d));
    }

    #[test]
    fn progress_messages() {
        let v = progress_json(&Progress {
            id: Some("abc".into()),
            status: "Downloading".into(),
            detail: Some((5, 10)),
            aux: None,
        });
        assert_eq!(v["progressDetail"]["current"], 5);
        assert_eq!(v["id"], "abc");
        assert!(v["progress"].as_str().unwrap().starts_with('['));
    }
}
