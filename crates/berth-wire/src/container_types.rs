//! Wire types of the container endpoints (swagger `ContainerConfig`,
//! `HostConfig`, `ContainerSummary`, `ContainerInspectResponse`,
//! `ContainerWaitResponse`). Every property of the swagger `ContainerConfig`
//! and `HostConfig` has a typed field ([`crate::host_config`]); none goes
//! through a map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::host_config::{
    BindOptions, DeviceRequest, DriverConfig, HostConfig, ImageOptions, Mount, PortBinding,
    ThrottleDevice, TmpfsOptions, VolumeOptions, WeightDevice,
};

/// `POST /containers/create` body: the container config with `HostConfig`
/// and `NetworkingConfig` alongside.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub host_config: HostConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<NetworkingConfig>,
}

/// `NetworkingConfig`: the endpoint settings of the networks a container
/// joins at create, by network name.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    /// A `null` entry (Go's nil `*EndpointSettings`) reads as the default.
    #[serde(default, deserialize_with = "nullable_entries")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// The `EndpointSettings` properties a client sets at create or connect
/// (the rest are the daemon's answers, read back by inspect).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(
        rename = "IPAMConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// `EndpointIPAMConfig`: the addresses asked for (`--ip`, `--ip6`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "IPv6Address",
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    #[serde(
        rename = "LinkLocalIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub link_local_ips: Option<Vec<String>>,
}

fn nullable_entries<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let m = Option::<BTreeMap<String, Option<T>>>::deserialize(d)?;
    Ok(m.into_iter()
        .flatten()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `HealthConfig` (`Config.Healthcheck`): zero fields are left out, as
/// Go's `omitempty` does, so they inherit the image's. Durations are in
/// nanoseconds.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "crate::host_config::nullable",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub hostname: String,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub domainname: String,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// A [`HealthConfig`] as JSON: the image's is inherited as it was
    /// stored, unknown properties and all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// Windows only (the command line is already escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    /// The image's `SHELL`, for `RUN`/`CMD`/`ENTRYPOINT` in shell form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Deprecated since API 1.44 (the endpoint's `MacAddress` replaces it);
    /// read from older clients, omitted unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Ulimit {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Soft")]
    pub soft: i64,
    #[serde(rename = "Hard")]
    pub hard: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default)]
    pub path_on_host: String,
    #[serde(default)]
    pub path_in_container: String,
    #[serde(default)]
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateResponse {
    pub id: String,
    /// Older daemons send `null` for none.
    #[serde(default, deserialize_with = "crate::host_config::nullable")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Value>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: Value,
    pub network_settings: Value,
    pub mounts: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: crate::types::GraphDriver,
    pub mounts: Vec<Value>,
    pub config: ContainerConfig,
    pub network_settings: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerWaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
}

/// `ContainerWaitExitError`: why waiting failed.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitExitError {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn networking_config_reads_go_clients_and_writes_only_what_is_set() {
        let body: ContainerCreateBody = serde_json::from_value(json!({
            "Image": "busybox",
            "NetworkingConfig": {"EndpointsConfig": {
                "net": {"IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": null},
                        "Links": null, "Aliases": ["a"], "MacAddress": "",
                        "DriverOpts": null, "NetworkID": "", "Gateway": ""},
                "other": null
            }}
        }))
        .unwrap();
        let n = body.networking_config.unwrap();
        assert_eq!(n.endpoints_config["other"], EndpointSettings::default());
        let ep = &n.endpoints_config["net"];
        assert_eq!(
            serde_json::to_value(ep).unwrap(),
            json!({"IPAMConfig": {"IPv4Address": "10.1.0.5"}, "Aliases": ["a"]})
        );
        let none: NetworkingConfig =
            serde_json::from_value(json!({"EndpointsConfig": null})).unwrap();
        assert!(none.endpoints_config.is_empty());
    }

    #[test]
    fn responses_read_with_fields_missing() {
        let w: ContainerWaitResponse =
            serde_json::from_value(json!({"StatusCode": 3, "Error": {"Message": "gone"}})).unwrap();
        assert_eq!(
            (w.status_code, w.error.unwrap().message.as_str()),
            (3, "gone")
        );
        assert_eq!(
            serde_json::to_value(ContainerWaitResponse::default()).unwrap(),
            json!({"StatusCode": 0})
        );
        let c: ContainerInspect = serde_json::from_value(json!({
            "Id": "abc", "State": {"Running": true}, "Config": {"Tty": true},
            "HostConfig": {"AutoRemove": true}
        }))
        .unwrap();
        assert!(c.state.running && c.config.tty && c.host_config.auto_remove);
        let r: ContainerCreateResponse =
            serde_json::from_value(json!({"Id": "abc", "Warnings": null})).unwrap();
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn health_config_leaves_out_zero_fields() {
        let h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 2,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2})
        );
        let back: HealthConfig =
            serde_json::from_value(json!({"Test": null, "Timeout": null, "Retries": 1})).unwrap();
        assert_eq!(
            back,
            HealthConfig {
                retries: 1,
                ..Default::default()
            }
        );
    }
}
