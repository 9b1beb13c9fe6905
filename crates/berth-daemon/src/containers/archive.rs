//! `cp`: the archive endpoints. Paths are resolved inside the container's
//! root file system the way a chroot would (symlinks, `..`), never reaching
//! outside it; archives written into a container are unpacked with the same
//! escape checks as image layers.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::ContainerService;
use super::{Container, ContainerError};

/// Resolves `path` inside `root` as if `root` were `/`. With `follow_last`
/// false a final symlink is returned itself (like lstat).
pub fn resolve_in_root(
    root: &Path,
    path: &str,
    follow_last: bool,
) -> Result<PathBuf, ContainerError> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate: PathBuf = root.join(parts.iter().collect::<PathBuf>()).join(&part);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ContainerError::InvalidArgument(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(super::io(format!("reading link {path}")))?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    Ok(root.join(parts.iter().collect::<PathBuf>()))
}

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
    /// Runs `f` with the container's root file system mounted.
    fn with_rootfs<T>(
        &self,
        c: &Arc<Container>,
        f: impl FnOnce(&Path) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let _op = c.op.lock().expect("op lock");
        let running = c.record().state.status.is_running();
        if !running {
            self.mount_rootfs_for(c)?;
        }
        let result = f(&c.rootfs());
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
            let p = resolve_in_root(root, path, false)?;
            let m = std::fs::symlink_metadata(&p).map_err(|_| ContainerError::NotFoundOther(format!("Could not find the file {path} in container {}", c.name())))?;
            let link = if m.file_type().is_symlink() {
                std::fs::read_link(&p).map(|l| l.display().to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
            let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)).unwrap_or_default();
            Ok(json!({ "name": name, "size": m.len(), "mode": go_mode(&m), "mtime": mtime, "linkTarget": link }))
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
            let p = resolve_in_root(root, path.trim_end_matches("/."), follow)?;
            let m = std::fs::symlink_metadata(&p).map_err(|_| {
                ContainerError::NotFoundOther(format!(
                    "Could not find the file {path} in container {}",
                    c.name()
                ))
            })?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            let mut tar = tar::Builder::new(out);
            tar.follow_symlinks(false);
            let werr =
                |e: std::io::Error| ContainerError::Runtime(format!("archiving {path}: {e}"));
            if m.is_dir() {
                tar.append_dir_all(&name, &p).map_err(werr)?;
            } else {
                tar.append_path_with_name(&p, &name).map_err(werr)?;
            }
            tar.finish().map_err(werr)
        })
    }

    /// Unpacks a tar into the directory `path` of the container.
    pub(crate) fn container_extract(
        &self,
        c: &Arc<Container>,
        path: &str,
        body: Box<dyn Read + Send>,
    ) -> Result<(), ContainerError> {
        self.with_rootfs(c, |root| {
            let dest = resolve_in_root(root, path, true)?;
            let m = std::fs::metadata(&dest).map_err(|_| {
                ContainerError::NotFoundOther(format!(
                    "Could not find the file {path} in container {}",
                    c.name()
                ))
            })?;
            if !m.is_dir() {
                return Err(ContainerError::InvalidArgument(format!(
                    "extraction point is not a directory: {path}"
                )));
            }
            berth_snapshot::apply_layer(body, &dest)
                .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/bin/sh", true).unwrap(),
            root.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in_root(root, "/abs/passwd", true).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/up/etc/shadow", true).unwrap(),
            root.join("etc/shadow")
        );
        assert_eq!(
            resolve_in_root(root, "/../../etc", true).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, "/bin", false).unwrap(),
            root.join("bin")
        );
    }
}
