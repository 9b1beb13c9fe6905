//! cgroup limits, the device cgroup, `--device`, `--sysctl` and `--ulimit`:
//! the parts of the spec that say how much of the host the container may use.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxPids,
    LinuxResources, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};
use serde::{Deserialize, Serialize};

use crate::SpecError;

/// cgroup limits, in Docker's units (`docker run --memory` etc.).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes; `-1` unlimited. Docker's "twice the
    /// memory when unset" default, and dropping it on hosts without swap
    /// accounting, are the daemon's job: this value is passed through.
    pub memory_swap: Option<i64>,
    /// Relative CPU weight (cgroup v1 `cpu.shares`).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// `--cpus` in billionths of a CPU: becomes quota over a 100 ms period.
    pub nano_cpus: Option<i64>,
    /// Maximum number of tasks; zero or negative means unlimited.
    pub pids_limit: Option<i64>,
}

/// Docker's minimum `--memory` (6 MiB).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` uses.
const NANO_CPU_PERIOD: u64 = 100_000;

fn invalid(msg: &str) -> SpecError {
    SpecError::InvalidResources(msg.to_string())
}

/// The limits as `linux.resources` memory, cpu and pids, refusing what
/// Docker refuses (`verifyPlatformContainerResources`).
pub(crate) fn apply_resources(r: &Resources, out: &mut LinuxResources) -> Result<(), SpecError> {
    if let Some(m) = r.memory.filter(|m| *m != 0) {
        if m < MIN_MEMORY {
            return Err(invalid("minimum memory limit allowed is 6MB"));
        }
    }
    match (
        r.memory.filter(|m| *m > 0),
        r.memory_swap.filter(|s| *s > 0),
    ) {
        (None, Some(_)) => {
            return Err(invalid(
                "you should always set the memory limit when using a memoryswap limit",
            ))
        }
        (Some(m), Some(s)) if s < m => {
            return Err(invalid(
                "minimum memoryswap limit should be larger than memory limit",
            ))
        }
        _ => {}
    }
    if r.memory.is_some_and(|m| m > 0) || r.memory_swap.is_some_and(|s| s != 0) {
        let mut mem = LinuxMemory::default();
        mem.set_limit(r.memory.filter(|m| *m > 0));
        mem.set_swap(r.memory_swap.filter(|s| *s != 0));
        out.set_memory(Some(mem));
    }

    let mut quota = r.cpu_quota.filter(|q| *q != 0);
    let mut period = r.cpu_period.filter(|p| *p != 0);
    if let Some(nano) = r.nano_cpus.filter(|n| *n != 0) {
        if nano < 0 {
            return Err(invalid("range of CPUs must be positive"));
        }
        if period.is_some() || quota.is_some() {
            return Err(invalid(
                "conflicting options: nano CPUs cannot be set with CPU period or quota",
            ));
        }
        period = Some(NANO_CPU_PERIOD);
        quota = Some((nano as i128 * NANO_CPU_PERIOD as i128 / 1_000_000_000) as i64);
    }
    if period.is_some_and(|p| !(1_000..=1_000_000).contains(&p)) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)",
        ));
    }
    if quota.is_some_and(|q| q > 0 && q < 1_000) {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    let shares = r.cpu_shares.filter(|s| *s != 0);
    if shares.is_some() || quota.is_some() || period.is_some() {
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(shares);
        cpu.set_quota(quota);
        cpu.set_period(period);
        out.set_cpu(Some(cpu));
    }

    if let Some(limit) = r.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(if limit > 0 { limit } else { -1 });
        out.set_pids(Some(pids));
    }
    Ok(())
}

/// A device node type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    /// Character device.
    #[serde(rename = "c")]
    Char,
    /// Block device.
    #[serde(rename = "b")]
    Block,
    /// FIFO.
    #[serde(rename = "p")]
    Fifo,
}

impl DeviceType {
    fn oci(self) -> LinuxDeviceType {
        match self {
            DeviceType::Char => LinuxDeviceType::C,
            DeviceType::Block => LinuxDeviceType::B,
            DeviceType::Fifo => LinuxDeviceType::P,
        }
    }
}

/// One device node to create in the container (`--device`), described from
/// the caller's `stat` of the host node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Path inside the container.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: DeviceType,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node (`st_mode & 0o7777`).
    #[serde(default)]
    pub file_mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    /// Device cgroup access: a non-empty subset of `rwm`.
    #[serde(default = "rwm")]
    pub permissions: String,
}

fn rwm() -> String {
    "rwm".into()
}

fn cgroup_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ);
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_string()));
    rule
}

/// Docker's device cgroup for an unprivileged container: deny everything,
/// allow use of the standard nodes the runtime creates, keep fuse denied,
/// then allow `mknod` of any character or block device (creating a node is
/// harmless when opening it is denied) and ptmx plus the pts devices.
///
/// The order is moby's default list followed by runc's appended defaults,
/// and it matters on cgroup v1: a deny cannot punch a hole in an earlier
/// wildcard allow, so the fuse deny comes before `c *:* m` (runc refuses the
/// other order).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut rules = vec![cgroup_rule(false, None, None, None, "rwm")];
    // null, zero, full, random, urandom, tty, console.
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1)] {
        rules.push(cgroup_rule(true, Some(C), Some(major), Some(minor), "rwm"));
    }
    rules.push(cgroup_rule(false, Some(C), Some(10), Some(229), "rwm"));
    rules.push(cgroup_rule(true, Some(C), None, None, "m"));
    rules.push(cgroup_rule(true, Some(B), None, None, "m"));
    // ptmx, and /dev/pts/* (Unix98 pty slaves).
    rules.push(cgroup_rule(true, Some(C), Some(5), Some(2), "rwm"));
    rules.push(cgroup_rule(true, Some(C), Some(136), None, "rwm"));
    rules
}

/// `linux.devices` entries and their cgroup allow rules.
pub(crate) fn devices(
    specs: &[DeviceSpec],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in specs {
        let bad = |reason: &str| SpecError::InvalidDevice {
            path: d.path.clone(),
            reason: reason.to_string(),
        };
        if !d.path.starts_with('/') {
            return Err(bad("container path must be absolute"));
        }
        if d.permissions.is_empty() || !d.permissions.chars().all(|c| "rwm".contains(c)) {
            return Err(bad("permissions must be a combination of 'r', 'w' and 'm'"));
        }
        let mut node = LinuxDevice::default();
        node.set_path(d.path.clone().into());
        node.set_typ(d.kind.oci());
        node.set_major(d.major);
        node.set_minor(d.minor);
        node.set_file_mode(d.file_mode);
        node.set_uid(d.uid);
        node.set_gid(d.gid);
        nodes.push(node);
        rules.push(cgroup_rule(
            true,
            Some(d.kind.oci()),
            Some(d.major),
            Some(d.minor),
            &d.permissions,
        ));
    }
    Ok((nodes, rules))
}

/// Which namespace a sysctl belongs to, among those Docker lets a container
/// set (moby `opts.ValidateSysctl`); `None` for any other.
enum SysctlNamespace {
    Ipc,
    Net,
}

fn sysctl_namespace(name: &str) -> Option<SysctlNamespace> {
    if name.starts_with("kernel.msg")
        || name.starts_with("kernel.shm")
        || name == "kernel.sem"
        || name.starts_with("fs.mqueue.")
    {
        Some(SysctlNamespace::Ipc)
    } else if name.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else {
        None
    }
}

/// Checks every `--sysctl` against the namespaced allow-list and against
/// the namespaces the container shares with the host: setting a sysctl of a
/// shared namespace would change the host.
pub(crate) fn sysctls(
    sysctls: &BTreeMap<String, String>,
    ipc_shared: bool,
    net_host: bool,
) -> Result<HashMap<String, String>, SpecError> {
    let refuse = |name: &str, reason: &str| SpecError::SysctlRefused {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    for name in sysctls.keys() {
        match sysctl_namespace(name) {
            None => {
                return Err(refuse(
                    name,
                    "only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) may be set",
                ))
            }
            Some(SysctlNamespace::Ipc) if ipc_shared => {
                return Err(refuse(
                    name,
                    "the container shares the IPC namespace of the host or another container",
                ))
            }
            Some(SysctlNamespace::Net) if net_host => {
                return Err(refuse(name, "the container shares the host's network namespace"))
            }
            Some(_) => {}
        }
    }
    Ok(sysctls
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// One `--ulimit name=soft[:hard]`. `u64::MAX` is unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker's name: `nofile`, `nproc`, `core`, `memlock`, ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Docker's ulimit names (go-units `ulimitNameMapping`).
const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `process.rlimits`. None are set unless asked: the runtime inherits the
/// daemon's, and a limit above the daemon's hard limit fails the start
/// unless the daemon holds `CAP_SYS_RESOURCE`.
pub(crate) fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    for u in ulimits {
        let bad = |reason: &str| SpecError::InvalidUlimit {
            name: u.name.clone(),
            reason: reason.to_string(),
        };
        if !ULIMIT_NAMES.contains(&u.name.as_str()) {
            return Err(bad("unknown ulimit name"));
        }
        if u.soft > u.hard {
            return Err(bad("soft limit must be less than or equal to hard limit"));
        }
        let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
            "RLIMIT_{}",
            u.name.to_ascii_uppercase()
        )))
        .map_err(|_| bad("unknown ulimit name"))?;
        if out.iter().any(|r| r.typ() == typ) {
            return Err(bad("given more than once"));
        }
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_quota_over_100ms() {
        let mut out = LinuxResources::default();
        let r = Resources {
            nano_cpus: Some(1_500_000_000),
            ..Default::default()
        };
        apply_resources(&r, &mut out).unwrap();
        let cpu = out.cpu().as_ref().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    }

    #[test]
    fn docker_refusals() {
        let cases = [
            Resources {
                memory: Some(1024),
                ..Default::default()
            },
            Resources {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            },
            Resources {
                memory_swap: Some(64 << 20),
                ..Default::default()
            },
            Resources {
                nano_cpus: Some(1),
                cpu_period: Some(50_000),
                ..Default::default()
            },
            Resources {
                cpu_period: Some(10),
                ..Default::default()
            },
            Resources {
                cpu_quota: Some(10),
                ..Default::default()
            },
        ];
        for r in cases {
            assert!(
                apply_resources(&r, &mut LinuxResources::default()).is_err(),
                "{r:?}"
            );
        }
    }

    #[test]
    fn sysctl_allow_list() {
        let m = |k: &str| BTreeMap::from([(k.to_string(), "1".to_string())]);
        assert!(sysctls(&m("net.ipv4.ip_forward"), false, false).is_ok());
        assert!(sysctls(&m("kernel.shmmax"), false, false).is_ok());
        assert!(sysctls(&m("fs.mqueue.msg_max"), false, false).is_ok());
        let err = sysctls(&m("kernel.pid_max"), false, false).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("sysctl \"kernel.pid_max\" is not allowed"));
        let err = sysctls(&m("net.ipv4.ip_forward"), false, true).unwrap_err();
        assert!(err.to_string().contains("host's network namespace"));
        assert!(sysctls(&m("kernel.sem"), true, false).is_err());
    }

    #[test]
    fn ulimits_map_to_rlimits() {
        let r = rlimits(&[Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 4096,
        }])
        .unwrap();
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert!(rlimits(&[Ulimit {
            name: "nofiles".into(),
            soft: 1,
            hard: 1
        }])
        .is_err());
        assert!(rlimits(&[Ulimit {
            name: "nproc".into(),
            soft: 2,
            hard: 1
        }])
        .is_err());
    }

    #[test]
    fn device_permissions_checked() {
        let d = DeviceSpec {
            path: "/dev/xvda".into(),
            kind: DeviceType::Block,
            major: 8,
            minor: 0,
            file_mode: Some(0o660),
            uid: Some(0),
            gid: Some(6),
            permissions: "rx".into(),
        };
        assert!(devices(&[d]).unwrap_err().to_string().contains("/dev/xvda"));
    }
}
