//! Registering images that come from a registry, and what a push needs
//! from the store.
//!
//! A pull stages each missing layer independently (in parallel, outside the
//! publish lock) with [`ImageStore::stage_pulled_layer`], then
//! [`ImageStore::register_pulled`] publishes the layers in order, checking
//! each against the config's `rootfs.diff_ids`, stores the config blob and
//! commits the image record, its tag and its repository digest in one
//! metadata transaction — the same publish order as `load`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use berth_core::{Digest, Reference};
use berth_snapshot::{decompressed_buffered, SnapshotInfo};

use crate::config::ImageConfig;
use crate::import::{now_nanos, sync_filesystem, StagedLayer};
use crate::manifest::chain_ids;
use crate::meta::{Change, ImageRecord, LayerRecord};
use crate::{ImageError, ImageStore};

/// A downloaded layer unpacked into a private snapshot, not yet visible.
pub struct PulledLayer(StagedLayer);

/// A private directory under the store's `tmp/`, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ImageStore {
    /// A fresh scratch directory on the store's file system.
    pub fn scratch_dir(&self, prefix: &str) -> Result<ScratchDir, ImageError> {
        let dir = self
            .tmp
            .join(format!("{prefix}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)
            .map_err(ImageError::io(format!("creating {}", dir.display())))?;
        Ok(ScratchDir(dir))
    }

    /// Whether layer `i` of an image with these diff IDs is already unpacked
    /// here (its blob and its chain's snapshot exist).
    pub fn has_layer(&self, diff_ids: &[Digest], i: usize) -> bool {
        let chains = chain_ids(&diff_ids[..=i]);
        self.content.exists(&diff_ids[i]) && self.snapshots.exists(chains[i].hex())
    }

    /// Decompresses (gzip, zstd or none, sniffed) and unpacks a layer blob.
    pub fn stage_pulled_layer(
        &self,
        blob: impl BufRead + Send + 'static,
    ) -> Result<PulledLayer, ImageError> {
        let reader = decompressed_buffered(blob).map_err(ImageError::io("reading layer"))?;
        Ok(PulledLayer(self.stage_layer(reader)?))
    }

    /// Publishes a pulled image: `layers[i]` is `None` when [`has_layer`]
    /// said the layer is present. Tags `tag` and records `repo_digest`.
    /// Returns the image ID and whether the tag already pointed at it with
    /// nothing new added ("Image is up to date").
    ///
    /// [`has_layer`]: ImageStore::has_layer
    pub fn register_pulled(
        &self,
        config_bytes: &[u8],
        layers: Vec<Option<PulledLayer>>,
        tag: Option<&Reference>,
        repo_digest: Option<&Reference>,
    ) -> Result<(Digest, bool), ImageError> {
        let config = ImageConfig::parse(config_bytes)
            .map_err(|e| ImageError::InvalidArgument(format!("image config is not valid: {e}")))?;
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != layers.len() {
            return Err(ImageError::InvalidArgument(format!(
                "the manifest lists {} layers but the image config has {} diff ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        // Durability in one batch, not per layer: every staged blob and
        // snapshot (with its info) is handed to the kernel, one syncfs(2)
        // makes all of it durable, the renames that publish them follow,
        // and two directory fsyncs make the renames durable before the
        // metadata commit makes the image visible. A crash at any point
        // leaves either nothing visible or complete layers (each renamed
        // only after its bytes were synced), never an image whose layers
        // are incomplete.
        let mut sealed = Vec::with_capacity(layers.len());
        for (i, l) in layers.into_iter().enumerate() {
            let Some(PulledLayer(mut staged)) = l else {
                sealed.push(None);
                continue;
            };
            staged.blob.flush_data()?;
            let info = SnapshotInfo {
                parent: i.checked_sub(1).map(|p| chains[p].hex().to_string()),
                size: staged.stats.size,
                diff_id: diff_ids[i].to_string(),
            };
            drop(
                self.snapshots
                    .seal(&staged.staging, chains[i].hex(), &info)?,
            );
            sealed.push(Some(staged));
        }
        sync_filesystem(self.content.root())?;
        sync_filesystem(self.snapshots.root())?;
        let _guard = self.publish.lock().expect("publish lock");
        let mut records = Vec::new();
        for (i, l) in sealed.into_iter().enumerate() {
            let record = match l {
                Some(StagedLayer {
                    blob,
                    staging,
                    stats,
                }) => {
                    let size = blob.written();
                    blob.commit_presynced(Some((&diff_ids[i], size)))
                        .map_err(|e| match e {
                            berth_content::ContentError::DigestMismatch { actual, .. } => {
                                ImageError::InvalidArgument(format!(
                                    "layer {} has diff id {actual}, but the image config says {}",
                                    i + 1,
                                    diff_ids[i]
                                ))
                            }
                            e => e.into(),
                        })?;
                    self.snapshots.publish_sealed(staging, chains[i].hex())?;
                    LayerRecord {
                        diff_id: diff_ids[i].clone(),
                        size: stats.size,
                    }
                }
                None => {
                    let info = self.snapshots.info(chains[i].hex()).map_err(|_| {
                        ImageError::Conflict(format!(
                            "layer {} was removed during the pull; retry",
                            diff_ids[i]
                        ))
                    })?;
                    LayerRecord {
                        diff_id: diff_ids[i].clone(),
                        size: info.size,
                    }
                }
            };
            records.push(record);
        }
        self.content.sync_blobs()?;
        self.snapshots.sync_root()?;
        let id = self.content.write_all(config_bytes)?;
        let state = self.meta.snapshot();
        let tag_key = tag.map(|t| t.to_string());
        let digest_key = repo_digest.map(|d| d.to_string());
        let known = state.images.contains_key(&id);
        let up_to_date = known
            && tag_key
                .as_ref()
                .is_none_or(|k| state.tags.get(k) == Some(&id))
            && digest_key
                .as_ref()
                .is_none_or(|k| state.tags.get(k) == Some(&id));
        if up_to_date {
            return Ok((id, true));
        }
        let mut record = state.images.get(&id).cloned().unwrap_or(ImageRecord {
            id: id.clone(),
            layers: records,
            added_at: now_nanos(),
            last_tag_time: None,
            parent: None,
        });
        let mut change = Change::default();
        if let Some(k) = tag_key {
            record.last_tag_time = Some(crate::config::now_rfc3339());
            change.set_tags.push((k, id.clone()));
        }
        if let Some(k) = digest_key {
            change.set_tags.push((k, id.clone()));
        }
        change.put_images.push(record);
        self.meta.apply(change)?;
        Ok((id, false))
    }

    /// Records `name@digest` for an image after a push.
    pub fn add_repo_digest(&self, id: &Digest, repo_digest: &Reference) -> Result<(), ImageError> {
        let _guard = self.publish.lock().expect("publish lock");
        if !self.meta.with(|s| s.images.contains_key(id)) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        self.meta.apply(Change {
            set_tags: vec![(repo_digest.to_string(), id.clone())],
            ..Default::default()
        })
    }

    /// The uncompressed layer blob (its digest is the diff ID).
    pub fn open_layer(&self, diff_id: &Digest) -> Result<std::fs::File, ImageError> {
        Ok(self.content.open_blob(diff_id)?)
    }

    /// The raw config blob (its digest is the image ID).
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>, ImageError> {
        Ok(self.content.read(id)?)
    }
}
