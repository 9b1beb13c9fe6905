//! [`build_spec`]: the assembly of process, root, mounts and `linux`.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxResources, Process, Root, Spec,
    User,
};

use crate::{
    caps, mounts, namespaces, resources, seccomp, NetworkMode, SeccompChoice, SpecError, SpecInput,
};

/// The OCI runtime spec version written; runc 1.1 and youki both accept it.
const OCI_VERSION: &str = "1.0.2-dev";

/// Docker's `PATH` when the image sets none.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from the container (moby `oci.DefaultLinuxSpec`): kernel
/// interfaces that leak host information or allow attacks (`/proc/kcore`,
/// `/proc/keys`, timer lists — side channels; `/sys/firmware`; powercap —
/// CVE-2020-8694 "Platypus" energy side channel).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths mounted read-only over the writable `/proc` (moby defaults).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Builds the runtime spec for one container. See the crate docs for what
/// it contains; errors name the flag value that cannot be honoured.
pub fn build_spec(input: &SpecInput) -> Result<Spec, SpecError> {
    if input.args.is_empty() {
        return Err(SpecError::InvalidInput {
            field: "args",
            reason: "no command specified".into(),
        });
    }
    if !input.rootfs.is_absolute() {
        return Err(SpecError::InvalidInput {
            field: "rootfs",
            reason: format!("\"{}\" is not an absolute path", input.rootfs.display()),
        });
    }
    let cap_list = caps::tweak_capabilities(
        input.privileged,
        &input.cap_add,
        &input.cap_drop,
        input.host_capabilities,
    )?;

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_annotations(
        (!input.annotations.is_empty()).then(|| input.annotations.clone().into_iter().collect()),
    );
    let mut root = Root::default();
    root.set_path(input.rootfs.clone());
    root.set_readonly(Some(input.readonly_rootfs));
    spec.set_root(Some(root));
    spec.set_hostname(namespaces::hostname(input));
    spec.set_process(Some(process(input, &cap_list)?));

    let defaults = mounts::default_mounts(input.privileged, input.shm_size, &input.shm);
    let mount_list = mounts::build_mounts(defaults, &input.mounts)?;
    let propagation = rootfs_propagation(input);
    spec.set_mounts(Some(mount_list));

    let mut linux = Linux::default();
    linux.set_namespaces(Some(namespaces::namespaces(input)));
    let cgroups_path = if input.cgroups_path.is_empty() {
        format!("/berth/{}", input.id)
    } else {
        input.cgroups_path.clone()
    };
    linux.set_cgroups_path(Some(cgroups_path.into()));

    let mut res = LinuxResources::default();
    resources::apply_resources(&input.resources, &mut res)?;
    let (user_nodes, user_rules) = resources::devices(&input.devices)?;
    let (nodes, rules) = if input.privileged {
        let (mut nodes, _) = resources::devices(&input.host_devices)?;
        // A `--device` already present as a host device adds nothing.
        let present: HashSet<_> = nodes.iter().map(|n| n.path().clone()).collect();
        nodes.extend(
            user_nodes
                .into_iter()
                .filter(|n| !present.contains(n.path())),
        );
        let mut allow_all = LinuxDeviceCgroup::default();
        allow_all.set_allow(true);
        allow_all.set_access(Some("rwm".into()));
        (nodes, vec![allow_all])
    } else {
        let mut rules = resources::default_device_rules();
        rules.extend(user_rules);
        (user_nodes, rules)
    };
    res.set_devices(Some(rules));
    linux.set_resources(Some(res));
    linux.set_devices((!nodes.is_empty()).then_some(nodes));

    let net_host = input.network == NetworkMode::Host;
    let sysctl = resources::sysctls(&input.sysctls, input.ipc.is_shared(), net_host)?;
    linux.set_sysctl((!sysctl.is_empty()).then_some(sysctl));

    let seccomp = match (&input.seccomp, input.privileged) {
        (_, true) | (SeccompChoice::Unconfined, _) => None,
        (SeccompChoice::Default, false) => {
            Some(seccomp::docker_default_seccomp(&cap_list, input.arch))
        }
        (SeccompChoice::Custom(json), false) => Some(seccomp::translate_profile(
            json, &cap_list, input.arch, None,
        )?),
    };
    linux.set_seccomp(seccomp);

    if input.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    } else {
        // `HostConfig.MaskedPaths`/`ReadonlyPaths` replace Docker's lists
        // when given (`--security-opt systempaths=unconfined` sends both empty).
        let masked = input.masked_paths.clone().unwrap_or_else(|| {
            let mut masked: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
            for extra in &input.extra_masked_paths {
                if !masked.contains(extra) {
                    masked.push(extra.clone());
                }
            }
            masked
        });
        linux.set_masked_paths(Some(masked));
        let readonly = input
            .readonly_paths
            .clone()
            .unwrap_or_else(|| READONLY_PATHS.iter().map(|p| p.to_string()).collect());
        linux.set_readonly_paths(Some(readonly));
    }
    linux.set_rootfs_propagation(propagation);
    spec.set_linux(Some(linux));
    Ok(spec)
}

fn process(input: &SpecInput, cap_list: &[String]) -> Result<Process, SpecError> {
    let mut p = Process::default();
    p.set_terminal(Some(input.tty));
    let mut user = User::default();
    user.set_uid(input.uid);
    user.set_gid(input.gid);
    user.set_additional_gids(
        (!input.additional_gids.is_empty()).then(|| input.additional_gids.clone()),
    );
    p.set_user(user);

    let args = match &input.init {
        Some(init) => [init.clone(), "--".to_string()]
            .into_iter()
            .chain(input.args.iter().cloned())
            .collect(),
        None => input.args.clone(),
    };
    p.set_args(Some(args));
    p.set_env(Some(environment(input)));

    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    };
    if !Path::new(cwd).is_absolute() {
        return Err(SpecError::InvalidInput {
            field: "working directory",
            reason: format!("\"{cwd}\" is not an absolute path"),
        });
    }
    p.set_cwd(cwd.into());

    // moby `oci.SetCapabilities`: only root gets effective and permitted
    // sets; for another user they would survive exec as-is, which is not
    // how a non-root process on a host behaves (CVE-2022-24769).
    // Inheritable and ambient stay empty since Docker 23.
    let set: oci_spec::runtime::Capabilities = cap_list
        .iter()
        .map(|c| {
            serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()))
                .map_err(|_| SpecError::UnknownCapability(c.clone()))
        })
        .collect::<Result<_, _>>()?;
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    if input.uid == 0 {
        caps.set_effective(Some(set.clone()));
        caps.set_permitted(Some(set));
    } else {
        caps.set_effective(None);
        caps.set_permitted(None);
    }
    p.set_capabilities(Some(caps));

    let rlimits = resources::rlimits(&input.ulimits)?;
    p.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    // Absent rather than `false` when off: the spec treats both alike, but
    // libcontainer 0.7 loads seccomp only after dropping capabilities when
    // the field is present at all, and without CAP_SYS_ADMIN or
    // no_new_privs the kernel then refuses the filter.
    p.set_no_new_privileges(input.no_new_privileges.then_some(true));
    p.set_oom_score_adj(input.oom_score_adj);
    Ok(p)
}

/// moby `CreateDaemonEnvironment`: `PATH`, `HOSTNAME`, `TERM` (with a tty)
/// first, then the container's env replaces a same-named entry or is
/// appended; a bare `NAME` unsets it.
fn environment(input: &SpecInput) -> Vec<String> {
    let mut env: Vec<Option<String>> = vec![
        Some(format!("PATH={DEFAULT_PATH_ENV}")),
        Some(format!("HOSTNAME={}", input.hostname)),
    ];
    if input.tty {
        env.push(Some("TERM=xterm".into()));
    }
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for value in &input.env {
        let k = key(value);
        let existing = env
            .iter()
            .position(|e| e.as_deref().is_some_and(|e| key(e) == k));
        match (existing, value.contains('=')) {
            (Some(i), true) => env[i] = Some(value.clone()),
            (Some(i), false) => env[i] = None,
            (None, true) => env.push(Some(value.clone())),
            (None, false) => {}
        }
    }
    env.into_iter().flatten().collect()
}

/// A shared or slave bind needs the rootfs mount to propagate too (moby
/// `setMounts`); otherwise the runtime's default (private) stands.
fn rootfs_propagation(input: &SpecInput) -> Option<String> {
    let opts = || {
        input
            .mounts
            .iter()
            .flat_map(|m| m.options.iter())
            .map(String::as_str)
    };
    if opts().any(|o| o == "shared" || o == "rshared") {
        Some("shared".into())
    } else if opts().any(|o| o == "slave" || o == "rslave") {
        Some("rslave".into())
    } else {
        None
    }
}

/// The spec as `config.json` text with a stable layout: object keys sorted,
/// capability sets (hash sets in oci-spec) in bit order. Equal specs give
/// byte-identical files.
pub fn to_config_json(spec: &Spec) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(spec)?;
    if let Some(sets) = value
        .pointer_mut("/process/capabilities")
        .and_then(|v| v.as_object_mut())
    {
        for set in sets.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by_key(|c| c.as_str().and_then(caps::capability_bit).unwrap_or(u8::MAX));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(value))?;
    text.push('\n');
    Ok(text)
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}
