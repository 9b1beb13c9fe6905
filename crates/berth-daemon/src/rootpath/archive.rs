//! Tar archives of, and into, a directory tree inside a root — the file
//! system half of `docker cp` (`GET/HEAD/PUT /containers/{id}/archive`).
//!
//! The path is resolved to a descriptor with [`Root::open_path`]; a single
//! non-directory is archived from that descriptor (its metadata by
//! `fstat`, its bytes through a reopen of the same inode); a directory is
//! walked, and an archive unpacked, on a [`confine`]d thread whose root is
//! the container's root, with the layer unpacker's escape checks
//! (`berth_snapshot::apply_layer`: no `..`, no absolute names, no writing
//! through symlinks, no hardlinks to outside) on top (CVE-2018-15664).

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use berth_core::{ErrorKind, HasKind};
use berth_snapshot::LayerError;

use super::{confine, walk::readlink_fd, Root, RootPathError};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Path(#[from] RootPathError),
    #[error("extraction point is not a directory: {path}")]
    NotADirectory { path: String },
    #[error("archiving {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("extracting into {path}: {source}")]
    Extract { path: String, source: LayerError },
}

impl HasKind for ArchiveError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArchiveError::Path(e) => e.kind(),
            ArchiveError::NotADirectory { .. } | ArchiveError::Extract { .. } => {
                ErrorKind::InvalidArgument
            }
            ArchiveError::Write { .. } => ErrorKind::Internal,
        }
    }
}

/// What `HEAD /containers/{id}/archive` reports of a path (not following a
/// final symlink).
pub struct PathStat {
    pub meta: Metadata,
    /// The symlink's target, empty for anything else.
    pub link_target: String,
}

/// lstat of `path` inside `root`, through a descriptor.
pub fn stat(root: &Root, path: &str) -> Result<PathStat, RootPathError> {
    let fd = root.open_path(path, false)?;
    let (meta, fd) = metadata(root, path, fd)?;
    let link_target = if meta.file_type().is_symlink() {
        let t = readlink_fd(fd.as_fd()).map_err(|e| root.error("reading link", path, e))?;
        String::from_utf8_lossy(&t).into_owned()
    } else {
        String::new()
    };
    Ok(PathStat { meta, link_target })
}

/// Writes a tar of `path` to `out`, its base name as the top entry. A final
/// symlink is followed only with `follow_last` (a path ending in `/`).
pub fn write_tar(
    root: &Root,
    path: &str,
    follow_last: bool,
    out: &mut dyn Write,
) -> Result<(), ArchiveError> {
    let werr = |source| ArchiveError::Write {
        path: path.to_string(),
        source,
    };
    let fd = root.open_path(path, follow_last)?;
    let rel = root.relative(fd.as_fd(), path)?;
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let (meta, fd) = metadata(root, path, fd)?;
    if !meta.is_dir() {
        let mut tar = tar::Builder::new(out);
        append_single(root, path, &mut tar, &name, &meta, fd)?;
        return tar.finish().map_err(werr);
    }
    // The walk runs confined; its tar stream comes back through a pipe so
    // that `out` (not `Send`) stays on this thread.
    let (mut reader, writer) = io::pipe().map_err(werr)?;
    std::thread::scope(|s| {
        let handle = confine::spawn_confined(s, root, fd.as_fd(), move || {
            let mut tar = tar::Builder::new(writer);
            tar.follow_symlinks(false);
            tar.append_dir_all(&name, ".")?;
            tar.finish()
        });
        let copied = io::copy(&mut reader, out);
        // Closing the read end unblocks a writer stuck on a full pipe
        // when `out` failed.
        drop(reader);
        let walked = confine::join(handle)?;
        copied.map_err(werr)?;
        walked.map_err(werr)
    })
}

/// Unpacks the tar `body` into the directory `path` (symlinks followed).
pub fn extract_tar(
    root: &Root,
    path: &str,
    body: Box<dyn Read + Send>,
) -> Result<(), ArchiveError> {
    let fd = root.open_path(path, true)?;
    let (meta, fd) = metadata(root, path, fd)?;
    if !meta.is_dir() {
        return Err(ArchiveError::NotADirectory { path: path.into() });
    }
    let applied = confine::confined(root, fd.as_fd(), move || {
        berth_snapshot::apply_layer(body, Path::new("."))
    })?;
    applied.map_err(|source| ArchiveError::Extract {
        path: path.into(),
        source,
    })?;
    Ok(())
}

/// The metadata of the inode behind `fd` (an `O_PATH` descriptor; for a
/// symlink the link's own).
fn metadata(root: &Root, path: &str, fd: OwnedFd) -> Result<(Metadata, File), RootPathError> {
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| root.error("inspecting", path, e))?;
    Ok((meta, file))
}

/// One tar entry for a non-directory, built from its descriptor.
fn append_single<W: Write>(
    root: &Root,
    path: &str,
    tar: &mut tar::Builder<W>,
    name: &str,
    meta: &Metadata,
    fd: File,
) -> Result<(), ArchiveError> {
    let werr = |source| ArchiveError::Write {
        path: path.to_string(),
        source,
    };
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = readlink_fd(fd.as_fd()).map_err(|e| root.error("reading link", path, e))?;
        let target = Path::new(std::ffi::OsStr::from_bytes(&target));
        tar.append_link(&mut header, name, target).map_err(werr)
    } else if ft.is_file() {
        let data = super::reopen(fd.as_fd(), libc::O_RDONLY)
            .map_err(|e| root.error("opening", path, e))?;
        tar.append_data(&mut header, name, File::from(data).take(meta.len()))
            .map_err(werr)
    } else {
        header.set_size(0);
        tar.append_data(&mut header, name, io::empty())
            .map_err(werr)
    }
}
