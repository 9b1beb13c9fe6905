//! The container's namespaces and its `/dev/shm`, from Docker's
//! `--pid`, `--ipc`, `--uts`, `--cgroupns` and `--network` modes.
//!
//! Each namespace is either the container's own (a new one), the host's (no
//! entry in the spec: the runtime leaves the process in the namespace it
//! starts in), or another container's, joined by path
//! (`/proc/<pid>/ns/<type>`, resolved by the daemon: only it knows which
//! process that container runs). The list keeps moby's order (`oci_linux.go`
//! `WithNamespaces` over `oci.DefaultLinuxSpec`): mount, network, uts, pid,
//! ipc, then cgroup when private. User namespaces are not used: berth has no
//! userns-remap, so `--userns host` is the only mode.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use serde::{Deserialize, Serialize};

use crate::{NetworkMode, SpecInput};

/// Where one kind of namespace comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceMode {
    /// A new namespace of the container's own (`private`, `shareable`,
    /// `none` for IPC; the default for pid and uts).
    #[default]
    Private,
    /// The host's namespace (`--pid host`...): no namespace entry.
    Host,
    /// Another container's namespace, joined by path (`container:NAME`).
    Join(PathBuf),
}

impl NamespaceMode {
    /// True unless the container has a namespace of its own: writes to it
    /// (sysctls) would change the host or another container.
    pub fn is_shared(&self) -> bool {
        !matches!(self, NamespaceMode::Private)
    }
}

/// What `/dev/shm` is inside the container (Docker's IpcMode decides).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevShm {
    /// A tmpfs of `--shm-size` mounted by the runtime (`--ipc private`).
    #[default]
    Private,
    /// A bind of a host directory: the host's `/dev/shm` (`--ipc host`),
    /// the tmpfs the daemon mounted for a `shareable` container, or the
    /// one of the container joined by `--ipc container:`.
    Bind(PathBuf),
    /// No `/dev/shm` at all (`--ipc none`).
    None,
}

fn entry(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path.map(Path::to_path_buf));
    n
}

/// One namespace entry per mode: none for the host's, a path to join,
/// or an empty path for a new one.
fn push(out: &mut Vec<LinuxNamespace>, typ: LinuxNamespaceType, mode: &NamespaceMode) {
    match mode {
        NamespaceMode::Private => out.push(entry(typ, None)),
        NamespaceMode::Join(p) => out.push(entry(typ, Some(p))),
        NamespaceMode::Host => {}
    }
}

/// Docker's namespace list, in its order.
pub(crate) fn namespaces(input: &SpecInput) -> Vec<LinuxNamespace> {
    let mut out = vec![entry(LinuxNamespaceType::Mount, None)];
    match &input.network {
        NetworkMode::None => out.push(entry(LinuxNamespaceType::Network, None)),
        NetworkMode::Path(p) => out.push(entry(LinuxNamespaceType::Network, Some(p))),
        NetworkMode::Host => {}
    }
    push(&mut out, LinuxNamespaceType::Uts, &input.uts);
    push(&mut out, LinuxNamespaceType::Pid, &input.pid);
    push(&mut out, LinuxNamespaceType::Ipc, &input.ipc);
    push(&mut out, LinuxNamespaceType::Cgroup, &input.cgroupns);
    out
}

/// The hostname goes into the spec only with a UTS namespace of the
/// container's own: moby clears it for `--uts host`, and a runtime asked
/// to set it without a new UTS namespace would rename the host.
pub(crate) fn hostname(input: &SpecInput) -> Option<String> {
    (input.uts == NamespaceMode::Private && !input.hostname.is_empty())
        .then(|| input.hostname.clone())
}
