//! Linux capabilities: Docker's default set and `--cap-add` / `--cap-drop`.
//!
//! The container's capability list is computed once, as moby's
//! `caps.TweakCapabilities` does, and then used twice: as the process's
//! capability sets and as the input that switches capability-gated rules of
//! the seccomp profile on (`includes.caps` / `excludes.caps`).

use crate::SpecError;

/// Every capability of Linux up to 6.x, with its bit number (see
/// `include/uapi/linux/capability.h`). `--privileged` and `--cap-add ALL`
/// grant all of them, minus any the caller masks out because the daemon
/// itself lacks them.
pub const ALL_CAPABILITIES: [(&str, u8); 41] = [
    ("CAP_CHOWN", 0),
    ("CAP_DAC_OVERRIDE", 1),
    ("CAP_DAC_READ_SEARCH", 2),
    ("CAP_FOWNER", 3),
    ("CAP_FSETID", 4),
    ("CAP_KILL", 5),
    ("CAP_SETGID", 6),
    ("CAP_SETUID", 7),
    ("CAP_SETPCAP", 8),
    ("CAP_LINUX_IMMUTABLE", 9),
    ("CAP_NET_BIND_SERVICE", 10),
    ("CAP_NET_BROADCAST", 11),
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_IPC_LOCK", 14),
    ("CAP_IPC_OWNER", 15),
    ("CAP_SYS_MODULE", 16),
    ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_CHROOT", 18),
    ("CAP_SYS_PTRACE", 19),
    ("CAP_SYS_PACCT", 20),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_BOOT", 22),
    ("CAP_SYS_NICE", 23),
    ("CAP_SYS_RESOURCE", 24),
    ("CAP_SYS_TIME", 25),
    ("CAP_SYS_TTY_CONFIG", 26),
    ("CAP_MKNOD", 27),
    ("CAP_LEASE", 28),
    ("CAP_AUDIT_WRITE", 29),
    ("CAP_AUDIT_CONTROL", 30),
    ("CAP_SETFCAP", 31),
    ("CAP_MAC_OVERRIDE", 32),
    ("CAP_MAC_ADMIN", 33),
    ("CAP_SYSLOG", 34),
    ("CAP_WAKE_ALARM", 35),
    ("CAP_BLOCK_SUSPEND", 36),
    ("CAP_AUDIT_READ", 37),
    ("CAP_PERFMON", 38),
    ("CAP_BPF", 39),
    ("CAP_CHECKPOINT_RESTORE", 40),
];

/// The 14 capabilities Docker keeps by default, in moby's order
/// (`oci/caps/defaults.go`). Together they read `CapEff: 00000000a80425fb`.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's default capability set, as `CAP_`-prefixed names.
pub fn default_capabilities() -> Vec<String> {
    DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
}

/// Every known capability, as `CAP_`-prefixed names in bit order.
pub fn all_capabilities() -> Vec<String> {
    ALL_CAPABILITIES
        .iter()
        .map(|(c, _)| c.to_string())
        .collect()
}

/// The bit number of a `CAP_`-prefixed capability name.
pub fn capability_bit(name: &str) -> Option<u8> {
    ALL_CAPABILITIES
        .iter()
        .find(|(c, _)| *c == name)
        .map(|(_, b)| *b)
}

/// The `/proc/<pid>/status` bit mask of a list of capabilities (unknown names
/// are ignored): what `CapEff` reads for a root process holding them.
pub fn capability_mask(caps: &[String]) -> u64 {
    caps.iter()
        .filter_map(|c| capability_bit(c))
        .fold(0, |mask, bit| mask | (1u64 << bit))
}

/// The marker `--cap-add ALL` / `--cap-drop ALL` use.
const ALL: &str = "ALL";

/// Normalizes user-typed names: case-insensitive, `CAP_` optional, `ALL`
/// kept as is. Unknown names are refused by name.
fn normalize(names: &[String]) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::with_capacity(names.len());
    for raw in names {
        let upper = raw.trim().to_ascii_uppercase();
        if upper == ALL {
            out.push(ALL.to_string());
            continue;
        }
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if capability_bit(&name).is_none() {
            return Err(SpecError::UnknownCapability(raw.clone()));
        }
        out.push(name);
    }
    Ok(out)
}

/// The container's capability list, following moby's `TweakCapabilities`:
/// privileged gets everything; `--cap-add ALL` is everything but the drops;
/// `--cap-drop ALL` is exactly the adds; otherwise the defaults minus drops
/// plus adds. Names in the result are unique and `CAP_`-prefixed.
///
/// `host_mask` (the daemon's own bounding set, `CapBnd`) removes capabilities
/// the runtime could not grant anyway: asking for them fails the container
/// start with `EPERM`.
pub fn tweak_capabilities(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    host_mask: Option<u64>,
) -> Result<Vec<String>, SpecError> {
    // Validate even when privileged so a typo is reported the same way.
    let adds = normalize(cap_add)?;
    let drops = normalize(cap_drop)?;
    let mut caps: Vec<String> = if privileged {
        all_capabilities()
    } else if adds.iter().any(|c| c == ALL) {
        all_capabilities()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drops.iter().any(|c| c == ALL) {
        adds
    } else {
        default_capabilities()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .chain(adds)
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    if let Some(mask) = host_mask {
        caps.retain(|c| capability_bit(c).is_some_and(|bit| mask & (1u64 << bit) != 0));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_set_reads_as_dockers_cap_eff() {
        assert_eq!(capability_mask(&default_capabilities()), 0xa80425fb);
        assert_eq!(default_capabilities().len(), 14);
    }

    #[test]
    fn all_is_41_distinct_bits() {
        assert_eq!(capability_mask(&all_capabilities()), (1u64 << 41) - 1);
    }

    #[test]
    fn add_and_drop_accept_any_spelling() {
        let caps = tweak_capabilities(false, &s(&["net_admin"]), &s(&["CAP_MKNOD", "Kill"]), None)
            .unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.len(), 13);
    }

    #[test]
    fn drop_all_keeps_only_adds() {
        let caps = tweak_capabilities(false, &s(&["NET_ADMIN"]), &s(&["all"]), None).unwrap();
        assert_eq!(caps, s(&["CAP_NET_ADMIN"]));
    }

    #[test]
    fn add_all_minus_drops() {
        let caps = tweak_capabilities(false, &s(&["ALL"]), &s(&["SYS_ADMIN"]), None).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn unknown_capability_is_named() {
        let err = tweak_capabilities(false, &s(&["NET_ADMINN"]), &[], None).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"NET_ADMINN\"");
    }

    #[test]
    fn host_mask_removes_what_the_daemon_lacks() {
        let mask = ((1u64 << 41) - 1) & !(1u64 << 24);
        let caps = tweak_capabilities(true, &[], &[], Some(mask)).unwrap();
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    }
}
