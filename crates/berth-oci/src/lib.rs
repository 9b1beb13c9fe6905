//! Container create options → OCI runtime spec (`config.json`).
//!
//! The daemon resolves what only it can know — the image config merged with
//! the user's flags, the mounted rootfs path, volume paths, `stat` of
//! `--device` nodes, the user found in the image's `/etc/passwd` (see
//! [`resolve_user`]) — into a [`SpecInput`]. [`build_spec`] turns that into
//! an [`oci_spec::runtime::Spec`] carrying Docker's isolation defaults:
//!
//! - namespaces: mount, network, uts, pid, ipc, cgroup — each the
//!   container's own, the host's, or another container's joined by path
//!   ([`namespaces`]);
//! - the 14 default capabilities, tweaked by `--cap-add` / `--cap-drop`
//!   ([`caps`]);
//! - moby's default seccomp profile resolved for those capabilities and the
//!   host architecture ([`seccomp`]);
//! - `/proc`, `/dev`, `/sys`, `/dev/shm` mounts with Docker's options, then
//!   user mounts ([`mounts`]); masked and read-only paths;
//! - a device cgroup that denies all but the standard nodes, and cgroup
//!   limits ([`resources`]).
//!
//! `--privileged` lifts all of it: every capability, no seccomp, no masked
//! paths, a writable `/sys`, every host device.
//!
//! Nothing here touches the filesystem or the kernel: the result is a value,
//! golden-file tested; the daemon writes it as `<bundle>/config.json`
//! ([`to_config_json`] gives a stable rendering) and hands the bundle to the
//! runtime.

pub mod caps;
mod error;
pub mod mounts;
pub mod namespaces;
pub mod resources;
pub mod seccomp;
mod spec;
mod user;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use caps::{default_capabilities, tweak_capabilities};
pub use error::SpecError;
pub use mounts::{MountKind, MountSpec};
pub use namespaces::{DevShm, NamespaceMode};
pub use resources::{DeviceSpec, DeviceType, Resources, Ulimit};
pub use seccomp::{docker_default_seccomp, SeccompArch};
pub use spec::{build_spec, to_config_json, DEFAULT_PATH_ENV, MASKED_PATHS, READONLY_PATHS};
pub use user::{resolve_user, ExecUser};

/// Which seccomp filter the container gets (`--security-opt seccomp=`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompChoice {
    /// moby's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A moby-format profile, as JSON text.
    Custom(String),
}

/// The container's network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new namespace with only loopback (`--network none`).
    #[default]
    None,
    /// The host's namespace (`--network host`): no network namespace.
    Host,
    /// Join an existing namespace (a bind-mounted netns handle the daemon
    /// prepared, or `/proc/<pid>/ns/net` for `--network container:`).
    Path(PathBuf),
}

/// Everything [`build_spec`] needs, already merged from the image config
/// and the create options. Field docs name the `docker run` flag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecInput {
    /// Container id (64 hex); names the default cgroup.
    pub id: String,
    /// Absolute path of the mounted rootfs.
    pub rootfs: PathBuf,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// Final argv: entrypoint + cmd, resolved by the caller.
    pub args: Vec<String>,
    /// Image env with `-e` applied. `PATH` (when missing), `HOSTNAME` and,
    /// with a tty, `TERM=xterm` are added the way Docker does.
    pub env: Vec<String>,
    /// `--workdir`; empty means `/`.
    pub cwd: String,
    /// From [`resolve_user`].
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `--hostname`.
    pub hostname: String,
    /// `--tty`.
    pub tty: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add` / `--cap-drop`: `NET_ADMIN`, `cap_net_admin`, `ALL`...
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// The daemon's own bounding set (`CapBnd` of `/proc/self/status`):
    /// capabilities outside it are left out because the runtime cannot
    /// grant them. `None` trusts every capability is grantable.
    pub host_capabilities: Option<u64>,
    /// `--security-opt seccomp=`.
    pub seccomp: SeccompChoice,
    /// Architecture the seccomp profile is resolved for; defaults to the host's.
    pub arch: SeccompArch,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// Extra masked paths found on the host, such as
    /// `/sys/devices/system/cpu/cpu*/thermal_throttle` (Docker masks those
    /// that exist; finding them needs I/O).
    pub extra_masked_paths: Vec<String>,
    /// `-v`, `--mount`, `--tmpfs`, and the `--init` binary's bind.
    pub mounts: Vec<MountSpec>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--pid`: private, `host`, or `container:X` joined by path.
    pub pid: NamespaceMode,
    /// `--ipc`: private (also `shareable` and `none`), `host`, or
    /// `container:X` joined by path.
    pub ipc: NamespaceMode,
    /// `--uts`: private or `host` (then the spec sets no hostname).
    pub uts: NamespaceMode,
    /// `--cgroupns`: private (Docker's default on cgroup v2) or `host`
    /// (its default on v1); the daemon always says which.
    pub cgroupns: NamespaceMode,
    /// `/dev/shm`, as the IPC mode decides: a private tmpfs, a bind of a
    /// host directory, or none.
    pub shm: DevShm,
    /// `--memory`, `--cpus`, `--pids-limit`...
    pub resources: Resources,
    /// `--ulimit`; none by default.
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl`, checked against Docker's namespaced allow-list.
    pub sysctls: BTreeMap<String, String>,
    /// `--device`, described from the caller's `stat`.
    pub devices: Vec<DeviceSpec>,
    /// Every host device, used only when `privileged`.
    pub host_devices: Vec<DeviceSpec>,
    /// `--shm-size` in bytes; 64 MiB by default.
    pub shm_size: Option<u64>,
    /// cgroupfs path relative to each hierarchy's root; empty means
    /// `/berth/<id>`.
    pub cgroups_path: String,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `HostConfig.MaskedPaths`: replaces Docker's masked paths (and
    /// `extra_masked_paths`) when set; ignored with `privileged`.
    pub masked_paths: Option<Vec<String>>,
    /// `HostConfig.ReadonlyPaths`: replaces Docker's read-only paths when set.
    pub readonly_paths: Option<Vec<String>>,
    /// `--annotation`: OCI annotations of the spec.
    pub annotations: BTreeMap<String, String>,
    /// `--init`: the init binary's path inside the container (the caller
    /// bind-mounts it there); args become `[init, "--", args...]`.
    pub init: Option<String>,
}
