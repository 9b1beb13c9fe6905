//! The image service: the content-addressed image store and the registry
//! client (pull, push, login with `registry-mirrors` and
//! `insecure-registries`), publishing the image events they cause.
//!
//! It knows nothing of containers: an operation that must not touch an
//! image in use (remove, prune) takes the question "who uses this image?"
//! from its caller as a function.

use std::sync::Arc;

use berth_core::{Digest, Reference};
use berth_distribution::RegistryOptions;
use berth_image::{ImageError, ImageStore, Removed};

use crate::events::EventBus;

pub struct ImageService {
    /// The store itself: read-only lookups (resolve, info, layers) go
    /// straight to it.
    pub store: ImageStore,
    pub(crate) events: Arc<EventBus>,
    pub(crate) registry: RegistryOptions,
}

/// Answers whether an image is used by a container: `(container id, running)`.
pub type InUse<'a> = &'a dyn Fn(&Digest) -> Option<(String, bool)>;

impl ImageService {
    pub fn new(store: ImageStore, events: Arc<EventBus>, registry: RegistryOptions) -> Self {
        ImageService {
            store,
            events,
            registry,
        }
    }

    /// Tags image `name` as `target`; returns the image's ID.
    pub fn tag(&self, name: &str, target: &Reference) -> Result<Digest, ImageError> {
        let id = self.store.tag(name, target)?;
        self.events.image(
            crate::events::ImageAction::Tag,
            &id.to_string(),
            Some(&target.familiar()),
        );
        Ok(id)
    }

    /// Removes image `name` (untags it, deletes what no tag or child keeps)
    /// and publishes `untag`/`delete` events.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: InUse<'_>,
    ) -> Result<Vec<Removed>, ImageError> {
        let id = self.store.resolve(name)?;
        let removed = self.store.remove(name, force, in_use)?;
        self.report_removed(&removed, Some(&id));
        Ok(removed)
    }

    /// Deletes dangling (or, with `all`, unused) images that `keep` does
    /// not keep; returns what went and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&berth_image::ImageInfo) -> bool,
        in_use: InUse<'_>,
    ) -> Result<(Vec<Removed>, u64), ImageError> {
        let (removed, reclaimed) = self.store.prune(all, keep, in_use)?;
        self.report_removed(&removed, None);
        if !removed.is_empty() {
            self.events
                .image(crate::events::ImageAction::Prune { reclaimed }, "", None);
        }
        Ok((removed, reclaimed))
    }

    /// `untag`/`delete` events of a removal; an untag event names the
    /// image the tag pointed at.
    fn report_removed(&self, removed: &[Removed], id: Option<&Digest>) {
        for (i, r) in removed.iter().enumerate() {
            match r {
                Removed::Untagged(t) => {
                    let owner = removed[i..]
                        .iter()
                        .find_map(|r| match r {
                            Removed::Deleted(d) => Some(d.to_string()),
                            Removed::Untagged(_) => None,
                        })
                        .or_else(|| id.map(|d| d.to_string()))
                        .unwrap_or_default();
                    self.events
                        .image(crate::events::ImageAction::Untag, &owner, Some(t));
                }
                Removed::Deleted(id) => {
                    self.events
                        .image(crate::events::ImageAction::Delete, &id.to_string(), None)
                }
            }
        }
    }

    /// Imports a root file system tarball as a one-layer image.
    pub fn import(
        &self,
        body: Box<dyn std::io::Read + Send>,
        opts: berth_image::ImportOptions,
    ) -> Result<Digest, ImageError> {
        let tag = opts.tag.clone();
        let id = self.store.import(body, opts)?;
        self.events.image(
            crate::events::ImageAction::Import,
            &id.to_string(),
            tag.as_ref().map(|t| t.familiar()).as_deref(),
        );
        Ok(id)
    }

    /// Loads a docker-archive or OCI layout.
    pub fn load(
        &self,
        body: Box<dyn std::io::Read + Send>,
    ) -> Result<Vec<berth_image::Loaded>, ImageError> {
        let loaded = self.store.load(body)?;
        for l in &loaded {
            if l.tags.is_empty() {
                self.events
                    .image(crate::events::ImageAction::Load, &l.id.to_string(), None);
            }
            for t in &l.tags {
                self.events.image(
                    crate::events::ImageAction::Load,
                    &l.id.to_string(),
                    Some(&t.familiar()),
                );
            }
        }
        Ok(loaded)
    }

    /// Writes a planned `save` archive and publishes `save` events.
    pub fn write_save(
        &self,
        plan: &berth_image::SavePlan,
        format: berth_image::SaveFormat,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ImageError> {
        self.store.write_save(plan, format, out)?;
        for (id, tags) in &plan.images {
            self.events.image(
                crate::events::ImageAction::Save,
                &id.to_string(),
                tags.first().map(|t| t.familiar()).as_deref(),
            );
        }
        Ok(())
    }
}
