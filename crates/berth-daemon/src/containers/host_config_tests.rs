//! Tests of [`super`]: the lists against the Engine API swagger, and the
//! refusals.

use std::collections::BTreeSet;
use std::path::PathBuf;

use berth_api::container_types::{ContainerConfig, HostConfig, Mount, TmpfsOptions};
use serde_json::json;

use super::*;

fn swagger() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../berth-wire/testdata/engine-api/swagger.yaml");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading the Engine API swagger {}: {e}", path.display()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The top-level property names of swagger definition `name`, following
/// `allOf` `$ref`s to other definitions. A small reader for the layout of
/// moby's swagger.yaml (two-space indents, one key per line) rather than a
/// YAML dependency.
fn properties(yaml: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let defs = lines
        .iter()
        .position(|l| *l == "definitions:")
        .expect("swagger has definitions");
    let header = format!("  {name}:");
    let start = (defs..lines.len())
        .find(|&i| lines[i] == header)
        .unwrap_or_else(|| panic!("swagger has no definition {name}"));
    let end = (start + 1..lines.len())
        .find(|&i| !lines[i].trim().is_empty() && indent(lines[i]) <= 2)
        .unwrap_or(lines.len());
    let body = &lines[start + 1..end];
    let mut out = Vec::new();
    let top = body
        .iter()
        .filter(|l| l.trim() == "properties:")
        .map(|l| indent(l))
        .min();
    if let Some(p) = top {
        let mut in_props = false;
        for l in body {
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let i = indent(l);
            if l.trim() == "properties:" && i == p {
                in_props = true;
                continue;
            }
            if in_props && i <= p {
                in_props = false;
            }
            if in_props && i == p + 2 {
                let key = l.trim().trim_end_matches(':');
                if l.trim().ends_with(':') && key.chars().all(|c| c.is_ascii_alphanumeric()) {
                    out.push(key.to_string());
                }
            }
        }
    }
    for l in body {
        if let Some(r) = l.trim().strip_prefix("- $ref: \"#/definitions/") {
            out.extend(properties(yaml, r.trim_end_matches('"')));
        }
    }
    out
}

fn classified() -> Vec<&'static str> {
    HONOURED
        .iter()
        .chain(REFUSED)
        .copied()
        .chain(IGNORED.iter().map(|(n, _)| *n))
        .collect()
}

#[test]
fn every_swagger_property_is_classified() {
    let yaml = swagger();
    let props = properties(&yaml, "HostConfig");
    // Resources' and HostConfig's own, as of API 1.56.
    assert!(props.len() >= 69, "only {} properties read", props.len());
    assert!(
        props.iter().any(|p| p == "CpuShares"),
        "Resources not followed"
    );
    let all = classified();
    let mut problems = Vec::new();
    for p in &props {
        match all.iter().filter(|n| *n == p).count() {
            0 => problems.push(format!(
                "HostConfig.{p} is in none of HONOURED, REFUSED, IGNORED"
            )),
            1 => {}
            n => problems.push(format!("HostConfig.{p} is in {n} lists")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_classified_name_is_a_typed_field() {
    let h = HostConfig {
        kernel_memory: Some(0),
        kernel_memory_tcp: Some(0),
        ..Default::default()
    };
    let wire = serde_json::to_value(&h).unwrap();
    let fields: BTreeSet<&str> = wire
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let all = classified();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a name is listed twice");
    assert_eq!(unique, fields, "lists and HostConfig fields differ");
}

#[test]
fn every_container_config_property_is_a_typed_field() {
    let yaml = swagger();
    let props = properties(&yaml, "ContainerConfig");
    assert!(props.len() >= 20, "only {} properties read", props.len());
    // Every Option set, so nothing is skipped when serializing.
    let c: ContainerConfig = serde_json::from_value(json!({
        "ExposedPorts": {}, "Healthcheck": {}, "StopSignal": "", "StopTimeout": 1,
        "ArgsEscaped": false, "NetworkDisabled": false, "Shell": [], "MacAddress": "",
        "Env": [], "Cmd": [], "Volumes": {}, "Entrypoint": [], "OnBuild": [], "Labels": {}
    }))
    .unwrap();
    let wire = serde_json::to_value(&c).unwrap();
    let missing: Vec<_> = props
        .iter()
        .filter(|p| wire.get(p.as_str()).is_none())
        .collect();
    assert!(missing.is_empty(), "ContainerConfig lacks {missing:?}");
}

#[test]
fn host_config_round_trips_docker_names() {
    let sent = json!({
        "PidMode": "container:db", "IpcMode": "shareable", "UTSMode": "host",
        "CgroupnsMode": "private", "UsernsMode": "host", "ExtraHosts": ["a:1.2.3.4"],
        "Dns": ["9.9.9.9"], "DnsSearch": ["x"], "DnsOptions": ["ndots:1"],
        "PublishAllPorts": true, "BlkioWeight": 300, "IOMaximumIOps": 5,
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "81/tcp": null},
        "Runtime": null, "ContainerIDFile": null, "Unknown": {"from": "a newer client"}
    });
    let h: HostConfig = serde_json::from_value(sent.clone()).unwrap();
    assert_eq!(h.pid_mode, "container:db");
    assert_eq!(h.uts_mode, "host");
    assert_eq!(h.blkio_weight, 300);
    assert_eq!(h.io_maximum_iops, 5);
    assert_eq!(h.port_binding_list().len(), 1);
    let back = serde_json::to_value(&h).unwrap();
    for k in [
        "PidMode",
        "IpcMode",
        "UTSMode",
        "CgroupnsMode",
        "UsernsMode",
        "ExtraHosts",
    ] {
        assert_eq!(back[k], sent[k], "{k}");
    }
    assert!(back.get("Unknown").is_none());
}

#[test]
fn refused_fields_are_named_and_zero_values_pass() {
    let zero: HostConfig = serde_json::from_value(json!({
        "BlkioWeight": 0, "CgroupParent": "", "BlkioWeightDevice": [], "MemorySwappiness": -1,
        "OomKillDisable": false, "Isolation": "default", "VolumesFrom": null, "CpusetCpus": ""
    }))
    .unwrap();
    assert_eq!(check(&zero).unwrap(), Vec::<String>::new());
    for (body, needle) in [
        (
            json!({"BlkioWeight": 500}),
            "HostConfig.BlkioWeight is not supported by berth",
        ),
        (json!({"CgroupParent": "/x"}), "HostConfig.CgroupParent"),
        (json!({"CpusetCpus": "0"}), "HostConfig.CpusetCpus"),
        (json!({"IOMaximumIOps": 10}), "maximum IOPs"),
        (json!({"Isolation": "hyperv"}), "Invalid isolation"),
        (json!({"OomKillDisable": true}), "HostConfig.OomKillDisable"),
    ] {
        let h: HostConfig = serde_json::from_value(body).unwrap();
        let e = check(&h).unwrap_err();
        assert!(matches!(e, ContainerError::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn ignored_fields_come_back_as_warnings() {
    let h: HostConfig = serde_json::from_value(json!({"CpuCount": 2, "KernelMemory": 1})).unwrap();
    let w = check(&h).unwrap();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("HostConfig.CpuCount is ignored: Windows only"));
}

#[test]
fn mount_options_berth_cannot_honour_are_refused() {
    let h = HostConfig {
        mounts: Some(vec![Mount {
            kind: "tmpfs".into(),
            target: "/t".into(),
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: 1 << 20,
                mode: 0o700,
                options: None,
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    check(&h).unwrap();
    assert_eq!(
        tmpfs_mount_options(&h.mounts.as_ref().unwrap()[0]),
        ["size=1048576", "mode=700"]
    );
    let h: HostConfig = serde_json::from_value(json!({"Mounts": [
        {"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"Propagation": "rshared"}}
    ]}))
    .unwrap();
    let e = check(&h).unwrap_err().to_string();
    assert!(
        e.contains("HostConfig.Mounts[0].BindOptions.Propagation"),
        "{e}"
    );
    let h: HostConfig = serde_json::from_value(
        json!({"Mounts": [{"Type": "image", "Source": "x", "Target": "/b"}]}),
    )
    .unwrap();
    assert!(check(&h)
        .unwrap_err()
        .to_string()
        .contains("Mounts[0].Type"));
}

#[test]
fn update_refuses_what_it_would_drop() {
    check_update(&json!({"Memory": 10485760, "BlkioWeight": 0, "CpuQuota": 0})).unwrap();
    let e = check_update(&json!({"CpusetCpus": "0-1"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("HostConfig.CpusetCpus"), "{e}");
    let e = check_update(&json!({"CpuQuota": 50000}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("HostConfig.CpuQuota cannot be updated"), "{e}");
}
