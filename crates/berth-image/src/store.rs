//! The image store: composition of content, snapshots and metadata, with
//! name resolution, tagging, removal and garbage collection.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_content::ContentStore;
use berth_core::{Digest, Reference};
use berth_snapshot::Snapshotter;

use crate::config::ImageConfig;
use crate::manifest::chain_ids;
use crate::meta::{Change, ImageRecord, MetaStore, State};
use crate::ImageError;

/// Everything callers usually want about one image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub record: ImageRecord,
    pub config: ImageConfig,
    /// Full reference strings, sorted.
    pub tags: Vec<Reference>,
    /// `name@sha256:…` of the manifests this image was pulled or pushed as.
    pub repo_digests: Vec<Reference>,
}

impl ImageInfo {
    pub fn id(&self) -> &Digest {
        &self.record.id
    }
}

/// One line of an `rmi` report.
#[derive(Debug, Clone, PartialEq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

pub struct ImageStore {
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Snapshotter,
    pub(crate) meta: MetaStore,
    /// Private scratch space for loads; emptied at open.
    pub(crate) tmp: PathBuf,
    /// Serializes the short publish and delete phases so garbage collection
    /// never removes a blob or snapshot that a concurrent add is about to
    /// reference. Long work (streaming, unpacking) happens outside it.
    pub(crate) publish: Mutex<()>,
}

impl ImageStore {
    /// Opens the store under `root` (the daemon's data-root), removes
    /// leftovers of interrupted work and collects unreferenced content.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(&root.join("content"))?;
        let snapshots = Snapshotter::open(&root.join("snapshots"))?;
        let meta = MetaStore::open(&root.join("meta.db"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)
                .map_err(ImageError::io(format!("clearing {}", tmp.display())))?;
        }
        fs::create_dir_all(&tmp).map_err(ImageError::io(format!("creating {}", tmp.display())))?;
        let store = ImageStore {
            content,
            snapshots,
            meta,
            tmp,
            publish: Mutex::new(()),
        };
        let _guard = store.publish.lock().expect("publish lock");
        let (blobs, snaps) = store.collect_garbage()?;
        if blobs + snaps > 0 {
            tracing::info!(
                blobs,
                snapshots = snaps,
                "removed unreferenced content at start-up"
            );
        }
        drop(_guard);
        Ok(store)
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// Removes blobs and snapshots no image references. Call with `publish` held.
    pub(crate) fn collect_garbage(&self) -> Result<(usize, usize), ImageError> {
        let state = self.meta.snapshot();
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut snaps: BTreeSet<String> = BTreeSet::new();
        for rec in state.images.values() {
            blobs.insert(rec.id.clone());
            let diffs = rec.diff_ids();
            blobs.extend(diffs.iter().cloned());
            snaps.extend(chain_ids(&diffs).iter().map(|c| c.hex().to_string()));
        }
        // Compressed forms kept for pushes live as long as their layer: an
        // entry whose layer no image references is forgotten first, then
        // its blob goes with the sweep below (a crash in between leaves an
        // unreferenced blob, which the next collection removes).
        let mut stale = Vec::new();
        for (key, entry) in self.meta.compressed_all()? {
            match entry {
                Some((diff_id, blob)) if blobs.contains(&diff_id) => {
                    blobs.insert(blob);
                }
                _ => stale.push(key),
            }
        }
        self.meta.remove_compressed(&stale)?;
        // Where blobs were pushed matters only for blobs still kept (a
        // push can note a repository for a blob that was not kept).
        self.meta.retain_blob_repos(|d| blobs.contains(d))?;
        let mut removed_blobs = 0;
        for d in self.content.list()? {
            if !blobs.contains(&d) {
                self.content.delete(&d)?;
                removed_blobs += 1;
            }
        }
        let mut removed_snaps = 0;
        for key in self.snapshots.list()? {
            if !snaps.contains(&key) {
                self.snapshots.remove(&key)?;
                removed_snaps += 1;
            }
        }
        Ok((removed_blobs, removed_snaps))
    }

    pub fn state(&self) -> State {
        self.meta.snapshot()
    }

    /// Finds an image by reference (`busybox`, `busybox:1`), full ID
    /// (`sha256:…`) or unique ID prefix (`3f57d9401f8d`), like Docker.
    pub fn resolve(&self, name: &str) -> Result<Digest, ImageError> {
        let state = self.meta.snapshot();
        resolve_in(&state, name)
    }

    pub fn config(&self, id: &Digest) -> Result<ImageConfig, ImageError> {
        let bytes = self.content.read(id)?;
        ImageConfig::parse(&bytes)
            .map_err(|e| ImageError::Archive(format!("config {id} is not valid JSON: {e}")))
    }

    pub fn info(&self, id: &Digest) -> Result<ImageInfo, ImageError> {
        let state = self.meta.snapshot();
        self.info_in(&state, id)
    }

    fn info_in(&self, state: &State, id: &Digest) -> Result<ImageInfo, ImageError> {
        let record = state
            .images
            .get(id)
            .cloned()
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        let config = self.config(id)?;
        let mut tags: Vec<Reference> = state
            .tags_of(id)
            .iter()
            .filter_map(|t| Reference::parse_normalized(t).ok())
            .collect();
        tags.sort();
        let mut repo_digests: Vec<Reference> = state
            .digests_of(id)
            .iter()
            .filter_map(|t| Reference::parse_normalized(t).ok())
            .collect();
        repo_digests.sort();
        Ok(ImageInfo {
            record,
            config,
            tags,
            repo_digests,
        })
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let state = self.meta.snapshot();
        let mut out = Vec::with_capacity(state.images.len());
        for id in state.images.keys() {
            out.push(self.info_in(&state, id)?);
        }
        out.sort_by(|a, b| {
            b.config
                .created_unix()
                .cmp(&a.config.created_unix())
                .then(b.record.added_at.cmp(&a.record.added_at))
        });
        Ok(out)
    }

    /// The unpacked layers of an image, lowest first (overlayfs wants the
    /// reverse order in `lowerdir`).
    pub fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>, ImageError> {
        let rec = self
            .meta
            .with(|s| s.images.get(id).cloned())
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        chain_ids(&rec.diff_ids())
            .iter()
            .map(|c| self.snapshots.path(c.hex()).map_err(ImageError::from))
            .collect()
    }

    /// Points `target` at the image `source` names. Returns the image ID.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<Digest, ImageError> {
        if target.digest().is_some() {
            return Err(ImageError::InvalidArgument(format!(
                "refusing to create a tag with a digest reference: {}",
                target.familiar()
            )));
        }
        let _guard = self.publish.lock().expect("publish lock");
        let id = self.resolve(source)?;
        let mut rec = self
            .meta
            .with(|s| s.images.get(&id).cloned())
            .ok_or_else(|| ImageError::NotFound(source.to_string()))?;
        rec.last_tag_time = Some(crate::config::now_rfc3339());
        self.meta.apply(Change {
            put_images: vec![rec],
            set_tags: vec![(target.to_string(), id.clone())],
            ..Default::default()
        })?;
        Ok(id)
    }

    /// `rmi`: untags, and deletes the image once nothing names it.
    /// `in_use` names a container using an image and whether it runs: a
    /// running one blocks deletion, a stopped one unless `force` (which then
    /// only untags, since the container still needs the layers).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<Vec<Removed>, ImageError> {
        let _guard = self.publish.lock().expect("publish lock");
        let state = self.meta.snapshot();
        let id = resolve_in(&state, name)?;
        let tags = state.tags_of(&id);
        let by_tag = tag_key(&state, name);
        let mut change = Change::default();
        let mut report = Vec::new();

        let untag_only = match &by_tag {
            Some(key) => tags.len() > 1 || (tags.len() == 1 && tags[0] != *key),
            None => false,
        };
        if untag_only {
            let key = by_tag.expect("checked");
            change.remove_tags.push(key.clone());
            report.push(Removed::Untagged(familiar(&key)));
            self.meta.apply(change)?;
            return Ok(report);
        }
        if by_tag.is_none() && tags.len() > 1 && !force {
            return Err(ImageError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        let user = in_use(&id);
        if let Some((user, running)) = &user {
            if *running {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    id.short(),
                    &user[..user.len().min(12)]
                )));
            }
            if !force {
                return Err(ImageError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    id.short(),
                    &user[..user.len().min(12)]
                )));
            }
            // Forced: the tags go, the image stays for the container (dangling).
            for t in &tags {
                change.remove_tags.push(t.clone());
                report.push(Removed::Untagged(familiar(t)));
            }
            self.meta.apply(change)?;
            return Ok(report);
        }
        let children: Vec<&Digest> = state
            .images
            .values()
            .filter(|r| r.parent.as_ref() == Some(&id))
            .map(|r| &r.id)
            .collect();
        if !children.is_empty() && !force {
            return Err(ImageError::Conflict(format!("conflict: unable to delete {} (cannot be forced) - image has dependent child images", id.short())));
        }
        for t in &tags {
            change.remove_tags.push(t.clone());
            report.push(Removed::Untagged(familiar(t)));
        }
        change.delete_images.push(id.clone());
        report.push(Removed::Deleted(id.clone()));
        self.meta.apply(change)?;
        self.collect_garbage()?;
        Ok(report)
    }

    /// Deletes every untagged image for which `keep` is false (and, with
    /// `all`, tagged ones too), skipping images `in_use`. Returns what was
    /// removed and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&ImageInfo) -> bool,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<(Vec<Removed>, u64), ImageError> {
        let _guard = self.publish.lock().expect("publish lock");
        let before = self.content.usage();
        let state = self.meta.snapshot();
        let mut change = Change::default();
        let mut report = Vec::new();
        for id in state.images.keys() {
            let tags = state.tags_of(id);
            if (!tags.is_empty() && !all) || in_use(id).is_some() {
                continue;
            }
            if state.images.values().any(|r| r.parent.as_ref() == Some(id)) {
                continue;
            }
            let info = self.info_in(&state, id)?;
            if keep(&info) {
                continue;
            }
            for t in tags {
                report.push(Removed::Untagged(familiar(&t)));
                change.remove_tags.push(t);
            }
            change.delete_images.push(id.clone());
            report.push(Removed::Deleted(id.clone()));
        }
        if !change.delete_images.is_empty() {
            self.meta.apply(change)?;
            self.collect_garbage()?;
        }
        let after = self.content.usage();
        Ok((report, before.saturating_sub(after)))
    }

    /// Bytes used by blobs and unpacked snapshots.
    pub fn disk_usage(&self) -> u64 {
        self.content.usage()
    }

    /// Publishes a new image: layers' blobs and snapshots must already be
    /// committed (with `publish` held by the caller), then the record and
    /// tags go in one transaction; tags that pointed elsewhere move here.
    pub(crate) fn publish_image(
        &self,
        record: ImageRecord,
        tags: &[Reference],
    ) -> Result<(), ImageError> {
        let mut rec = record;
        if !tags.is_empty() {
            rec.last_tag_time = Some(crate::config::now_rfc3339());
        }
        let existing = self.meta.with(|s| s.images.get(&rec.id).cloned());
        if let Some(old) = existing {
            // Same config digest, same image: keep the first record's time.
            rec.added_at = old.added_at;
        }
        let change = Change {
            set_tags: tags
                .iter()
                .map(|t| (t.to_string(), rec.id.clone()))
                .collect(),
            put_images: vec![rec],
            ..Default::default()
        };
        self.meta.apply(change)
    }
}

fn familiar(full: &str) -> String {
    Reference::parse_normalized(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// The tag key `name` denotes, if it is a reference present in the store.
fn tag_key(state: &State, name: &str) -> Option<String> {
    let r = Reference::parse_normalized(name).ok()?;
    let key = r.to_string();
    state.tags.contains_key(&key).then_some(key)
}

pub(crate) fn resolve_in(state: &State, name: &str) -> Result<Digest, ImageError> {
    if let Some(key) = tag_key(state, name) {
        return Ok(state.tags[&key].clone());
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        let matches: Vec<&Digest> = state
            .images
            .keys()
            .filter(|d| d.hex().starts_with(hex))
            .collect();
        match matches.len() {
            1 => return Ok(matches[0].clone()),
            0 => {}
            _ => {
                return Err(ImageError::InvalidArgument(format!(
                    "image ID prefix {name:?} is ambiguous: {} images match",
                    matches.len()
                )))
            }
        }
    }
    // A reference that parses but is not present, or garbage: both not found,
    // but a malformed name says why.
    match Reference::parse_normalized(name) {
        Ok(_) => Err(ImageError::NotFound(name.to_string())),
        Err(_) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Err(ImageError::NotFound(name.to_string()))
        }
        Err(e) => Err(ImageError::Reference(e)),
    }
}
