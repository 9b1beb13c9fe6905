//! Images: the image store and everything that adds, names, lists, exports
//! or removes images.
//!
//! An image is a config blob (its digest is the image ID) plus the ordered
//! layer blobs named by the config's `rootfs.diff_ids`. Layers are kept as
//! uncompressed tars in the content store and unpacked once, each into its
//! own snapshot keyed by the layer's chain ID, ready to be an overlayfs
//! lowerdir. Metadata (records and tags) lives in `meta.db`.
//!
//! Crash safety: new blobs and snapshots are written to private temporary
//! places and published by rename; the image record that makes them
//! reachable is committed last in one metadata transaction. At open, the
//! leftovers of interrupted work are removed and everything no image
//! references is garbage-collected, so a `kill -9` at any instant leaves
//! either the whole image or nothing.

pub mod changes;
mod child;
mod commit;
pub mod config;
mod import;
mod load;
pub mod manifest;
pub mod meta;
mod pulled;
mod push_cache;
mod save;
mod store;

pub use child::ChildOptions;
pub use commit::CommitOptions;
pub use import::ImportOptions;
pub use load::Loaded;
pub use pulled::{PulledLayer, ScratchDir};
pub use save::{SaveFormat, SavePlan};
pub use store::{ImageInfo, ImageStore, Removed};

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid reference: {0}")]
    Reference(#[from] berth_core::ReferenceError),
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
    #[error(transparent)]
    Layer(#[from] berth_snapshot::LayerError),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::SnapshotError),
    #[error("metadata store: {0}")]
    Metadata(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("invalid archive: {0}")]
    Archive(String),
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::InvalidArgument(_) | ImageError::Reference(_) | ImageError::Archive(_) => {
                ErrorKind::InvalidArgument
            }
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Content(e) => e.kind(),
            ImageError::Layer(e) => e.kind(),
            ImageError::Snapshot(e) => e.kind(),
            ImageError::Metadata(_) => ErrorKind::Internal,
            ImageError::Io { source, .. } => {
                // A client that hangs up mid-upload is a bad request, not our fault.
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                ) {
                    ErrorKind::InvalidArgument
                } else {
                    ErrorKind::Internal
                }
            }
        }
    }
}
