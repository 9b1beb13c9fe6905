//! The container's mount table: Docker's default filesystems under `/proc`,
//! `/dev` and `/sys`, then the user's binds, volumes and tmpfs.
//!
//! Order matters to the runtime, which mounts in list order: defaults
//! first (minus any a user mount replaces), then user mounts sorted by
//! destination depth so `/data` is mounted before `/data/cache`, as moby's
//! `sortMounts` does.

use std::path::{Component, Path};

use oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};

use crate::{DevShm, SpecError};

/// Docker's `/dev/shm` size when `--shm-size` is not given.
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// What a user mount is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// `-v /host:/ctr` or `--mount type=bind`: `source` is a host path.
    Bind,
    /// A named or anonymous volume: `source` is the volume's `_data` path.
    Volume,
    /// `--tmpfs /ctr[:opts]`: `source` is ignored.
    Tmpfs,
}

/// One user mount, already resolved by the daemon (volume created, source
/// path known).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    #[serde(default)]
    pub source: String,
    pub destination: String,
    pub kind: MountKind,
    #[serde(default)]
    pub readonly: bool,
    /// Extra options: a propagation mode (`rshared`, `slave`, ...),
    /// `nosuid`/`nodev`/`noexec`, and for tmpfs `size=`, `mode=`, `exec`...
    #[serde(default)]
    pub options: Vec<String>,
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into());
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// `size=` the way Docker writes it: kibibytes when exact.
fn size_option(bytes: u64) -> String {
    if bytes & 1023 == 0 {
        format!("size={}k", bytes / 1024)
    } else {
        format!("size={bytes}")
    }
}

/// Docker's default mounts (moby `oci.DefaultLinuxSpec`).
///
/// `privileged` leaves `/sys` and `/sys/fs/cgroup` writable; `shm` is a
/// private tmpfs, a bind of a host directory (`--ipc host`, `shareable`,
/// `container:`) or absent (`--ipc none`).
pub fn default_mounts(privileged: bool, shm_size: Option<u64>, shm: &DevShm) -> Vec<Mount> {
    let ro = if privileged { None } else { Some("ro") };
    let with_ro =
        |base: &[&'static str]| -> Vec<&'static str> { base.iter().copied().chain(ro).collect() };
    let shm_size = size_option(shm_size.unwrap_or(DEFAULT_SHM_SIZE));
    let shm = match shm {
        DevShm::Bind(source) => Some(mount(
            "/dev/shm",
            "bind",
            &source.display().to_string(),
            &["rbind", "rprivate"],
        )),
        DevShm::Private => Some(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        )),
        DevShm::None => None,
    };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &with_ro(&["nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &with_ro(&["nosuid", "noexec", "nodev"]),
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    out.extend(shm);
    out
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Options Docker accepts on `-v` that mean something to the daemon, not
/// to mount(2): copy-up suppression and SELinux relabeling.
const DAEMON_ONLY: [&str; 3] = ["nocopy", "z", "Z"];

fn bind_options(spec: &MountSpec) -> Vec<String> {
    let mut opts = vec!["rbind".to_string()];
    let propagation = spec
        .options
        .iter()
        .rev()
        .find(|o| PROPAGATIONS.contains(&o.as_str()))
        .cloned()
        .unwrap_or_else(|| "rprivate".into());
    opts.push(propagation);
    for o in &spec.options {
        let o = o.as_str();
        if PROPAGATIONS.contains(&o)
            || DAEMON_ONLY.contains(&o)
            || matches!(o, "bind" | "rbind" | "ro" | "rw")
            || opts.iter().any(|have| have == o)
        {
            continue;
        }
        opts.push(o.to_string());
    }
    let readonly = spec.readonly || spec.options.iter().any(|o| o == "ro");
    if readonly {
        opts.push("ro".into());
    }
    opts
}

/// Docker's tmpfs defaults (`noexec,nosuid,nodev`) merged with the user's
/// options: `exec`/`suid`/`dev` lift a default, a later `key=value` replaces
/// an earlier one.
fn tmpfs_options(spec: &MountSpec) -> Vec<String> {
    let mut opts: Vec<String> = ["noexec", "nosuid", "nodev"].map(String::from).to_vec();
    for o in &spec.options {
        let o = o.as_str();
        let negates = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            "rw" => Some("ro"),
            "ro" => Some("rw"),
            _ => None,
        };
        if let Some(n) = negates {
            opts.retain(|have| have != n);
            if matches!(o, "exec" | "suid" | "dev") {
                continue;
            }
        }
        if let Some((key, _)) = o.split_once('=') {
            opts.retain(|have| !have.starts_with(&format!("{key}=")));
        }
        if !opts.iter().any(|have| have == o) {
            opts.push(o.to_string());
        }
    }
    if spec.readonly {
        opts.retain(|o| o != "rw");
        if !opts.iter().any(|o| o == "ro") {
            opts.push("ro".into());
        }
    }
    opts
}

fn depth(destination: &str) -> usize {
    Path::new(destination)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

fn validate(spec: &MountSpec) -> Result<(), SpecError> {
    let bad = |reason: &str| SpecError::InvalidMount {
        destination: spec.destination.clone(),
        reason: reason.to_string(),
    };
    let dest = Path::new(&spec.destination);
    if !dest.is_absolute() {
        return Err(bad("destination must be an absolute path"));
    }
    if depth(&spec.destination) == 0 {
        return Err(bad("destination can't be '/'"));
    }
    if dest.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad("destination must not contain '..'"));
    }
    if spec.kind != MountKind::Tmpfs && !Path::new(&spec.source).is_absolute() {
        return Err(bad("source must be an absolute host path"));
    }
    Ok(())
}

/// The full mount list: defaults not overridden by a user mount, then the
/// user mounts by depth. Duplicate user destinations are refused.
pub fn build_mounts(defaults: Vec<Mount>, user: &[MountSpec]) -> Result<Vec<Mount>, SpecError> {
    let mut seen = std::collections::HashSet::new();
    for spec in user {
        validate(spec)?;
        let key = Path::new(&spec.destination)
            .components()
            .collect::<Vec<_>>();
        if !seen.insert(key) {
            return Err(SpecError::InvalidMount {
                destination: spec.destination.clone(),
                reason: "duplicate mount point".into(),
            });
        }
    }
    let user_dests: Vec<&Path> = user.iter().map(|m| Path::new(&m.destination)).collect();
    let replaces_dev = user_dests.iter().any(|d| *d == Path::new("/dev"));
    let mut out: Vec<Mount> = defaults
        .into_iter()
        .filter(|m| {
            let d = m.destination();
            let replaced = user_dests.iter().any(|u| u == d);
            !(replaced || replaces_dev && d.starts_with("/dev/"))
        })
        .collect();

    let mut sorted: Vec<&MountSpec> = user.iter().collect();
    sorted.sort_by_key(|m| depth(&m.destination));
    for spec in sorted {
        let m = match spec.kind {
            MountKind::Bind | MountKind::Volume => {
                let opts = bind_options(spec);
                let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
                mount(&spec.destination, "bind", &spec.source, &opts)
            }
            MountKind::Tmpfs => {
                let opts = tmpfs_options(spec);
                let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
                mount(&spec.destination, "tmpfs", "tmpfs", &opts)
            }
        };
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: MountKind, dest: &str, options: &[&str]) -> MountSpec {
        MountSpec {
            source: "/srv/data".into(),
            destination: dest.into(),
            kind,
            readonly: false,
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn shm_size_default_and_custom() {
        let d = default_mounts(false, None, &DevShm::Private);
        assert!(opts(&d[6]).contains(&"size=65536k".to_string()));
        let d = default_mounts(false, Some(1000), &DevShm::Private);
        assert!(opts(&d[6]).contains(&"size=1000".to_string()));
    }

    #[test]
    fn privileged_sys_is_writable() {
        let d = default_mounts(true, None, &DevShm::Private);
        assert!(!opts(&d[3]).contains(&"ro".to_string()));
        assert!(!opts(&d[4]).contains(&"ro".to_string()));
        let d = default_mounts(false, None, &DevShm::Private);
        assert!(opts(&d[3]).contains(&"ro".to_string()));
    }

    #[test]
    fn tmpfs_options_merge() {
        let m = tmpfs_options(&spec(
            MountKind::Tmpfs,
            "/run",
            &["exec", "size=1m", "size=2m"],
        ));
        assert_eq!(m, vec!["nosuid", "nodev", "size=2m"]);
    }

    #[test]
    fn bind_options_keep_propagation_and_drop_daemon_only() {
        let mut s = spec(MountKind::Bind, "/data", &["rshared", "z", "nosuid"]);
        s.readonly = true;
        assert_eq!(bind_options(&s), vec!["rbind", "rshared", "nosuid", "ro"]);
    }

    #[test]
    fn user_mounts_replace_defaults_and_sort_by_depth() {
        let user = vec![
            spec(MountKind::Bind, "/data/cache", &[]),
            spec(MountKind::Tmpfs, "/dev/shm", &[]),
            spec(MountKind::Bind, "/data", &[]),
        ];
        let all = build_mounts(default_mounts(false, None, &DevShm::Private), &user).unwrap();
        let dests: Vec<_> = all
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/data",
                "/data/cache",
                "/dev/shm"
            ]
        );
    }

    #[test]
    fn bad_mounts_are_named() {
        let err = build_mounts(vec![], &[spec(MountKind::Bind, "data", &[])]).unwrap_err();
        assert!(err.to_string().contains("\"data\""));
        let dup = vec![
            spec(MountKind::Bind, "/a", &[]),
            spec(MountKind::Tmpfs, "/a/", &[]),
        ];
        assert!(build_mounts(vec![], &dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        assert!(build_mounts(vec![], &[spec(MountKind::Tmpfs, "/", &[])]).is_err());
    }
}
