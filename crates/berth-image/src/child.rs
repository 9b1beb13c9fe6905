//! Child images as the builder makes them: a parent image (or nothing, for
//! `FROM scratch`) plus a new config and at most one new layer. A step that
//! only changes the config gets an `empty_layer` history entry, as Docker's
//! classic builder records metadata instructions.

use std::io::Read;

use berth_core::Digest;

use crate::config::{
    host_architecture, now_rfc3339, ContainerConfig, History, ImageConfig, RootFs,
};
use crate::import::{now_nanos, sync_filesystem};
use crate::meta::ImageRecord;
use crate::{ImageError, ImageStore};

/// What a build step adds to its parent.
pub struct ChildOptions {
    /// The container config of the new image (already complete).
    pub config: ContainerConfig,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// An uncompressed layer tar; `None` records an empty layer.
    pub layer: Option<Box<dyn Read + Send>>,
    /// The step's portable cache key, recorded in the history entry.
    pub cache_key: Option<String>,
}

impl ImageStore {
    /// Makes an untagged image from `parent` (`None`: an empty root file
    /// system) and `opts`. Returns its ID.
    pub fn commit_child(
        &self,
        parent: Option<&Digest>,
        opts: ChildOptions,
    ) -> Result<Digest, ImageError> {
        let parent_record = match parent {
            Some(p) => Some(
                self.meta
                    .with(|s| s.images.get(p).cloned())
                    .ok_or_else(|| ImageError::NotFound(p.to_string()))?,
            ),
            None => None,
        };
        let mut config = match parent {
            Some(p) => self.config(p)?,
            None => ImageConfig {
                architecture: host_architecture().to_string(),
                os: "linux".into(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            },
        };
        let staged = match opts.layer {
            Some(layer) => {
                let staged = self.stage_layer(layer)?;
                sync_filesystem(self.content.root())?;
                Some(staged)
            }
            None => None,
        };
        let created = now_rfc3339();
        let _guard = self.publish.lock().expect("publish lock");
        if let Some(p) = parent {
            if self.meta.with(|s| !s.images.contains_key(p)) {
                return Err(ImageError::Conflict(format!(
                    "image {p} was removed during the build"
                )));
            }
        }
        let mut layers = parent_record
            .as_ref()
            .map(|r| r.layers.clone())
            .unwrap_or_default();
        let empty_layer = staged.is_none();
        if let Some(staged) = staged {
            let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
            let chains = crate::manifest::chain_ids(&diff_ids);
            let (layer, _) = self.publish_layer(staged, chains.last(), None)?;
            config.rootfs.diff_ids.push(layer.diff_id.clone());
            layers.push(layer);
        }
        config.created = Some(created.clone());
        config.config = Some(opts.config);
        config.history.push(History {
            created: Some(created),
            created_by: Some(opts.created_by).filter(|c| !c.is_empty()),
            author: None,
            comment: None,
            empty_layer,
            cache_key: opts.cache_key,
        });
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        let id = self.content.write_all(&bytes)?;
        let record = ImageRecord {
            id: id.clone(),
            layers,
            added_at: now_nanos(),
            last_tag_time: None,
            parent: parent.cloned(),
        };
        self.publish_image(record, &[])?;
        Ok(id)
    }

    /// Makes the image a build step on `parent` would make, from the step
    /// recorded as entry `index` of `source`'s history: that entry (its
    /// time included) and, unless it is an empty layer, `source`'s layer for
    /// it, with `config` as the container config. The `--cache-from` path
    /// (moby's `restoreCachedImage`): the caller has checked that `parent`'s
    /// history and layers are a prefix of `source`'s. Returns the new ID.
    pub fn commit_cached_step(
        &self,
        parent: Option<&Digest>,
        source: &Digest,
        index: usize,
        config: ContainerConfig,
    ) -> Result<Digest, ImageError> {
        let record = |id: &Digest| {
            self.meta
                .with(|s| s.images.get(id).cloned())
                .ok_or_else(|| ImageError::NotFound(id.to_string()))
        };
        let source_record = record(source)?;
        let source_config = self.config(source)?;
        let entry = source_config.history.get(index).cloned().ok_or_else(|| {
            ImageError::InvalidArgument(format!("image {source} has no history entry {index}"))
        })?;
        let (mut image, mut layers) = match parent {
            Some(p) => (self.config(p)?, record(p)?.layers),
            None => (
                ImageConfig {
                    architecture: source_config.architecture.clone(),
                    os: source_config.os.clone(),
                    variant: source_config.variant.clone(),
                    rootfs: RootFs {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                Vec::new(),
            ),
        };
        if !entry.empty_layer {
            let n = source_config.history[..index]
                .iter()
                .filter(|h| !h.empty_layer)
                .count();
            let layer = source_record.layers.get(n).cloned().ok_or_else(|| {
                ImageError::InvalidArgument(format!(
                    "image {source}: history entry {index} has no layer"
                ))
            })?;
            image.rootfs.diff_ids.push(layer.diff_id.clone());
            layers.push(layer);
        }
        if layers
            .iter()
            .map(|l| &l.diff_id)
            .ne(image.rootfs.diff_ids.iter())
            || source_record.layers.len() < layers.len()
            || source_record.layers[..layers.len()] != layers[..]
        {
            return Err(ImageError::InvalidArgument(format!(
                "image {source} does not build on the given parent"
            )));
        }
        image.created = entry.created.clone();
        image.config = Some(config);
        image.history.push(entry);
        let bytes = serde_json::to_vec(&image).expect("config serializes");
        let _guard = self.publish.lock().expect("publish lock");
        let id = self.content.write_all(&bytes)?;
        self.publish_image(
            ImageRecord {
                id: id.clone(),
                layers,
                added_at: now_nanos(),
                last_tag_time: None,
                parent: parent.cloned(),
            },
            &[],
        )?;
        Ok(id)
    }

    /// Whether an image with this ID exists.
    pub fn exists(&self, id: &Digest) -> bool {
        self.meta.with(|s| s.images.contains_key(id))
    }
}
