//! Child images: a parent image plus one new layer, as `commit` (and later
//! the builder) make them. The layer tar is unpacked and stored in one pass
//! like an import; the new config extends the parent's history and diff IDs.

use std::io::Read;

use berth_core::{Digest, Reference};

use crate::config::{now_rfc3339, ContainerConfig, History};
use crate::import::{now_nanos, sync_filesystem};
use crate::meta::ImageRecord;
use crate::{ImageError, ImageStore};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The container config the new image carries (already merged).
    pub config: ContainerConfig,
    pub created_by: String,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub tag: Option<Reference>,
}

impl ImageStore {
    /// Adds `layer` (an uncompressed layer tar) on top of `parent`.
    pub fn commit_layer(
        &self,
        parent: &Digest,
        layer: Box<dyn Read + Send>,
        opts: CommitOptions,
    ) -> Result<Digest, ImageError> {
        let parent_record = self
            .meta
            .with(|s| s.images.get(parent).cloned())
            .ok_or_else(|| ImageError::NotFound(parent.to_string()))?;
        let mut config = self.config(parent)?;
        let staged = self.stage_layer(layer)?;
        sync_filesystem(self.content.root())?;
        let created = now_rfc3339();
        let _guard = self.publish.lock().expect("publish lock");
        if self.meta.with(|s| !s.images.contains_key(parent)) {
            return Err(ImageError::Conflict(format!(
                "image {parent} was removed during the commit"
            )));
        }
        let chains = crate::manifest::chain_ids(&parent_record.diff_ids());
        let (layer, _) = self.publish_layer(staged, chains.last(), None)?;
        config.created = Some(created.clone());
        config.author = opts.author.clone().filter(|a| !a.is_empty());
        config.config = Some(opts.config);
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(created),
            created_by: Some(opts.created_by).filter(|c| !c.is_empty()),
            author: opts.author.filter(|a| !a.is_empty()),
            comment: opts.comment.filter(|c| !c.is_empty()),
            empty_layer: false,
            cache_key: None,
        });
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        let id = self.content.write_all(&bytes)?;
        let mut layers = parent_record.layers.clone();
        layers.push(layer);
        let record = ImageRecord {
            id: id.clone(),
            layers,
            added_at: now_nanos(),
            last_tag_time: None,
            parent: Some(parent.clone()),
        };
        self.publish_image(record, opts.tag.as_slice())?;
        Ok(id)
    }
}
