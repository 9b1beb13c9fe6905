//! Wire types of the Swarm-mode endpoints (`/swarm`, `/nodes`, `/services`,
//! `/tasks`, `/secrets`, `/configs`): swagger definitions of the same
//! names, Engine API 1.47.
//!
//! Specs are stored and returned as the client sent them, so every property
//! is optional and an absent one stays absent on the way out (Go's
//! `omitempty`); defaults are applied where the spec is acted on, and shown
//! only when a client asks for them (`insertDefaults`). Durations are
//! nanoseconds, times RFC 3339 strings, as on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::host_config::Mount;

pub type Labels = BTreeMap<String, String>;

/// `ObjectVersion`: the store's index at the object's last write. Updates
/// must send the version they read; a stale one is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectVersion {
    #[serde(default)]
    pub index: u64,
}

/// `Driver`: a named driver with options (secret drivers, templating).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Driver {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Labels>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, rename = "OS", skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

// ---------------------------------------------------------------- swarm

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrchestrationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_history_retention_limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RaftConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_old_snapshots: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_entries_for_slow_followers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_tick: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_tick: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatcherConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_period: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExternalCa {
    #[serde(default)]
    pub protocol: String,
    #[serde(default, rename = "URL")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Labels>,
    #[serde(default, rename = "CACert", skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cert_expiry: Option<i64>,
    #[serde(
        default,
        rename = "ExternalCAs",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_cas: Option<Vec<ExternalCa>>,
    #[serde(
        default,
        rename = "SigningCACert",
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_ca_cert: Option<String>,
    #[serde(
        default,
        rename = "SigningCAKey",
        skip_serializing_if = "Option::is_none"
    )]
    pub signing_ca_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_rotate: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionConfig {
    #[serde(default)]
    pub auto_lock_managers: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
}

/// `SwarmSpec`: what `swarm init` and `swarm update` set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<OrchestrationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft: Option<RaftConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatcher: Option<DispatcherConfig>,
    #[serde(default, rename = "CAConfig", skip_serializing_if = "Option::is_none")]
    pub ca_config: Option<CaConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_config: Option<EncryptionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_defaults: Option<TaskDefaults>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TlsInfo {
    #[serde(default)]
    pub trust_root: String,
    #[serde(default)]
    pub cert_issuer_subject: String,
    #[serde(default)]
    pub cert_issuer_public_key: String,
}

/// `ClusterInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SwarmSpec,
    #[serde(rename = "TLSInfo")]
    pub tls_info: TlsInfo,
    pub root_rotation_in_progress: bool,
    pub data_path_port: u32,
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTokens {
    pub worker: String,
    pub manager: String,
}

/// `Swarm`: `GET /swarm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(flatten)]
    pub cluster: ClusterInfo,
    pub join_tokens: JoinTokens,
}

/// `POST /swarm/init` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInitRequest {
    #[serde(default)]
    pub listen_addr: String,
    #[serde(default)]
    pub advertise_addr: String,
    #[serde(default)]
    pub data_path_addr: String,
    #[serde(default)]
    pub data_path_port: u32,
    #[serde(default)]
    pub default_addr_pool: Option<Vec<String>>,
    #[serde(default)]
    pub force_new_cluster: bool,
    #[serde(default)]
    pub subnet_size: u32,
    #[serde(default)]
    pub spec: SwarmSpec,
    #[serde(default)]
    pub auto_lock_managers: bool,
    #[serde(default)]
    pub availability: Option<String>,
}

/// `POST /swarm/unlock` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmUnlockRequest {
    #[serde(default)]
    pub unlock_key: String,
}

/// `GET /swarm/unlockkey`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnlockKeyResponse {
    pub unlock_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerNode {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub addr: String,
}

/// `SwarmInfo`: the `Swarm` section of `/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    /// `""`, `inactive`, `pending`, `active`, `error`, `locked`.
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<PeerNode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managers: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
}

// ---------------------------------------------------------------- nodes

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// `worker` | `manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `active` | `pause` | `drain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceObject {
    #[serde(default, rename = "NanoCPUs", skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_resources: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Limit {
    #[serde(default, rename = "NanoCPUs", skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnginePlugin {
    #[serde(rename = "Type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EngineDescription {
    pub engine_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    pub plugins: Vec<EnginePlugin>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDescription {
    pub hostname: String,
    pub platform: Platform,
    pub resources: ResourceObject,
    pub engine: EngineDescription,
    #[serde(rename = "TLSInfo")]
    pub tls_info: TlsInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    /// `unknown` | `down` | `ready` | `disconnected`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagerStatus {
    pub leader: bool,
    /// `unknown` | `unreachable` | `reachable`.
    pub reachability: String,
    pub addr: String,
}

/// `Node`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: NodeSpec,
    pub description: NodeDescription,
    pub status: NodeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<ManagerStatus>,
}

// ---------------------------------------------------------------- tasks

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FileTarget {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "UID")]
    pub uid: String,
    #[serde(default, rename = "GID")]
    pub gid: String,
    #[serde(default)]
    pub mode: u32,
}

/// A secret a task mounts (`ContainerSpec.Secrets[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(default, rename = "SecretID")]
    pub secret_id: String,
    #[serde(default)]
    pub secret_name: String,
}

/// A config a task mounts (`ContainerSpec.Configs[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<serde_json::Value>,
    #[serde(default, rename = "ConfigID")]
    pub config_id: String,
    #[serde(default)]
    pub config_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameservers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmUlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `ContainerSpec.Privileges`. Credential specs and SELinux contexts are
/// Windows and SELinux matters; kept as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Privileges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<serde_json::Value>,
    #[serde(
        default,
        rename = "SELinuxContext",
        skip_serializing_if = "Option::is_none"
    )]
    pub selinux_context: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompOpts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_armor: Option<serde_json::Value>,
    #[serde(default)]
    pub no_new_privileges: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeccompOpts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// `TaskSpec.ContainerSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Privileges>,
    #[serde(default, rename = "TTY", skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(default, rename = "DNSConfig", skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DnsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SecretReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configs: Option<Vec<ConfigReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_add: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_drop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ulimits: Option<Vec<SwarmUlimit>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<i64>,
}

/// `TaskSpec.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `none` | `on-failure` | `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpreadOver {
    #[serde(default)]
    pub spread_descriptor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadOver>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Vec<PlacementPreference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<Platform>>,
}

/// `NetworkAttachmentConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachmentConfig {
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<Labels>,
}

/// `TaskSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskSpec {
    /// Plugin tasks are refused; kept as sent for the error path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_spec: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_attachment_spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<TaskResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_update: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkAttachmentConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<Driver>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    #[serde(
        default,
        rename = "ContainerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    #[serde(default, rename = "PID", skip_serializing_if = "is_zero_i64")]
    pub pid: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub exit_code: i64,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPortConfig>>,
}

/// `TaskStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    pub timestamp: String,
    /// `TaskState`: new, allocated, pending, assigned, accepted, preparing,
    /// ready, starting, running, complete, shutdown, failed, rejected,
    /// remove, orphaned.
    pub state: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<ContainerStatus>,
    #[serde(default)]
    pub port_status: PortStatus,
}

/// `NetworkAttachment` of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    pub network: serde_json::Value,
    pub addresses: Vec<String>,
}

/// `Task`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub labels: Labels,
    pub spec: TaskSpec,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(rename = "NodeID", default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    pub status: TaskStatus,
    pub desired_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks_attachments: Option<Vec<NetworkAttachment>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_iteration: Option<ObjectVersion>,
}

// ---------------------------------------------------------------- services

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicatedJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

/// `ServiceSpec.Mode`: exactly one of these is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated: Option<ReplicatedService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_job: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `ServiceSpec.UpdateConfig` and `RollbackConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// `EndpointPortConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointPortConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default)]
    pub target_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_mode: Option<String>,
}

/// `EndpointSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSpec {
    /// `vip` | `dnsrr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPortConfig>>,
}

/// `ServiceSpec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub task_template: TaskSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServiceMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Deprecated in favour of `TaskTemplate.Networks`, still accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkAttachmentConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualIp {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    pub addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub spec: EndpointSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<EndpointPortConfig>>,
    #[serde(
        default,
        rename = "VirtualIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_ips: Option<Vec<VirtualIp>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`,
    /// `rollback_paused`, `rollback_completed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceStatus {
    pub running_tasks: u64,
    pub desired_tasks: u64,
    pub completed_tasks: u64,
}

/// `Service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: ServiceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    pub endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Only with `status=true` on list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceStatus>,
}

/// `POST /services/create` answer (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCreateResponse {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// `POST /services/{id}/update` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceUpdateResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

// ---------------------------------------------------------------- secrets

/// `SecretSpec`. `Data` is base64 on the wire; it never leaves the daemon
/// again (inspect leaves it out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: SecretSpec,
}

/// `ConfigSpec`. Unlike a secret's, a config's `Data` is returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: ObjectVersion,
    pub created_at: String,
    pub updated_at: String,
    pub spec: ConfigSpec,
}

/// `{"Id": …}` answers of secret and config create (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdResponse {
    #[serde(rename = "ID")]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_service_spec_round_trips() {
        // What `docker service create --name web --replicas 3 -p 8080:80
        // busybox httpd -f` sends (docker CLI 28), trimmed of nothing.
        let sent = serde_json::json!({
            "Name": "web",
            "Labels": {},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox:latest",
                    "Args": ["httpd", "-f"],
                    "Init": false,
                    "StopGracePeriod": 10000000000i64,
                    "DNSConfig": {},
                    "Isolation": "default"
                },
                "Resources": {"Limits": {}, "Reservations": {}},
                "RestartPolicy": {"Condition": "any", "Delay": 5000000000i64, "MaxAttempts": 0},
                "Placement": {},
                "ForceUpdate": 0,
                "Runtime": "container"
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000i64, "MaxFailureRatio": 0.0, "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000i64, "MaxFailureRatio": 0.0, "Order": "stop-first"},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}
        });
        let spec: ServiceSpec = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(
            spec.mode
                .as_ref()
                .unwrap()
                .replicated
                .as_ref()
                .unwrap()
                .replicas,
            Some(3)
        );
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back, sent, "a spec comes back as it was sent");
    }

    #[test]
    fn swarm_flattens_cluster_info() {
        let s = Swarm {
            cluster: ClusterInfo {
                id: "abc".into(),
                ..Default::default()
            },
            join_tokens: JoinTokens::default(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["ID"], "abc");
        assert!(v["JoinTokens"].is_object());
        assert_eq!(v["Version"]["Index"], 0);
    }
}
