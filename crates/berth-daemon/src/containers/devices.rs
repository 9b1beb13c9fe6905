//! Host devices for `--device` and `--privileged`, described from the host's
//! `stat` as the OCI spec wants them (type, major, minor, mode, owner).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_api::container_types::DeviceMapping;
use berth_oci::{DeviceSpec, DeviceType};

use super::ContainerError;

fn describe(host: &Path, in_container: &str, permissions: &str) -> Option<DeviceSpec> {
    let md = std::fs::metadata(host).ok()?;
    let ft = md.file_type();
    let kind = if ft.is_char_device() {
        DeviceType::Char
    } else if ft.is_block_device() {
        DeviceType::Block
    } else {
        return None;
    };
    let rdev = md.rdev();
    Some(DeviceSpec {
        path: in_container.to_string(),
        kind,
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        file_mode: Some(md.mode() & 0o7777),
        uid: Some(md.uid()),
        gid: Some(md.gid()),
        permissions: permissions.to_string(),
    })
}

/// `--device HOST[:CONTAINER[:PERMS]]` as the API carries it.
pub fn from_mappings(maps: &[DeviceMapping]) -> Result<Vec<DeviceSpec>, ContainerError> {
    let mut out = Vec::new();
    for m in maps {
        let perms = if m.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            m.cgroup_permissions.as_str()
        };
        if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid device permissions {perms:?} for {}: a subset of rwm",
                m.path_on_host
            )));
        }
        let dest = if m.path_in_container.is_empty() {
            m.path_on_host.as_str()
        } else {
            m.path_in_container.as_str()
        };
        if !dest.starts_with('/') {
            return Err(ContainerError::InvalidArgument(format!(
                "invalid device path in container {dest:?}: it must be absolute"
            )));
        }
        let host = Path::new(&m.path_on_host);
        match describe(host, dest, perms) {
            Some(d) => out.push(d),
            None if host.is_dir() => {
                // A directory: every device under it, at the same place below `dest`.
                for e in walk(host) {
                    let rel = e.strip_prefix(host).unwrap_or(&e);
                    let to = Path::new(dest).join(rel);
                    if let Some(d) = describe(&e, &to.display().to_string(), perms) {
                        out.push(d);
                    }
                }
            }
            None => {
                return Err(ContainerError::InvalidArgument(format!(
                    "error gathering device information while adding custom device {:?}: not a device node",
                    m.path_on_host
                )))
            }
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => out.extend(walk(&p)),
                Ok(t) if t.is_char_device() || t.is_block_device() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// Every device node of the host's /dev (for `--privileged`), skipping
/// the pty and mqueue/shm mounts the container gets its own of.
pub fn host_devices() -> Vec<DeviceSpec> {
    walk(Path::new("/dev"))
        .into_iter()
        .filter(|p| {
            !p.starts_with("/dev/pts")
                && p != Path::new("/dev/ptmx")
                && !p.starts_with("/dev/console")
        })
        .filter_map(|p| describe(&p, &p.display().to_string(), "rwm"))
        .collect()
}
