//! `cp`: the archive endpoints. Paths are resolved inside the container's
//! root file system the way a chroot would (symlinks, `..`), never reaching
//! outside it, and used only through descriptors ([`crate::rootpath`]);
//! archives written into a container are unpacked with the same escape
//! checks as image layers. A running container is frozen meanwhile
//! ([`Freeze`]), as moby does since CVE-2018-15664.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::freeze::Freeze;
use super::{Container, ContainerError, ContainerService};
use crate::rootpath::archive::ArchiveError;
use crate::rootpath::{self, Root, RootPathError};

/// Go's `os.FileMode` bits as `X-Docker-Container-Path-Stat` carries them.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let mut mode = m.mode() & 0o777;
    let ft = m.file_type();
    if ft.is_dir() {
        mode |= 1 << 31;
    }
    if ft.is_symlink() {
        mode |= 1 << 27;
    }
    mode
}

impl ContainerService {
    /// Runs `f` with the container's root file system mounted and opened,
    /// and the container frozen if it is running (see [`Freeze`]).
    fn with_rootfs<T>(
        &self,
        c: &Arc<Container>,
        f: impl FnOnce(&Root) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let _op = c.op.lock().expect("op lock");
        let running = c.record().state.status.is_running();
        if !running {
            self.mount_rootfs_for(c)?;
        }
        let result = Freeze::running(c).and_then(|_frozen| f(&Root::open(&c.rootfs())?));
        if !running {
            super::runtime::unmount(c);
        }
        result
    }

    /// Stat of `path` for the `X-Docker-Container-Path-Stat` header.
    pub(crate) fn container_path_stat(
        &self,
        c: &Arc<Container>,
        path: &str,
    ) -> Result<serde_json::Value, ContainerError> {
        self.with_rootfs(c, |root| {
            let st = rootpath::archive::stat(root, path).map_err(|e| not_found(c, path, e))?;
            let m = &st.meta;
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default();
            Ok(json!({ "name": name, "size": m.len(), "mode": go_mode(m), "mtime": mtime, "linkTarget": st.link_target }))
        })
    }

    /// A tar of `path` (its base name as the archive's top entry).
    pub(crate) fn container_archive(
        &self,
        c: &Arc<Container>,
        path: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ContainerError> {
        self.with_rootfs(c, |root| {
            let follow = path.ends_with('/') || path.ends_with("/.");
            rootpath::archive::write_tar(root, path.trim_end_matches("/."), follow, out)
                .map_err(|e| archive_error(c, path, e))
        })?;
        self.events
            .container(&c.record(), crate::events::ContainerAction::ArchivePath);
        Ok(())
    }

    /// Unpacks a tar into the directory `path` of the container.
    pub(crate) fn container_extract(
        &self,
        c: &Arc<Container>,
        path: &str,
        body: Box<dyn Read + Send>,
    ) -> Result<(), ContainerError> {
        self.with_rootfs(c, |root| {
            rootpath::archive::extract_tar(root, path, body).map_err(|e| archive_error(c, path, e))
        })?;
        self.events
            .container(&c.record(), crate::events::ContainerAction::ExtractToDir);
        Ok(())
    }
}

/// Docker's message for a path that is not there; other errors as they are.
fn not_found(c: &Container, path: &str, e: RootPathError) -> ContainerError {
    match e {
        RootPathError::NotFound { .. } => ContainerError::NotFoundOther(format!(
            "Could not find the file {path} in container {}",
            c.name()
        )),
        other => other.into(),
    }
}

fn archive_error(c: &Container, path: &str, e: ArchiveError) -> ContainerError {
    match e {
        ArchiveError::Path(e) => not_found(c, path, e),
        ArchiveError::NotADirectory { .. } | ArchiveError::Extract { .. } => {
            ContainerError::InvalidArgument(e.to_string())
        }
        ArchiveError::Write { .. } => ContainerError::Runtime(e.to_string()),
    }
}

impl From<RootPathError> for ContainerError {
    fn from(e: RootPathError) -> Self {
        match e {
            RootPathError::NotFound { .. } => ContainerError::NotFoundOther(e.to_string()),
            RootPathError::Loop { .. }
            | RootPathError::NotADirectory { .. }
            | RootPathError::NotAFile { .. } => ContainerError::InvalidArgument(e.to_string()),
            RootPathError::Io { .. } => ContainerError::Runtime(e.to_string()),
        }
    }
}
