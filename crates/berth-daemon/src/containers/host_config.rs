//! What berth does with each `HostConfig` property of the Engine API
//! (swagger `HostConfig` and the `Resources` it includes): every property
//! is in exactly one of three lists, so none is dropped without a word.
//!
//! - [`HONOURED`]: berth acts on it.
//! - [`REFUSED`]: berth cannot do it; a create (or `update`) that sets it
//!   to anything but its zero value gets a 400 naming the field.
//! - [`IGNORED`]: accepted and ignored, as dockerd ignores it on Linux,
//!   with dockerd's reason; a create that sets it gets that reason back
//!   as a warning.
//!
//! The test `every_swagger_property_is_classified` walks the swagger file
//! and fails naming any property missing from the lists.

use berth_api::container_types::{HostConfig, Mount};
use serde_json::Value;

use super::ContainerError;

/// Properties berth acts on.
pub const HONOURED: &[&str] = &[
    // Resources
    "CpuShares",
    "Memory",
    "CpuPeriod",
    "CpuQuota",
    "Devices",
    "MemorySwap",
    "NanoCpus",
    "Init",
    "PidsLimit",
    "Ulimits",
    // HostConfig
    "Binds",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "Mounts",
    "CapAdd",
    "CapDrop",
    "CgroupnsMode",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IpcMode",
    "OomScoreAdj",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "Tmpfs",
    "UTSMode",
    "UsernsMode",
    "ShmSize",
    "Sysctls",
    "Runtime",
    "VolumesFrom",
    "Annotations",
    "MaskedPaths",
    "ReadonlyPaths",
];

/// Properties berth refuses when set (a zero value — `0`, `""`, `null`,
/// `[]`, `{}`, `false`, and `-1` for `MemorySwappiness` — is not "set").
pub const REFUSED: &[&str] = &[
    // Resources
    "CgroupParent",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "DeviceCgroupRules",
    "DeviceRequests",
    "MemoryReservation",
    "MemorySwappiness",
    "OomKillDisable",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
    // HostConfig
    "VolumeDriver",
    "Cgroup",
    "Links",
    "StorageOpt",
    "Isolation",
];

/// Properties accepted and ignored, with the reason.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "CpuCount",
        "Windows only: dockerd on Linux does not apply --cpu-count",
    ),
    (
        "CpuPercent",
        "Windows only: dockerd on Linux does not apply --cpu-percent",
    ),
    (
        "KernelMemory",
        "deprecated: kernel memory limits were removed from API v1.42 and are not supported on cgroup v2; dockerd ignores the field",
    ),
    (
        "KernelMemoryTCP",
        "deprecated: removed from API v1.45; dockerd ignores the field",
    ),
    (
        "ContainerIDFile",
        "written by the client (--cidfile); dockerd does not read it",
    ),
    (
        "ConsoleSize",
        "the initial tty size: the client sends its size with POST /containers/{id}/resize once attached",
    ),
];

/// dockerd's own message for a few refusals (`runconfig` `validateQoS`,
/// `validateIsolation`); the rest get berth's.
fn refusal(name: &str, value: &Value) -> String {
    match name {
        "IOMaximumBandwidth" => "Invalid QoS settings: linux does not support configuration of maximum bandwidth (HostConfig.IOMaximumBandwidth is Windows only)".into(),
        "IOMaximumIOps" => "Invalid QoS settings: linux does not support configuration of maximum IOPs (HostConfig.IOMaximumIOps is Windows only)".into(),
        "Isolation" => format!(
            "Invalid isolation: {value} - linux only supports 'default' (HostConfig.Isolation)"
        ),
        _ => format!("HostConfig.{name} is not supported by berth (got {value})"),
    }
}

/// True for the zero value of a property: what clients send when the
/// option was not given.
fn is_unset(name: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => {
            n.as_i64() == Some(0)
                || n.as_f64() == Some(0.0)
                || (name == "MemorySwappiness" && n.as_i64() == Some(-1))
        }
        Value::String(s) => s.is_empty() || (name == "Isolation" && s == "default"),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Create-time check: refuses what berth cannot do, returns warnings for
/// what it ignores.
pub(crate) fn check(h: &HostConfig) -> Result<Vec<String>, ContainerError> {
    let Ok(Value::Object(wire)) = serde_json::to_value(h) else {
        return Err(ContainerError::Runtime(
            "HostConfig does not serialize".into(),
        ));
    };
    for name in REFUSED {
        if let Some(v) = wire.get(*name).filter(|v| !is_unset(name, v)) {
            return Err(ContainerError::InvalidArgument(refusal(name, v)));
        }
    }
    for (i, m) in h.mounts.iter().flatten().enumerate() {
        check_mount(i, m)?;
    }
    Ok(IGNORED
        .iter()
        .filter(|(name, _)| *name != "ConsoleSize" && *name != "ContainerIDFile")
        .filter(|(name, _)| wire.get(*name).is_some_and(|v| !is_unset(name, v)))
        .map(|(name, why)| format!("HostConfig.{name} is ignored: {why}"))
        .collect())
}

/// The `Resources` properties `update` applies; any other set in an
/// update body is refused rather than dropped.
pub const UPDATABLE: &[&str] = &[
    "Memory",
    "MemorySwap",
    "NanoCpus",
    "CpuShares",
    "PidsLimit",
    "RestartPolicy",
];

/// `POST /containers/{id}/update`: refuses every property set to a
/// non-zero value that berth does not update.
pub(crate) fn check_update(body: &Value) -> Result<(), ContainerError> {
    let Some(fields) = body.as_object() else {
        return Ok(());
    };
    for (name, v) in fields {
        if UPDATABLE.contains(&name.as_str()) || is_unset(name, v) {
            continue;
        }
        if REFUSED.contains(&name.as_str()) {
            return Err(ContainerError::InvalidArgument(refusal(name, v)));
        }
        if HONOURED.contains(&name.as_str()) {
            return Err(ContainerError::InvalidArgument(format!(
                "HostConfig.{name} cannot be updated by berth (got {v}); recreate the container"
            )));
        }
    }
    Ok(())
}

/// `--mount` options berth does not act on are refused, naming the entry.
fn check_mount(i: usize, m: &Mount) -> Result<(), ContainerError> {
    let refuse = |field: &str| {
        Err(ContainerError::InvalidArgument(format!(
            "HostConfig.Mounts[{i}].{field} is not supported by berth (mount of {:?})",
            m.target
        )))
    };
    match m.kind.as_str() {
        "bind" | "volume" | "tmpfs" => {}
        other => {
            return Err(ContainerError::InvalidArgument(format!(
                "HostConfig.Mounts[{i}].Type {other:?} is not supported by berth (want bind, volume or tmpfs)"
            )))
        }
    }
    if let Some(b) = &m.bind_options {
        if !b.propagation.is_empty() {
            return refuse("BindOptions.Propagation");
        }
        if b.non_recursive || b.read_only_non_recursive || b.read_only_force_recursive {
            return refuse("BindOptions (recursion flags)");
        }
        if b.create_mountpoint {
            return refuse("BindOptions.CreateMountpoint");
        }
    }
    if let Some(v) = &m.volume_options {
        if v.no_copy {
            return refuse("VolumeOptions.NoCopy");
        }
        if !v.subpath.is_empty() {
            return refuse("VolumeOptions.Subpath");
        }
        if v.labels.as_ref().is_some_and(|l| !l.is_empty()) {
            return refuse("VolumeOptions.Labels");
        }
        if v.driver_config
            .as_ref()
            .is_some_and(|d| !matches!(d.name.as_str(), "" | "local"))
        {
            return refuse("VolumeOptions.DriverConfig");
        }
    }
    if m.image_options
        .as_ref()
        .is_some_and(|o| !o.subpath.is_empty())
    {
        return refuse("ImageOptions.Subpath");
    }
    if let Some(t) = &m.tmpfs_options {
        if t.options.as_ref().is_some_and(|o| !o.is_empty()) {
            return refuse("TmpfsOptions.Options");
        }
    }
    Ok(())
}

/// `TmpfsOptions` of a `--mount type=tmpfs` as mount options.
pub(crate) fn tmpfs_mount_options(m: &Mount) -> Vec<String> {
    let Some(t) = &m.tmpfs_options else {
        return vec![];
    };
    let mut out = Vec::new();
    if t.size_bytes > 0 {
        out.push(format!("size={}", t.size_bytes));
    }
    if t.mode != 0 {
        out.push(format!("mode={:o}", t.mode));
    }
    out
}

#[cfg(test)]
#[path = "host_config_tests.rs"]
mod tests;
