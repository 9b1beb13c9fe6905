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
        let result = Freeze::running(c).and_then(|_frozen| f(&open_rootfs(c)?));
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
            let st = rootpath::archive::stat(root, path).map_err(|e| path_error(c, path, e))?;
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

/// The container's root file system, mounted by the caller: not being able
/// to open it is the engine's fault, whatever the errno (ENOENT included).
fn open_rootfs(c: &Container) -> Result<Root, ContainerError> {
    Root::open(&c.rootfs()).map_err(|e| ContainerError::Runtime(e.to_string()))
}

/// An error resolving `path`, the path the client named inside the
/// container: its absence is the client's 404 in Docker's words; a path
/// that cannot be resolved (a loop, a file where a directory is needed) is
/// a bad request; anything else is the engine's fault.
fn path_error(c: &Container, path: &str, e: RootPathError) -> ContainerError {
    match e {
        RootPathError::NotFound { .. } => ContainerError::NotFoundOther(format!(
            "Could not find the file {path} in container {}",
            c.name()
        )),
        RootPathError::Loop { .. }
        | RootPathError::NotADirectory { .. }
        | RootPathError::NotAFile { .. } => ContainerError::InvalidArgument(e.to_string()),
        RootPathError::Io { .. } => ContainerError::Runtime(e.to_string()),
    }
}

fn archive_error(c: &Container, path: &str, e: ArchiveError) -> ContainerError {
    match e {
        ArchiveError::Path(e) => path_error(c, path, e),
        ArchiveError::NotADirectory { .. } | ArchiveError::Extract { .. } => {
            ContainerError::InvalidArgument(e.to_string())
        }
        ArchiveError::Write { .. } => ContainerError::Runtime(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use berth_core::{ErrorKind, HasKind};

    use super::*;

    fn container(dir: &Path) -> Container {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/record-current");
        let record = super::super::ContainerRecord::load(&fixture).unwrap();
        Container::new(record, dir.join("data"), dir.join("run"))
    }

    #[test]
    fn a_path_the_client_named_is_404_the_rootfs_itself_500() {
        let dir = tempfile::tempdir().unwrap();
        let c = container(dir.path());
        // No rootfs under the container's dir: the engine's own ENOENT.
        let Err(e) = open_rootfs(&c) else {
            panic!("opened a rootfs that is not there")
        };
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        assert!(e.to_string().contains("rootfs"), "names the path: {e}");

        std::fs::create_dir_all(c.rootfs().join("etc")).unwrap();
        std::fs::write(c.rootfs().join("etc/hosts"), "").unwrap();
        let root = open_rootfs(&c).unwrap();
        let e = rootpath::archive::stat(&root, "/missing")
            .map_err(|e| path_error(&c, "/missing", e))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.to_string()
                .starts_with("Could not find the file /missing in container"),
            "{e}"
        );
        let e = rootpath::archive::stat(&root, "/etc/hosts/x")
            .map_err(|e| path_error(&c, "/etc/hosts/x", e))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let mut sink = Vec::new();
        let e = rootpath::archive::write_tar(&root, "/gone", false, &mut sink)
            .map_err(|e| archive_error(&c, "/gone", e))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}
