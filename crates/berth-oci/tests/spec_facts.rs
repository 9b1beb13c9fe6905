//! Key properties of generated specs, asserted directly so a regenerated
//! golden file cannot quietly weaken isolation.

use std::collections::BTreeMap;

use berth_oci::caps::capability_mask;
use berth_oci::{
    build_spec, default_capabilities, DevShm, MountKind, MountSpec, NamespaceMode, NetworkMode,
    SeccompArch, SeccompChoice, SpecInput,
};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction, Spec};

fn input() -> SpecInput {
    SpecInput {
        id: "a".repeat(64),
        rootfs: "/rootfs".into(),
        args: vec!["sh".into()],
        hostname: "aaaaaaaaaaaa".into(),
        arch: SeccompArch::X86_64,
        ..Default::default()
    }
}

fn names(set: &Option<oci_spec::runtime::Capabilities>) -> Vec<String> {
    let mut v: Vec<String> = set
        .iter()
        .flatten()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn allowed_syscalls(spec: &Spec) -> Vec<String> {
    let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    seccomp
        .syscalls()
        .iter()
        .flatten()
        .filter(|c| c.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|c| c.names().clone())
        .collect()
}

#[test]
fn default_caps_are_dockers_14_in_bounding_effective_permitted() {
    let spec = build_spec(&input()).unwrap();
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let mut want = default_capabilities();
    want.sort();
    assert_eq!(names(caps.effective()), want);
    assert_eq!(names(caps.bounding()), want);
    assert_eq!(names(caps.permitted()), want);
    assert!(names(caps.inheritable()).is_empty());
    assert!(names(caps.ambient()).is_empty());
    assert_eq!(capability_mask(&names(caps.effective())), 0xa80425fb);
}

#[test]
fn non_root_user_gets_bounding_set_only() {
    let spec = build_spec(&SpecInput {
        uid: 1000,
        gid: 1000,
        ..input()
    })
    .unwrap();
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(names(caps.bounding()).len(), 14);
    assert!(caps.effective().is_none() && caps.permitted().is_none());
}

#[test]
fn default_seccomp_denies_namespace_mount_and_keyring_syscalls() {
    let spec = build_spec(&input()).unwrap();
    let allowed = allowed_syscalls(&spec);
    for denied in [
        "unshare",
        "mount",
        "keyctl",
        "setns",
        "pivot_root",
        "open_by_handle_at",
    ] {
        assert!(!allowed.iter().any(|n| n == denied), "{denied} allowed");
    }
    for ok in ["read", "execve", "clone", "personality", "socket"] {
        assert!(allowed.iter().any(|n| n == ok), "{ok} denied");
    }
}

#[test]
fn cap_sys_admin_opens_the_gated_syscalls() {
    let spec = build_spec(&SpecInput {
        cap_add: vec!["SYS_ADMIN".into()],
        ..input()
    })
    .unwrap();
    let allowed = allowed_syscalls(&spec);
    for name in ["unshare", "mount", "setns"] {
        assert!(allowed.iter().any(|n| n == name), "{name} denied");
    }
}

#[test]
fn privileged_lifts_everything() {
    let spec = build_spec(&SpecInput {
        privileged: true,
        ..input()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    assert!(linux.readonly_paths().is_none());
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(names(caps.effective()).len(), 41);
    let sys = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().as_os_str() == "/sys");
    assert!(!sys
        .unwrap()
        .options()
        .as_ref()
        .unwrap()
        .contains(&"ro".to_string()));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
}

#[test]
fn unconfined_seccomp_and_namespaces() {
    let spec = build_spec(&SpecInput {
        seccomp: SeccompChoice::Unconfined,
        network: NetworkMode::Host,
        pid: NamespaceMode::Host,
        cgroupns: NamespaceMode::Host,
        ..input()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    let types: Vec<_> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        types,
        [
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc
        ]
    );
}

#[test]
fn tty_sets_terminal_and_term() {
    let spec = build_spec(&SpecInput {
        tty: true,
        ..input()
    })
    .unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.terminal(), Some(true));
    let env = process.env().as_ref().unwrap();
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert!(env.contains(&"HOSTNAME=aaaaaaaaaaaa".to_string()));
    assert!(env[0].starts_with("PATH=/usr/local/sbin"));
    assert!(process.rlimits().is_none(), "no rlimits unless asked");
}

#[test]
fn refusals_name_the_culprit() {
    let err = build_spec(&SpecInput {
        cap_add: vec!["NET_FLY".into()],
        ..input()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown capability: \"NET_FLY\"");
    let err = build_spec(&SpecInput {
        sysctls: BTreeMap::from([("vm.swappiness".to_string(), "0".to_string())]),
        ..input()
    })
    .unwrap_err();
    assert!(err.to_string().contains("\"vm.swappiness\""), "{err}");
    let err = build_spec(&SpecInput {
        network: NetworkMode::Host,
        sysctls: BTreeMap::from([("net.core.somaxconn".to_string(), "1".to_string())]),
        ..input()
    })
    .unwrap_err();
    assert!(err.to_string().contains("\"net.core.somaxconn\""), "{err}");
    let err = build_spec(&SpecInput {
        mounts: vec![MountSpec {
            source: "relative".into(),
            destination: "/x".into(),
            kind: MountKind::Bind,
            readonly: false,
            options: vec![],
        }],
        ..input()
    })
    .unwrap_err();
    assert!(err.to_string().contains("\"/x\""), "{err}");
    assert!(build_spec(&SpecInput {
        args: vec![],
        ..input()
    })
    .is_err());
    assert!(build_spec(&SpecInput {
        cwd: "rel".into(),
        ..input()
    })
    .is_err());
}

#[test]
fn custom_seccomp_profile_is_translated() {
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
        {"names":["reboot"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_BOOT"]}}]}"#;
    let spec = build_spec(&SpecInput {
        seccomp: SeccompChoice::Custom(profile.into()),
        ..input()
    })
    .unwrap();
    let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
    let calls = seccomp.syscalls().as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].errno_ret(), Some(13));
}

/// (type, path) of every namespace entry, in spec order.
fn namespace_list(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<String>)> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .map(|n| (n.typ(), n.path().as_ref().map(|p| p.display().to_string())))
        .collect()
}

fn shm_mount(spec: &Spec) -> Option<(String, String)> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination().to_str() == Some("/dev/shm"))
        .map(|m| {
            (
                m.typ().clone().unwrap_or_default(),
                m.source()
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
        })
}

#[test]
fn default_modes_are_all_private() {
    use LinuxNamespaceType::*;
    let spec = build_spec(&input()).unwrap();
    assert_eq!(
        namespace_list(&spec),
        [
            (Mount, None),
            (Network, None),
            (Uts, None),
            (Pid, None),
            (Ipc, None),
            (Cgroup, None)
        ]
    );
    assert_eq!(spec.hostname().as_deref(), Some("aaaaaaaaaaaa"));
    assert_eq!(shm_mount(&spec), Some(("tmpfs".into(), "shm".into())));
}

#[test]
fn host_modes_leave_the_namespace_out() {
    use LinuxNamespaceType::*;
    let spec = build_spec(&SpecInput {
        pid: NamespaceMode::Host,
        ipc: NamespaceMode::Host,
        uts: NamespaceMode::Host,
        cgroupns: NamespaceMode::Host,
        shm: DevShm::Bind("/dev/shm".into()),
        ..input()
    })
    .unwrap();
    assert_eq!(namespace_list(&spec), [(Mount, None), (Network, None)]);
    // With the host's UTS namespace a hostname would rename the host.
    assert_eq!(spec.hostname(), &None);
    assert_eq!(shm_mount(&spec), Some(("bind".into(), "/dev/shm".into())));
}

#[test]
fn container_modes_join_by_path() {
    use LinuxNamespaceType::*;
    let spec = build_spec(&SpecInput {
        pid: NamespaceMode::Join("/proc/77/ns/pid".into()),
        ipc: NamespaceMode::Join("/proc/77/ns/ipc".into()),
        shm: DevShm::Bind("/data/containers/x/mounts/shm".into()),
        network: NetworkMode::Path("/proc/77/ns/net".into()),
        ..input()
    })
    .unwrap();
    assert_eq!(
        namespace_list(&spec),
        [
            (Mount, None),
            (Network, Some("/proc/77/ns/net".into())),
            (Uts, None),
            (Pid, Some("/proc/77/ns/pid".into())),
            (Ipc, Some("/proc/77/ns/ipc".into())),
            (Cgroup, None)
        ]
    );
    assert_eq!(
        shm_mount(&spec),
        Some(("bind".into(), "/data/containers/x/mounts/shm".into()))
    );
}

#[test]
fn ipc_none_has_no_dev_shm() {
    let spec = build_spec(&SpecInput {
        shm: DevShm::None,
        ..input()
    })
    .unwrap();
    assert_eq!(shm_mount(&spec), None);
    assert!(namespace_list(&spec)
        .iter()
        .any(|(t, p)| *t == LinuxNamespaceType::Ipc && p.is_none()));
}

#[test]
fn ipc_sysctls_are_refused_with_a_shared_ipc_namespace() {
    for ipc in [
        NamespaceMode::Host,
        NamespaceMode::Join("/proc/77/ns/ipc".into()),
    ] {
        let err = build_spec(&SpecInput {
            ipc,
            sysctls: BTreeMap::from([("kernel.shmmax".to_string(), "1".to_string())]),
            ..input()
        })
        .unwrap_err();
        assert!(err.to_string().contains("kernel.shmmax"), "{err}");
    }
}

#[test]
fn host_config_paths_and_annotations_override_the_defaults() {
    let spec = build_spec(&SpecInput {
        masked_paths: Some(vec![]),
        readonly_paths: Some(vec!["/proc/sys".into()]),
        annotations: BTreeMap::from([("org.example.k".to_string(), "v".to_string())]),
        ..input()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(linux.masked_paths().as_deref(), Some(&[][..]));
    assert_eq!(
        linux.readonly_paths().as_deref(),
        Some(&["/proc/sys".to_string()][..])
    );
    assert_eq!(
        spec.annotations().as_ref().unwrap().get("org.example.k"),
        Some(&"v".to_string())
    );
    let default = build_spec(&input()).unwrap();
    assert_eq!(default.annotations(), &None);
    assert_eq!(
        default
            .linux()
            .as_ref()
            .unwrap()
            .masked_paths()
            .as_ref()
            .unwrap()
            .len(),
        12
    );
}
