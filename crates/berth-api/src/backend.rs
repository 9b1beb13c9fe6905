//! What the API needs from the engine, as small role traits (one per
//! resource, like moby's `router/<resource>/backend.go`). Methods are
//! blocking; the routes call them on the blocking pool.

use std::io::{Read, Write};

use crate::error::ApiResult;
use crate::filters::Filters;
use crate::types::*;

/// Everything the API serves.
pub trait Backend:
    SystemBackend
    + ImageBackend
    + ContainerBackend
    + ExecBackend
    + VolumeBackend
    + NetworkBackend
    + BuildBackend
    + SwarmBackend
    + Send
    + Sync
    + 'static
{
}
impl<
        T: SystemBackend
            + ImageBackend
            + ContainerBackend
            + ExecBackend
            + VolumeBackend
            + NetworkBackend
            + BuildBackend
            + SwarmBackend
            + Send
            + Sync
            + 'static,
    > Backend for T
{
}

pub struct EventSubscription {
    /// Buffered events matching `since`.
    pub past: Vec<Event>,
    /// Every event from the subscription on; closed when the backend
    /// stops. Dropping it ends the subscription.
    pub live: tokio::sync::mpsc::Receiver<Event>,
}

pub trait SystemBackend {
    fn version(&self) -> Version;
    fn info(&self) -> ApiResult<Info>;
    fn disk_usage(&self) -> ApiResult<DiskUsage>;
    /// Subscribes to events; `since` (unix nanoseconds) selects buffered ones.
    fn subscribe_events(&self, since: Option<i64>) -> EventSubscription;
}

#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: Filters,
    pub digests: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub source: String,
}

/// Writes an archive once the response has started.
pub type SaveJob = Box<dyn FnOnce(&mut dyn Write) -> ApiResult<()> + Send>;

pub trait ImageBackend {
    fn list_images(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>>;
    fn inspect_image(&self, name: &str) -> ApiResult<ImageInspect>;
    fn image_history(&self, name: &str) -> ApiResult<Vec<HistoryItem>>;
    fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()>;
    fn remove_image(&self, name: &str, force: bool, noprune: bool) -> ApiResult<Vec<DeleteItem>>;
    fn prune_images(&self, filters: &Filters) -> ApiResult<ImagePruneReport>;
    /// Returns the new image ID.
    fn import_image(&self, body: Box<dyn Read + Send>, req: ImportRequest) -> ApiResult<String>;
    /// Returns the lines to report, e.g. `Loaded image: busybox:latest`.
    fn load_images(&self, body: Box<dyn Read + Send>) -> ApiResult<Vec<String>>;
    /// Resolves names now; the job streams the archive later.
    fn save_images(&self, names: &[String], format: Option<&str>) -> ApiResult<SaveJob>;
    /// `POST /images/create?fromImage=`: pulls, sending Docker's progress
    /// messages (JSON objects) to `progress` as it goes.
    fn pull_image(&self, req: PullRequest, progress: ProgressFn) -> ApiResult<()> {
        let _ = (req, progress);
        Err(crate::ApiError::new(
            berth_core::ErrorKind::NotImplemented,
            "pulling images is not implemented",
        ))
    }
    /// `POST /images/{name}/push`.
    fn push_image(&self, req: PushRequest, progress: ProgressFn) -> ApiResult<()> {
        let _ = (req, progress);
        Err(crate::ApiError::new(
            berth_core::ErrorKind::NotImplemented,
            "pushing images is not implemented",
        ))
    }
    /// `POST /auth`: checks credentials against the registry.
    fn registry_login(&self, auth: RegistryAuth) -> ApiResult<()> {
        let _ = auth;
        Err(crate::ApiError::new(
            berth_core::ErrorKind::NotImplemented,
            "registry login is not implemented",
        ))
    }
}

/// Receives progress messages of a pull or push.
pub type ProgressFn = std::sync::Arc<dyn Fn(serde_json::Value) + Send + Sync>;

/// Docker's `AuthConfig`: the `X-Registry-Auth` header (base64url JSON) and
/// the body of `POST /auth`. Kept raw; the engine decodes it.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    /// The header value, or the JSON body of `/auth`.
    pub raw: String,
}

#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub from_image: String,
    pub tag: Option<String>,
    pub platform: Option<String>,
    pub auth: Option<RegistryAuth>,
    /// Every tag of the repository (`docker pull -a`). Set only by the API
    /// route, for a bare `fromImage` without `tag`, as dockerd reads it;
    /// a pull the engine starts itself (a build's `FROM`) never is.
    pub all_tags: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    pub name: String,
    pub tag: Option<String>,
    pub auth: Option<RegistryAuth>,
    /// Layer compression (`gzip`, the default, or `zstd`): berth's own
    /// `compression` query parameter; docker's client never sends it.
    pub compression: Option<String>,
}

pub use crate::container_types::*;

/// A future resolved on a background task.
pub type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    pub all: bool,
    pub limit: Option<i64>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    /// `None` = all lines.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub logs: bool,
}

/// An attached stream: bytes to the container's stdin go to `input`; what
/// `output` yields is already in the wire format (multiplexed unless `tty`).
pub struct Attached {
    pub tty: bool,
    pub io: tokio::net::UnixStream,
}

pub struct LogStream {
    pub tty: bool,
    pub frames: tokio::sync::mpsc::Receiver<bytes::Bytes>,
}

pub trait ContainerBackend {
    fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> ApiResult<ContainerCreateResponse>;
    fn list_containers(&self, opts: ListContainersOptions) -> ApiResult<Vec<ContainerSummary>>;
    fn inspect_container(&self, name: &str, size: bool) -> ApiResult<ContainerInspect>;
    /// `Ok(false)`: it was already running (HTTP 304).
    fn start_container(&self, name: &str) -> ApiResult<bool>;
    /// `Ok(false)`: it was not running (HTTP 304).
    fn stop_container(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> ApiResult<bool>;
    fn restart_container(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> ApiResult<()>;
    fn kill_container(&self, name: &str, signal: Option<&str>) -> ApiResult<()>;
    fn remove_container(&self, name: &str, force: bool, volumes: bool) -> ApiResult<()>;
    /// Resolves when `condition` (`not-running`, `next-exit`, `removed`) is met.
    fn wait_container(
        &self,
        name: &str,
        condition: &str,
    ) -> ApiResult<BoxFut<ApiResult<ContainerWaitResponse>>>;
    fn container_logs(&self, name: &str, opts: LogsOptions) -> ApiResult<LogStream>;
    /// Checks now; the future connects once the container runs.
    fn attach_container(
        &self,
        name: &str,
        opts: AttachOptions,
    ) -> ApiResult<(bool, BoxFut<ApiResult<Attached>>)>;
    fn resize_container(&self, name: &str, height: u16, width: u16) -> ApiResult<()>;
    fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()>;
    fn prune_containers(&self, filters: &Filters) -> ApiResult<serde_json::Value>;
    fn pause_container(&self, name: &str, pause: bool) -> ApiResult<()>;
    /// `{"Titles": [...], "Processes": [[...]]}`
    fn top_container(&self, name: &str, ps_args: &str) -> ApiResult<serde_json::Value>;
    /// `[{"Path", "Kind"}]`
    fn container_changes(&self, name: &str) -> ApiResult<serde_json::Value>;
    /// One sample in the API's stats shape (without `precpu_stats`).
    fn container_stats(&self, name: &str) -> ApiResult<serde_json::Value>;
    /// Returns warnings.
    fn update_container(&self, name: &str, update: serde_json::Value) -> ApiResult<Vec<String>>;
    /// Returns the new image ID.
    fn commit_container(&self, req: CommitContainer) -> ApiResult<String>;
    /// `{"name","size","mode","mtime","linkTarget"}` of a path in the container.
    fn container_path_stat(&self, name: &str, path: &str) -> ApiResult<serde_json::Value>;
    /// The stat of `path` and a job writing its tar.
    fn container_archive(&self, name: &str, path: &str) -> ApiResult<(serde_json::Value, SaveJob)>;
    fn container_extract(
        &self,
        name: &str,
        path: &str,
        body: Box<dyn Read + Send>,
    ) -> ApiResult<()>;
}

#[derive(Debug, Clone, Default)]
pub struct CommitContainer {
    pub container: String,
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    pub pause: bool,
}

/// `POST /containers/{id}/exec` (Docker's `ExecConfig`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecCreateBody {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    /// `[height, width]`.
    pub console_size: Option<Vec<u16>>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
}

/// `POST /exec/{id}/start` (Docker's `ExecStartConfig`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartBody {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExecProcessConfig {
    pub privileged: bool,
    pub user: String,
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    pub can_remove: bool,
    pub detach_keys: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// `null` until the process has exited.
    pub exit_code: Option<i64>,
    pub process_config: ExecProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub pid: i64,
}

/// A started, attached exec: the stream is already in the wire format
/// (multiplexed unless `tty`); bytes written to it go to the process's
/// stdin when it has one, and shutting down its write half closes that.
pub struct ExecStream {
    pub tty: bool,
    pub io: std::os::unix::net::UnixStream,
}

pub trait ExecBackend {
    /// Returns the new exec's ID.
    fn create_exec(&self, container: &str, body: ExecCreateBody) -> ApiResult<String>;
    /// Starts the process; `None` when detached, else its stream.
    fn start_exec(&self, id: &str, opts: ExecStartBody) -> ApiResult<Option<ExecStream>>;
    fn inspect_exec(&self, id: &str) -> ApiResult<ExecInspect>;
    fn resize_exec(&self, id: &str, height: u16, width: u16) -> ApiResult<()>;
}

pub trait VolumeBackend {
    fn list_volumes(&self, filters: &Filters) -> ApiResult<serde_json::Value>;
    fn create_volume(&self, body: serde_json::Value) -> ApiResult<serde_json::Value>;
    fn inspect_volume(&self, name: &str) -> ApiResult<serde_json::Value>;
    fn remove_volume(&self, name: &str, force: bool) -> ApiResult<()>;
    fn prune_volumes(&self, filters: &Filters) -> ApiResult<serde_json::Value>;
}

/// `/networks`: Docker's JSON shapes pass through as values.
pub trait NetworkBackend {
    fn list_networks(&self, filters: &Filters) -> ApiResult<Vec<serde_json::Value>>;
    fn inspect_network(&self, name: &str, verbose: bool) -> ApiResult<serde_json::Value>;
    /// Returns `{"Id", "Warning"}`.
    fn create_network(&self, body: serde_json::Value) -> ApiResult<serde_json::Value>;
    fn remove_network(&self, name: &str) -> ApiResult<()>;
    /// Body: `{"Container", "EndpointConfig"}`.
    fn connect_network(&self, name: &str, body: serde_json::Value) -> ApiResult<()>;
    /// Body: `{"Container", "Force"}`.
    fn disconnect_network(&self, name: &str, body: serde_json::Value) -> ApiResult<()>;
    fn prune_networks(&self, filters: &Filters) -> ApiResult<serde_json::Value>;
}

/// `POST /build` query parameters (the classic builder's options).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// `t`: names to tag the result with.
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `buildargs`; a `None` value means "from the client's environment",
    /// which the client has already resolved, so it is left unset.
    pub build_args: std::collections::BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `cachefrom` (a JSON array): local images whose build steps may
    /// stand in for this build's, as the classic builder's `--cache-from`.
    pub cache_from: Vec<String>,
    pub pull: bool,
    /// `q`: only the image ID is printed.
    pub quiet: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    pub network_mode: String,
    /// `rm` (default true): remove intermediate containers after a success.
    pub rm: bool,
    /// `forcerm`: remove them also after a failure.
    pub force_rm: bool,
    /// `trusthostca` (a berth extension): RUN steps trust the host's CA
    /// bundle, mounted read-only, never stored in a layer or the config.
    pub trust_host_ca: bool,
    /// Secrets for `RUN --mount=type=secret` (`berth build --secret`),
    /// sent in the `X-Berth-Build-Secrets` header (a berth extension).
    pub secrets: BuildSecrets,
    /// The context tar's size, when the client sent a `Content-Length`.
    pub context_size: Option<u64>,
}

/// Build secrets by id. Their values are never printed: `Debug` shows the
/// ids only, so a logged request cannot leak them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BuildSecrets(pub std::collections::BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for BuildSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// `POST /build/prune` (`docker builder prune`).
#[derive(Debug, Clone, Default)]
pub struct BuildPruneRequest {
    /// `all`: also the cache mounts (`RUN --mount=type=cache`).
    pub all: bool,
    /// `filters={"until": …}`: only what was last used before this unix time.
    pub until: Option<i64>,
}

/// What a build-cache prune removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildPruneReport {
    pub caches_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// One message of a build's progress stream.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildMessage {
    /// Text for the user (`{"stream": …}`).
    Stream(String),
    /// The ID of a built stage or image (`{"aux": {"ID": …}}`).
    ImageId(String),
}

/// A build failure after the stream started: Docker reports it in the
/// stream (`{"errorDetail": {"code", "message"}, "error"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildFailure {
    pub message: String,
    /// A failed `RUN`'s exit code (the docker CLI exits with it).
    pub code: Option<i64>,
}

pub trait BuildBackend {
    /// Builds from the tar `context`, reporting progress through
    /// `progress`; returns the image ID.
    fn build(
        &self,
        context: Box<dyn Read + Send>,
        req: BuildRequest,
        progress: &mut dyn FnMut(BuildMessage),
    ) -> Result<String, BuildFailure>;

    /// Removes unused build-cache entries (and, with `all`, cache mounts).
    fn prune_build_cache(&self, req: BuildPruneRequest) -> ApiResult<BuildPruneReport>;
}

/// `POST /swarm/update` query options.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwarmUpdateFlags {
    pub version: u64,
    pub rotate_worker_token: bool,
    pub rotate_manager_token: bool,
    pub rotate_unlock_key: bool,
}

/// `POST /services/{id}/update` query options.
#[derive(Debug, Clone, Default)]
pub struct ServiceUpdateFlags {
    pub version: u64,
    /// `spec` (default) or `previous-spec`.
    pub registry_auth_from: Option<String>,
    /// `previous`: roll back to the service's previous spec.
    pub rollback: Option<String>,
}

/// The Swarm-mode endpoints. When the node is not in a swarm every method
/// but `swarm_init`, `swarm_join`, `swarm_leave` and `swarm_info` answers
/// dockerd's 503.
pub trait SwarmBackend {
    fn swarm_info(&self) -> berth_wire::swarm::SwarmInfo;
    fn swarm_inspect(&self) -> ApiResult<berth_wire::swarm::Swarm>;
    /// Returns the node ID.
    fn swarm_init(&self, req: berth_wire::swarm::SwarmInitRequest) -> ApiResult<String>;
    fn swarm_join(&self, body: serde_json::Value) -> ApiResult<()>;
    fn swarm_leave(&self, force: bool) -> ApiResult<()>;
    fn swarm_update(
        &self,
        spec: berth_wire::swarm::SwarmSpec,
        flags: SwarmUpdateFlags,
    ) -> ApiResult<()>;
    fn swarm_unlock_key(&self) -> ApiResult<berth_wire::swarm::UnlockKeyResponse>;
    fn swarm_unlock(&self, req: berth_wire::swarm::SwarmUnlockRequest) -> ApiResult<()>;

    fn list_nodes(&self, filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Node>>;
    fn inspect_node(&self, id: &str) -> ApiResult<berth_wire::swarm::Node>;
    fn update_node(
        &self,
        id: &str,
        version: u64,
        spec: berth_wire::swarm::NodeSpec,
    ) -> ApiResult<()>;
    fn remove_node(&self, id: &str, force: bool) -> ApiResult<()>;

    fn list_services(
        &self,
        filters: &Filters,
        status: bool,
    ) -> ApiResult<Vec<berth_wire::swarm::Service>>;
    fn create_service(
        &self,
        spec: berth_wire::swarm::ServiceSpec,
    ) -> ApiResult<berth_wire::swarm::ServiceCreateResponse>;
    fn inspect_service(
        &self,
        id: &str,
        insert_defaults: bool,
    ) -> ApiResult<berth_wire::swarm::Service>;
    fn update_service(
        &self,
        id: &str,
        spec: berth_wire::swarm::ServiceSpec,
        flags: ServiceUpdateFlags,
    ) -> ApiResult<berth_wire::swarm::ServiceUpdateResponse>;
    fn remove_service(&self, id: &str) -> ApiResult<()>;

    fn list_tasks(&self, filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Task>>;
    fn inspect_task(&self, id: &str) -> ApiResult<berth_wire::swarm::Task>;

    fn list_secrets(&self, filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Secret>>;
    fn create_secret(&self, spec: berth_wire::swarm::SecretSpec) -> ApiResult<String>;
    fn inspect_secret(&self, id: &str) -> ApiResult<berth_wire::swarm::Secret>;
    fn update_secret(
        &self,
        id: &str,
        version: u64,
        spec: berth_wire::swarm::SecretSpec,
    ) -> ApiResult<()>;
    fn remove_secret(&self, id: &str) -> ApiResult<()>;

    fn list_configs(&self, filters: &Filters) -> ApiResult<Vec<berth_wire::swarm::Config>>;
    fn create_config(&self, spec: berth_wire::swarm::ConfigSpec) -> ApiResult<String>;
    fn inspect_config(&self, id: &str) -> ApiResult<berth_wire::swarm::Config>;
    fn update_config(
        &self,
        id: &str,
        version: u64,
        spec: berth_wire::swarm::ConfigSpec,
    ) -> ApiResult<()>;
    fn remove_config(&self, id: &str) -> ApiResult<()>;
}
