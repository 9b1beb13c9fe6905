//! berth-snapshot: image layers on disk.
//!
//! An image's root filesystem is a stack of layers. Each layer arrives as a
//! (possibly compressed) tar stream, is unpacked once into its own directory
//! and is then used, read-only, as one overlayfs `lowerdir`; a container's
//! writable `upperdir` is turned back into a layer tar by diffing it.
//!
//! - [`compression`]: sniff gzip / zstd / plain tar and decompress.
//! - [`apply`]: unpack one uncompressed layer tar into an empty directory,
//!   converting OCI whiteouts into overlayfs whiteouts and refusing every
//!   entry that would escape the directory.
//! - [`diff`]: the reverse: an overlayfs upper dir (or a plain rootfs) back
//!   into a deterministic layer tar.
//! - [`snapshotter`]: the directory store that holds unpacked layers keyed
//!   by chain ID, with crash-safe commit and removal.

pub mod apply;
pub mod compression;
pub mod diff;
mod error;
pub mod mount;
pub mod snapshotter;

pub use apply::{apply_layer, ApplyStats};
pub use compression::{decompressed, decompressed_buffered, Compression, GzipDecoder};
pub use diff::write_layer_from_dir;
pub use error::LayerError;
pub use mount::{mount_overlay, Upper};
pub use snapshotter::{validate_key, SnapshotError, SnapshotInfo, Snapshotter, Staging};

/// Prefix of an OCI whiteout file name (image-spec `layer.md`, "Whiteouts").
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Name of the OCI opaque-directory marker file.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Prefix reserved for AUFS metadata (`.wh..wh.plnk` and friends).
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr overlayfs reads to treat a directory as opaque.
pub(crate) const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Xattrs that carry overlayfs' own metadata. They are never taken from a
/// layer tar (a layer could otherwise forge redirects, metacopy or opaque
/// markers) and never written into one.
pub(crate) fn is_overlay_private_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}
