//! Docker's namespace modes — `HostConfig.PidMode`, `IpcMode`, `UTSMode`,
//! `CgroupnsMode`, `UsernsMode` — checked at create, given dockerd's
//! defaults there (so `inspect` shows them), and resolved at start into
//! what the spec builder needs ([`berth_oci::NamespaceMode`],
//! [`berth_oci::DevShm`]).
//!
//! `container:X` modes join X's namespace through `/proc/<pid>/ns/<type>`
//! of X's init process, which X must be running (dockerd's
//! `getPIDContainer`/`getIPCContainer`). IPC follows dockerd's `IpcMode`:
//! `private` (the default since Docker 20.10) gives a new namespace and a
//! `/dev/shm` of its own; `shareable` the same, but the `/dev/shm` tmpfs is
//! mounted on the host under the container's directory (`mounts/shm`) so a
//! `container:` joiner can bind the same one; `none` has no `/dev/shm`;
//! `host` binds the host's. The shareable tmpfs is unmounted when the
//! container stops ([`unmount_shm`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::container_types::HostConfig;
use berth_oci::mounts::DEFAULT_SHM_SIZE;
use berth_oci::{DevShm, NamespaceMode};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{Container, ContainerError};

/// Where a shareable container's `/dev/shm` is mounted on the host.
pub(crate) fn shm_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("mounts").join("shm")
}

/// A mode value: `""`, a keyword, or `container:NAME_OR_ID`.
#[derive(Debug, PartialEq, Eq)]
enum Mode<'a> {
    Keyword(&'a str),
    Container(&'a str),
}

fn parse(value: &str) -> Mode<'_> {
    match value.split_once(':') {
        Some(("container", x)) => Mode::Container(x),
        _ => Mode::Keyword(value),
    }
}

fn invalid(what: &str, field: &str, value: &str, want: &str) -> ContainerError {
    ContainerError::InvalidArgument(format!(
        "invalid {what} mode: {value} (HostConfig.{field} must be {want})"
    ))
}

/// Docker's cgroup-namespace default: private on cgroup v2, host on v1.
pub(crate) fn default_cgroupns_mode() -> &'static str {
    if super::cgroup_v2() {
        "private"
    } else {
        "host"
    }
}

/// Create-time checks (dockerd `verifyPlatformContainerSettings`,
/// `validateNetMode`) and defaults. `hostname` is the one the client sent,
/// before berth generates one.
pub(crate) fn validate_and_default(
    h: &mut HostConfig,
    hostname: &str,
) -> Result<(), ContainerError> {
    match parse(&h.pid_mode) {
        Mode::Keyword("" | "host") => {}
        Mode::Container(x) if !x.is_empty() => {}
        _ => {
            return Err(invalid(
                "PID",
                "PidMode",
                &h.pid_mode,
                "empty, host or container:NAME",
            ))
        }
    }
    match parse(&h.ipc_mode) {
        Mode::Keyword("" | "host" | "private" | "shareable" | "none") => {}
        Mode::Container(x) if !x.is_empty() => {}
        _ => {
            return Err(invalid(
                "IPC",
                "IpcMode",
                &h.ipc_mode,
                "empty, private, shareable, none, host or container:NAME",
            ))
        }
    }
    if !matches!(h.uts_mode.as_str(), "" | "host") {
        return Err(invalid("UTS", "UTSMode", &h.uts_mode, "empty or host"));
    }
    if !matches!(h.cgroupns_mode.as_str(), "" | "host" | "private") {
        return Err(invalid(
            "cgroup namespace",
            "CgroupnsMode",
            &h.cgroupns_mode,
            "empty, host or private",
        ));
    }
    if !matches!(h.userns_mode.as_str(), "" | "host") {
        return Err(ContainerError::InvalidArgument(format!(
            "invalid USER mode: {} (HostConfig.UsernsMode: berth runs without userns-remap, so only \"host\" is supported)",
            h.userns_mode
        )));
    }
    if h.uts_mode == "host" && !hostname.is_empty() {
        return Err(ContainerError::InvalidArgument(
            "conflicting options: hostname and the UTS mode".into(),
        ));
    }
    // dockerd fills these two at create (`adaptContainerSettings`).
    if h.ipc_mode.is_empty() {
        h.ipc_mode = "private".into();
    }
    if h.cgroupns_mode.is_empty() {
        h.cgroupns_mode = default_cgroupns_mode().into();
    }
    Ok(())
}

/// The namespaces of a starting container.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    pub cgroupns: NamespaceMode,
    pub shm: DevShm,
}

/// The running container `X` of a `container:X` mode.
fn running_donor(
    lookup: &dyn Fn(&str) -> Result<Arc<Container>, ContainerError>,
    x: &str,
    what: &str,
) -> Result<Arc<Container>, ContainerError> {
    let donor = lookup(x).map_err(|e| {
        ContainerError::InvalidArgument(format!("failed to join {what} namespace: {e}"))
    })?;
    let r = donor.record();
    if !r.state.status.is_running() || r.state.pid <= 0 {
        return Err(ContainerError::Conflict(format!(
            "failed to join {what} namespace: container {} is not running",
            r.id
        )));
    }
    Ok(donor)
}

/// Resolves the modes of `h` at start. `container_dir` is the starting
/// container's directory; `lookup` finds a container by name or id.
pub(crate) fn resolve(
    h: &HostConfig,
    container_dir: &Path,
    lookup: &dyn Fn(&str) -> Result<Arc<Container>, ContainerError>,
) -> Result<Resolved, ContainerError> {
    let pid = match parse(&h.pid_mode) {
        Mode::Keyword("host") => NamespaceMode::Host,
        Mode::Container(x) => {
            let d = running_donor(lookup, x, "PID")?;
            let pid = d.record().state.pid;
            NamespaceMode::Join(format!("/proc/{pid}/ns/pid").into())
        }
        _ => NamespaceMode::Private,
    };
    let (ipc, shm) = match parse(&h.ipc_mode) {
        Mode::Keyword("host") => (NamespaceMode::Host, DevShm::Bind("/dev/shm".into())),
        Mode::Keyword("none") => (NamespaceMode::Private, DevShm::None),
        Mode::Keyword("shareable") => (
            NamespaceMode::Private,
            DevShm::Bind(mount_shm(container_dir, h.shm_size)?),
        ),
        Mode::Container(x) => {
            let d = running_donor(lookup, x, "IPC")?;
            let dr = d.record();
            let shm = if dr.host_config.ipc_mode == "host" {
                PathBuf::from("/dev/shm")
            } else {
                let dir = shm_dir(&d.dir);
                if !super::runtime::is_mounted(&dir) {
                    return Err(ContainerError::InvalidArgument(format!(
                        "failed to join IPC namespace: container {}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                        dr.id
                    )));
                }
                dir
            };
            let path = format!("/proc/{}/ns/ipc", dr.state.pid);
            (NamespaceMode::Join(path.into()), DevShm::Bind(shm))
        }
        // `private`, and `""` of a record written before the default was
        // filled in: berth always gave those a private namespace.
        _ => (NamespaceMode::Private, DevShm::Private),
    };
    let uts = if h.uts_mode == "host" {
        NamespaceMode::Host
    } else {
        NamespaceMode::Private
    };
    let cgroupns = match h.cgroupns_mode.as_str() {
        "private" => NamespaceMode::Private,
        "host" => NamespaceMode::Host,
        _ if default_cgroupns_mode() == "private" => NamespaceMode::Private,
        _ => NamespaceMode::Host,
    };
    Ok(Resolved {
        pid,
        ipc,
        uts,
        cgroupns,
        shm,
    })
}

/// Mounts the tmpfs of a shareable container's `/dev/shm` on the host
/// (dockerd `setupIPCDirs`), once.
fn mount_shm(container_dir: &Path, shm_size: i64) -> Result<PathBuf, ContainerError> {
    let dir = shm_dir(container_dir);
    if super::runtime::is_mounted(&dir) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(super::io(format!("creating {}", dir.display())))?;
    let size = if shm_size > 0 {
        shm_size as u64
    } else {
        DEFAULT_SHM_SIZE
    };
    mount(
        Some("shm"),
        dir.as_path(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={size}").as_str()),
    )
    .map_err(|e| ContainerError::Runtime(format!("mounting {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Unmounts a shareable container's `/dev/shm` tmpfs, if mounted.
pub(crate) fn unmount_shm(container_dir: &Path) {
    let dir = shm_dir(container_dir);
    if super::runtime::is_mounted(&dir) {
        if let Err(e) = umount2(&dir, MntFlags::MNT_DETACH) {
            tracing::warn!(path = %dir.display(), error = %e, "unmounting /dev/shm");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(pid: &str, ipc: &str, uts: &str, cg: &str, userns: &str) -> HostConfig {
        HostConfig {
            pid_mode: pid.into(),
            ipc_mode: ipc.into(),
            uts_mode: uts.into(),
            cgroupns_mode: cg.into(),
            userns_mode: userns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn valid_modes_pass_and_get_defaults() {
        let mut h = host("host", "", "host", "", "host");
        validate_and_default(&mut h, "").unwrap();
        assert_eq!(h.ipc_mode, "private");
        assert_eq!(h.cgroupns_mode, default_cgroupns_mode());
        for ipc in ["private", "shareable", "none", "host", "container:db"] {
            let mut h = host("container:db", ipc, "", "private", "");
            validate_and_default(&mut h, "x").unwrap();
            assert_eq!(h.ipc_mode, ipc);
        }
    }

    #[test]
    fn invalid_modes_name_the_field_and_value() {
        for (h, needle) in [
            (host("bogus", "", "", "", ""), "HostConfig.PidMode"),
            (host("container:", "", "", "", ""), "HostConfig.PidMode"),
            (host("", "shared", "", "", ""), "invalid IPC mode: shared"),
            (host("", "", "private", "", ""), "HostConfig.UTSMode"),
            (host("", "", "", "on", ""), "HostConfig.CgroupnsMode"),
            (host("", "", "", "", "private"), "HostConfig.UsernsMode"),
            (
                host("", "", "", "", "keep-id"),
                "invalid USER mode: keep-id",
            ),
        ] {
            let mut h = h;
            let e = validate_and_default(&mut h, "").unwrap_err();
            assert!(matches!(e, ContainerError::InvalidArgument(_)), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn uts_host_refuses_a_hostname() {
        let mut h = host("", "", "host", "", "");
        let e = validate_and_default(&mut h, "myhost").unwrap_err();
        assert_eq!(
            e.to_string(),
            "conflicting options: hostname and the UTS mode"
        );
    }

    #[test]
    fn host_and_private_modes_resolve_without_lookups() {
        let none = |x: &str| -> Result<Arc<Container>, ContainerError> {
            Err(ContainerError::NotFound(x.to_string()))
        };
        let r = resolve(
            &host("host", "host", "host", "host", ""),
            Path::new("/nonexistent"),
            &none,
        )
        .unwrap();
        assert_eq!(r.pid, NamespaceMode::Host);
        assert_eq!(r.ipc, NamespaceMode::Host);
        assert_eq!(r.uts, NamespaceMode::Host);
        assert_eq!(r.cgroupns, NamespaceMode::Host);
        assert_eq!(r.shm, DevShm::Bind("/dev/shm".into()));
        let r = resolve(&host("", "none", "", "private", ""), Path::new("/x"), &none).unwrap();
        assert_eq!(r.pid, NamespaceMode::Private);
        assert_eq!(r.shm, DevShm::None);
        assert_eq!(r.cgroupns, NamespaceMode::Private);
        let e = resolve(
            &host("container:gone", "", "", "", ""),
            Path::new("/x"),
            &none,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("failed to join PID namespace"),
            "{e}"
        );
    }
}
