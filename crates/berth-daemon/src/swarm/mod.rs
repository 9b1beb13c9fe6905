//! Swarm mode on one node: the cluster's state and its verbs.
//!
//! `swarm init` makes this engine the only manager of a new cluster: the
//! cluster, node, service, task, secret and config objects live in a
//! [`ClusterStore`] (the engine's own redb file, `<data-root>/swarm/
//! state.db`), and an orchestrator thread ([`executor`]) turns services
//! into tasks with berth-swarm's pure `plan` and tasks into containers
//! through the container service. The store outlives the daemon: a
//! restarted engine reopens it, adopts the task containers that kept
//! running (live restore) and resumes. `swarm leave --force` removes the
//! task containers and the state.
//!
//! Object versions are the store's revisions: every read sets
//! `Version.Index` from the record, and every update compares it.

mod executor;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use berth_core::{ErrorKind, HasKind};
use berth_swarm::objects::{format_time, TaskRecord, TaskState};
use berth_swarm::store::StoreError;
use berth_swarm::{ClusterStore, Kind, LocalStore, Op};
use berth_wire::swarm::{
    CaConfig, ClusterInfo, DispatcherConfig, EncryptionConfig, EngineDescription, JoinTokens,
    ManagerStatus, Node, NodeDescription, NodeSpec, NodeStatus, ObjectVersion, OrchestrationConfig,
    PeerNode, Platform, RaftConfig, ResourceObject, Service, ServiceSpec, Swarm, SwarmInfo,
    SwarmInitRequest, SwarmSpec, TaskDefaults,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::containers::ContainerService;
use crate::events::EventBus;
use crate::images::ImageService;

pub use executor::{task_name, Orchestrator};

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
const NO_SWARM: &str = "This node is not part of a swarm";
const SWARM_EXISTS: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";
const LAST_MANAGER: &str = "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.";

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("stored {kind} {id} is unreadable: {reason}")]
    Corrupt {
        kind: &'static str,
        id: String,
        reason: String,
    },
}

impl HasKind for SwarmError {
    fn kind(&self) -> ErrorKind {
        match self {
            SwarmError::Unavailable(_) => ErrorKind::Unavailable,
            SwarmError::NotFound(_) => ErrorKind::NotFound,
            SwarmError::Conflict(_) => ErrorKind::Conflict,
            SwarmError::Invalid(_) => ErrorKind::InvalidArgument,
            SwarmError::Precondition(_) => ErrorKind::FailedPrecondition,
            SwarmError::NotImplemented(_) => ErrorKind::NotImplemented,
            SwarmError::Store(StoreError::Stale { .. }) => ErrorKind::Conflict,
            SwarmError::Store(StoreError::Exists(..)) => ErrorKind::Conflict,
            SwarmError::Store(StoreError::Missing(..)) => ErrorKind::NotFound,
            SwarmError::Store(StoreError::Backend { .. }) => ErrorKind::Internal,
            SwarmError::Io { .. } | SwarmError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}

pub type SwarmResult<T> = Result<T, SwarmError>;

/// A swarm object ID: 25 characters of `[0-9a-z]`, as swarmkit's.
pub fn new_id() -> String {
    let mut n = rand::random::<u128>();
    let mut s = String::with_capacity(25);
    for _ in 0..25 {
        let d = (n % 36) as u32;
        n /= 36;
        s.push(char::from_digit(d, 36).expect("digit"));
    }
    s
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The orchestrator's handle on a joined cluster.
pub(crate) struct Active {
    pub store: Arc<dyn ClusterStore>,
    pub node_id: String,
    pub orchestrator: Orchestrator,
}

/// The swarm service: membership, the cluster objects and the
/// orchestrator.
pub struct SwarmService {
    dir: PathBuf,
    hostname: String,
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    events: Arc<EventBus>,
    active: RwLock<Option<Arc<Active>>>,
    /// Serializes init/leave.
    membership: Mutex<()>,
}

/// Reads a stored object, its version taken from the record.
pub(crate) fn decode<T: DeserializeOwned>(kind: Kind, rec: &berth_swarm::Record) -> SwarmResult<T> {
    serde_json::from_slice(&rec.value).map_err(|e| SwarmError::Corrupt {
        kind: kind.as_str(),
        id: rec.id.clone(),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("cluster objects serialize")
}

impl SwarmService {
    pub fn new(
        data_root: &Path,
        containers: Arc<ContainerService>,
        images: Arc<ImageService>,
        events: Arc<EventBus>,
    ) -> Arc<SwarmService> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        Arc::new(SwarmService {
            dir: data_root.join("swarm"),
            hostname,
            containers,
            images,
            events,
            active: RwLock::new(None),
            membership: Mutex::new(()),
        })
    }

    fn db_path(&self) -> PathBuf {
        self.dir.join("state.db")
    }

    /// Rejoins the cluster this engine was part of when it stopped, and
    /// starts the orchestrator. Called once the async runtime runs.
    pub fn resume(self: &Arc<Self>, rt: tokio::runtime::Handle) -> SwarmResult<()> {
        if !self.db_path().exists() {
            return Ok(());
        }
        let store: Arc<dyn ClusterStore> = Arc::new(LocalStore::open(&self.db_path())?);
        let Some(node) = store.list(Kind::Node)?.into_iter().next() else {
            return Ok(());
        };
        self.activate(store, node.id, rt);
        tracing::info!("swarm state reopened; reconciling");
        Ok(())
    }

    fn activate(
        self: &Arc<Self>,
        store: Arc<dyn ClusterStore>,
        node_id: String,
        rt: tokio::runtime::Handle,
    ) {
        let orchestrator = Orchestrator::start(
            store.clone(),
            node_id.clone(),
            self.containers.clone(),
            self.images.clone(),
            self.events.clone(),
            rt,
        );
        *self.active.write().expect("swarm lock") = Some(Arc::new(Active {
            store,
            node_id,
            orchestrator,
        }));
    }

    /// The cluster, or dockerd's 503.
    pub(crate) fn active(&self) -> SwarmResult<Arc<Active>> {
        self.active
            .read()
            .expect("swarm lock")
            .clone()
            .ok_or(SwarmError::Unavailable(NOT_MANAGER))
    }

    fn advertise_addr(req_addr: &str) -> String {
        let host = req_addr
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .map(|(h, _)| h)
            .unwrap_or(req_addr);
        if !host.is_empty() && host.parse::<std::net::IpAddr>().is_ok() {
            return host.to_string();
        }
        // The address of the interface the default route leaves by, as
        // dockerd picks it; loopback when there is none.
        std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect("192.0.2.1:9")?;
                s.local_addr()
            })
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| "127.0.0.1".into())
    }

    pub fn init(self: &Arc<Self>, req: SwarmInitRequest) -> SwarmResult<String> {
        let _g = self.membership.lock().expect("membership lock");
        if self.active.read().expect("swarm lock").is_some() {
            return Err(SwarmError::Unavailable(SWARM_EXISTS));
        }
        let availability = req
            .availability
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "active".into());
        {
            let a = availability.as_str();
            if !["active", "pause", "drain"].contains(&a) {
                return Err(SwarmError::Invalid(format!(
                    "invalid Availability {a:?}: must be active, pause or drain"
                )));
            }
        }
        if !req.advertise_addr.is_empty()
            && req.advertise_addr.parse::<std::net::IpAddr>().is_err()
            && req.advertise_addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(SwarmError::Invalid(format!(
                "advertise address must be a non-zero IP address or network interface (with optional port number): {:?} is not one that berth accepts (an IP address)",
                req.advertise_addr
            )));
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| SwarmError::Io {
            context: format!("creating {}", self.dir.display()),
            source,
        })?;
        let _ = std::fs::remove_file(self.db_path());
        let store: Arc<dyn ClusterStore> = Arc::new(LocalStore::open(&self.db_path())?);
        let now = format_time(now_nanos());
        let addr = Self::advertise_addr(&req.advertise_addr);
        let node_id = new_id();
        let cluster_id = new_id();
        let spec = swarm_spec_defaults(req.spec.clone(), req.auto_lock_managers);
        let cluster = ClusterInfo {
            id: cluster_id.clone(),
            version: ObjectVersion::default(),
            created_at: now.clone(),
            updated_at: now.clone(),
            spec,
            data_path_port: if req.data_path_port == 0 {
                4789
            } else {
                req.data_path_port
            },
            default_addr_pool: req
                .default_addr_pool
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| vec!["10.0.0.0/8".into()]),
            subnet_size: if req.subnet_size == 0 {
                24
            } else {
                req.subnet_size
            },
            ..Default::default()
        };
        let stored = StoredCluster {
            info: cluster,
            join_tokens: JoinTokens {
                worker: join_token(),
                manager: join_token(),
            },
            unlock_key: if req.auto_lock_managers {
                unlock_key()
            } else {
                String::new()
            },
        };
        let node = Node {
            id: node_id.clone(),
            created_at: now.clone(),
            updated_at: now,
            spec: NodeSpec {
                name: None,
                labels: Some(Default::default()),
                role: Some("manager".into()),
                availability: Some(availability),
            },
            description: self.node_description(),
            status: NodeStatus {
                state: "ready".into(),
                message: None,
                addr: addr.clone(),
            },
            manager_status: Some(ManagerStatus {
                leader: true,
                reachability: "reachable".into(),
                addr: format!("{addr}:2377"),
            }),
            ..Default::default()
        };
        let written = store.apply(vec![
            Op::Create {
                kind: Kind::Cluster,
                id: cluster_id,
                value: encode(&stored),
            },
            Op::Create {
                kind: Kind::Node,
                id: node_id.clone(),
                value: encode(&node),
            },
        ]);
        if let Err(e) = written {
            let _ = std::fs::remove_file(self.db_path());
            return Err(e.into());
        }
        self.activate(store, node_id.clone(), tokio::runtime::Handle::current());
        tracing::info!(node = %node_id, "swarm initialized");
        Ok(node_id)
    }

    fn node_description(&self) -> NodeDescription {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
            .map(|kib| kib * 1024)
            .unwrap_or(0);
        NodeDescription {
            hostname: self.hostname.clone(),
            platform: Platform {
                architecture: Some(std::env::consts::ARCH.into()),
                os: Some("linux".into()),
            },
            resources: ResourceObject {
                nano_cpus: Some(cpus * 1_000_000_000),
                memory_bytes: Some(memory),
                generic_resources: None,
            },
            engine: EngineDescription {
                engine_version: env!("CARGO_PKG_VERSION").into(),
                labels: None,
                plugins: [
                    ("Log", "json-file"),
                    ("Network", "bridge"),
                    ("Network", "host"),
                    ("Network", "null"),
                    ("Network", "overlay"),
                    ("Volume", "local"),
                ]
                .iter()
                .map(|(k, n)| berth_wire::swarm::EnginePlugin {
                    kind: (*k).into(),
                    name: (*n).into(),
                })
                .collect(),
            },
            tls_info: Default::default(),
        }
    }

    /// `swarm join`: several nodes need a distributed store berth does not
    /// have yet.
    pub fn join(&self) -> SwarmResult<()> {
        if self.active.read().expect("swarm lock").is_some() {
            return Err(SwarmError::Unavailable(SWARM_EXISTS));
        }
        Err(SwarmError::NotImplemented(
            "joining an existing swarm is not supported: berth runs swarm mode on one node (this one, with `swarm init`); clusters of several nodes are not available yet".into(),
        ))
    }

    pub fn leave(&self, force: bool) -> SwarmResult<()> {
        let _g = self.membership.lock().expect("membership lock");
        let Some(active) = self.active.read().expect("swarm lock").clone() else {
            return Err(SwarmError::Unavailable(NO_SWARM));
        };
        if !force {
            return Err(SwarmError::Unavailable(LAST_MANAGER));
        }
        active.orchestrator.stop();
        // As dockerd: the node's task containers go with the swarm.
        let mut failures = Vec::new();
        for t in list::<TaskRecord>(active.store.as_ref(), Kind::Task)? {
            if let Some(id) = container_of(&t) {
                if let Err(e) = self.containers.remove(
                    &id,
                    crate::containers::RemoveOptions {
                        force: true,
                        volumes: true,
                    },
                ) {
                    if e.kind() != ErrorKind::NotFound {
                        failures.push(format!("{id}: {e}"));
                    }
                }
            }
        }
        *self.active.write().expect("swarm lock") = None;
        drop(active);
        std::fs::remove_dir_all(&self.dir).map_err(|source| SwarmError::Io {
            context: format!("removing {}", self.dir.display()),
            source,
        })?;
        for f in &failures {
            tracing::warn!(failure = %f, "removing a task container on leave");
        }
        tracing::info!("left the swarm");
        Ok(())
    }

    pub(crate) fn cluster(&self, active: &Active) -> SwarmResult<(StoredCluster, u64)> {
        let rec = active
            .store
            .list(Kind::Cluster)?
            .into_iter()
            .next()
            .ok_or(SwarmError::Unavailable(NOT_MANAGER))?;
        let mut c: StoredCluster = decode(Kind::Cluster, &rec)?;
        c.info.version.index = rec.version;
        Ok((c, rec.version))
    }

    pub fn inspect(&self) -> SwarmResult<Swarm> {
        let a = self.active()?;
        let (c, _) = self.cluster(&a)?;
        Ok(Swarm {
            cluster: c.info,
            join_tokens: c.join_tokens,
        })
    }

    pub fn update(
        &self,
        spec: SwarmSpec,
        flags: berth_api::backend::SwarmUpdateFlags,
    ) -> SwarmResult<()> {
        let a = self.active()?;
        let (mut c, version) = self.cluster(&a)?;
        if flags.version != version {
            return Err(out_of_sequence());
        }
        let autolock = spec
            .encryption_config
            .as_ref()
            .map(|e| e.auto_lock_managers)
            .unwrap_or(false);
        c.info.spec = swarm_spec_defaults(spec, autolock);
        c.info.updated_at = format_time(now_nanos());
        if flags.rotate_worker_token {
            c.join_tokens.worker = join_token();
        }
        if flags.rotate_manager_token {
            c.join_tokens.manager = join_token();
        }
        if !autolock {
            c.unlock_key.clear();
        } else if c.unlock_key.is_empty() || flags.rotate_unlock_key {
            c.unlock_key = unlock_key();
        }
        a.store.apply(vec![Op::Update {
            kind: Kind::Cluster,
            id: c.info.id.clone(),
            expect: version,
            value: encode(&c),
        }])?;
        a.orchestrator.wake();
        Ok(())
    }

    pub fn unlock_key(&self) -> SwarmResult<String> {
        let a = self.active()?;
        Ok(self.cluster(&a)?.0.unlock_key)
    }

    /// `swarm unlock`: berth keeps the cluster key in the data root, so a
    /// running engine is never locked.
    pub fn unlock(&self) -> SwarmResult<()> {
        self.active()?;
        Err(SwarmError::Conflict("swarm is not locked".into()))
    }

    /// The `Swarm` section of `/info`.
    pub fn info(&self) -> SwarmInfo {
        let Ok(a) = self.active() else {
            return SwarmInfo {
                local_node_state: "inactive".into(),
                ..Default::default()
            };
        };
        let node = get::<Node>(a.store.as_ref(), Kind::Node, &a.node_id).ok();
        let addr = node
            .as_ref()
            .map(|n| n.status.addr.clone())
            .unwrap_or_default();
        SwarmInfo {
            node_id: a.node_id.clone(),
            node_addr: addr.clone(),
            local_node_state: "active".into(),
            control_available: true,
            error: String::new(),
            remote_managers: Some(vec![PeerNode {
                node_id: a.node_id.clone(),
                addr: format!("{addr}:2377"),
            }]),
            nodes: Some(1),
            managers: Some(1),
            cluster: self.cluster(&a).ok().map(|(c, _)| c.info),
        }
    }

    // ---------------------------------------------------------------- nodes

    pub fn nodes(&self) -> SwarmResult<Vec<Node>> {
        let a = self.active()?;
        list::<Node>(a.store.as_ref(), Kind::Node)
    }

    pub fn node(&self, key: &str) -> SwarmResult<Node> {
        let a = self.active()?;
        let nodes = list::<Node>(a.store.as_ref(), Kind::Node)?;
        find(
            nodes,
            key,
            |n| n.id.as_str(),
            |n| {
                n.spec
                    .name
                    .clone()
                    .unwrap_or_else(|| n.description.hostname.clone())
            },
        )
        .map_err(|_| SwarmError::NotFound(format!("node {key} not found")))
    }

    pub fn update_node(&self, key: &str, version: u64, spec: NodeSpec) -> SwarmResult<()> {
        let a = self.active()?;
        let mut node = self.node(key)?;
        if node.version.index != version {
            return Err(out_of_sequence());
        }
        if let Some(av) = spec.availability.as_deref().filter(|a| !a.is_empty()) {
            if !["active", "pause", "drain"].contains(&av) {
                return Err(SwarmError::Invalid(format!(
                    "invalid Availability {av:?}: must be active, pause or drain"
                )));
            }
        }
        match spec.role.as_deref() {
            None | Some("") | Some("manager") => {}
            Some("worker") => {
                return Err(SwarmError::Precondition(format!(
                    "node {} is the only manager of the swarm: demoting it would leave the swarm without one",
                    node.id
                )))
            }
            Some(r) => {
                return Err(SwarmError::Invalid(format!(
                    "invalid Role {r:?}: must be worker or manager"
                )))
            }
        }
        node.spec = NodeSpec {
            name: spec.name,
            labels: Some(spec.labels.unwrap_or_default()),
            role: Some("manager".into()),
            availability: Some(
                spec.availability
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "active".into()),
            ),
        };
        node.updated_at = format_time(now_nanos());
        a.store.apply(vec![Op::Update {
            kind: Kind::Node,
            id: node.id.clone(),
            expect: version,
            value: encode(&node),
        }])?;
        a.orchestrator.wake();
        Ok(())
    }

    pub fn remove_node(&self, key: &str) -> SwarmResult<()> {
        let node = self.node(key)?;
        Err(SwarmError::Precondition(format!(
            "node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
            node.id
        )))
    }

    // ---------------------------------------------------------------- services

    pub fn services(&self) -> SwarmResult<Vec<Service>> {
        let a = self.active()?;
        list::<Service>(a.store.as_ref(), Kind::Service)
    }

    pub fn service(&self, key: &str) -> SwarmResult<Service> {
        let a = self.active()?;
        find(
            list::<Service>(a.store.as_ref(), Kind::Service)?,
            key,
            |s| s.id.as_str(),
            |s| s.spec.name.clone().unwrap_or_default(),
        )
        .map_err(|e| match e {
            Found::None => SwarmError::NotFound(format!("service {key} not found")),
            Found::Many => SwarmError::Invalid(format!(
                "service {key} is ambiguous (more than one service has this ID prefix)"
            )),
        })
    }

    pub fn create_service(&self, mut spec: ServiceSpec) -> SwarmResult<String> {
        let a = self.active()?;
        let existing = list::<Service>(a.store.as_ref(), Kind::Service)?;
        let name = match spec.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => crate::containers::generate_name(&|n| {
                existing.iter().any(|s| s.spec.name.as_deref() == Some(n))
            }),
        };
        spec.name = Some(name.clone());
        self.validate_service(&spec)?;
        if existing
            .iter()
            .any(|s| s.spec.name.as_deref() == Some(&name))
        {
            return Err(SwarmError::Conflict(format!(
                "service {name} already exists (name conflicts with an existing object)"
            )));
        }
        let now = format_time(now_nanos());
        let id = new_id();
        let svc = Service {
            id: id.clone(),
            created_at: now.clone(),
            updated_at: now,
            endpoint: executor::endpoint_of(&spec),
            spec,
            ..Default::default()
        };
        a.store.apply(vec![Op::Create {
            kind: Kind::Service,
            id: id.clone(),
            value: encode(&svc),
        }])?;
        a.orchestrator.wake();
        Ok(id)
    }

    pub fn update_service(
        &self,
        key: &str,
        mut spec: ServiceSpec,
        flags: &berth_api::backend::ServiceUpdateFlags,
    ) -> SwarmResult<()> {
        let a = self.active()?;
        let mut svc = self.service(key)?;
        if svc.version.index != flags.version {
            return Err(out_of_sequence());
        }
        match flags.rollback.as_deref() {
            None | Some("") => {}
            Some("previous") => {
                spec = svc.previous_spec.clone().ok_or_else(|| {
                    SwarmError::Precondition(format!(
                        "service {} does not have a previous spec",
                        svc.id
                    ))
                })?;
            }
            Some(other) => {
                return Err(SwarmError::Invalid(format!(
                    "invalid rollback {other:?}: the only value is \"previous\""
                )))
            }
        }
        if spec.name.is_none() || spec.name.as_deref() == Some("") {
            spec.name = svc.spec.name.clone();
        }
        if spec.name != svc.spec.name {
            return Err(SwarmError::Invalid(format!(
                "renaming services is not supported (service {} is named {})",
                svc.id,
                svc.spec.name.clone().unwrap_or_default()
            )));
        }
        self.validate_service(&spec)?;
        let mode_kind = |s: &ServiceSpec| {
            let m = s.mode.clone().unwrap_or_default();
            (
                m.global.is_some(),
                m.replicated_job.is_some(),
                m.global_job.is_some(),
            )
        };
        if mode_kind(&spec) != mode_kind(&svc.spec) {
            return Err(SwarmError::Invalid(format!(
                "service {} mode change not allowed",
                svc.id
            )));
        }
        svc.previous_spec = Some(std::mem::replace(&mut svc.spec, spec));
        svc.endpoint = executor::endpoint_of(&svc.spec);
        svc.updated_at = format_time(now_nanos());
        a.store.apply(vec![Op::Update {
            kind: Kind::Service,
            id: svc.id.clone(),
            expect: flags.version,
            value: encode(&svc),
        }])?;
        a.orchestrator.wake();
        Ok(())
    }

    pub fn remove_service(&self, key: &str) -> SwarmResult<()> {
        let a = self.active()?;
        let svc = self.service(key)?;
        // Its tasks are told to go in the same transaction, so none
        // outlives the service as a running orphan.
        let mut ops = vec![Op::Delete {
            kind: Kind::Service,
            id: svc.id.clone(),
            expect: None,
        }];
        for t in list::<TaskRecord>(a.store.as_ref(), Kind::Task)? {
            if t.task.service_id == svc.id && t.desired() != TaskState::Remove {
                let mut t2 = t.clone();
                t2.task.desired_state = TaskState::Remove.as_str().into();
                ops.push(Op::Update {
                    kind: Kind::Task,
                    id: t.task.id.clone(),
                    expect: t.task.version.index,
                    value: encode(&t2),
                });
            }
        }
        a.store.apply(ops)?;
        a.orchestrator.wake();
        Ok(())
    }

    /// What swarmkit checks before a spec is stored.
    fn validate_service(&self, spec: &ServiceSpec) -> SwarmResult<()> {
        let name = spec.name.clone().unwrap_or_default();
        // swarmkit's `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`: `_` inside a
        // name is allowed (stacks name their services `STACK_service`).
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let dns_ok = name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && edge_ok(name.chars().next())
            && edge_ok(name.chars().last());
        if !dns_ok {
            return Err(SwarmError::Invalid(format!(
                "invalid name {name:?}: a service name must be valid as a DNS name component (letters, digits, '-' and '_' inside, at most 63)"
            )));
        }
        let t = &spec.task_template;
        if t.plugin_spec.is_some() || t.network_attachment_spec.is_some() {
            return Err(SwarmError::NotImplemented(
                "TaskTemplate: only ContainerSpec tasks are supported".into(),
            ));
        }
        let image = t
            .container_spec
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        if image.is_empty() {
            return Err(SwarmError::Invalid(
                "TaskTemplate.ContainerSpec.Image: image reference must be provided".into(),
            ));
        }
        berth_core::Reference::parse_normalized(&image).map_err(|e| {
            SwarmError::Invalid(format!("TaskTemplate.ContainerSpec.Image {image:?}: {e}"))
        })?;
        if let Some(m) = &spec.mode {
            let set = [
                m.replicated.is_some(),
                m.global.is_some(),
                m.replicated_job.is_some(),
                m.global_job.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if set > 1 {
                return Err(SwarmError::Invalid(
                    "Mode: exactly one of Replicated, Global, ReplicatedJob and GlobalJob may be set".into(),
                ));
            }
        }
        if let Some(p) = &t.placement {
            berth_swarm::constraints::parse_all(&p.constraints.clone().unwrap_or_default())
                .map_err(|e| {
                    SwarmError::Invalid(format!("TaskTemplate.Placement.Constraints: {e}"))
                })?;
        }
        if let Some(r) = t.restart_policy.as_ref().and_then(|r| r.condition.clone()) {
            if !["none", "on-failure", "any"].contains(&r.as_str()) {
                return Err(SwarmError::Invalid(format!(
                    "TaskTemplate.RestartPolicy.Condition {r:?}: must be none, on-failure or any"
                )));
            }
        }
        if let Some(ep) = &spec.endpoint_spec {
            if let Some(m) = ep.mode.as_deref() {
                if m != "vip" && m != "dnsrr" {
                    return Err(SwarmError::Invalid(format!(
                        "EndpointSpec.Mode {m:?}: must be vip or dnsrr"
                    )));
                }
            }
            for p in ep.ports.clone().unwrap_or_default() {
                if p.publish_mode.as_deref().unwrap_or("ingress") == "ingress"
                    && p.published_port.unwrap_or(0) != 0
                {
                    return Err(SwarmError::NotImplemented(format!(
                        "EndpointSpec.Ports: publishing port {} in ingress mode is not supported yet; publish it with mode=host (--publish mode=host,published={},target={})",
                        p.published_port.unwrap_or(0),
                        p.published_port.unwrap_or(0),
                        p.target_port
                    )));
                }
            }
        }
        let networks = t
            .networks
            .clone()
            .or(spec.networks.clone())
            .unwrap_or_default();
        for n in &networks {
            self.containers
                .networks
                .find(&n.target)
                .ok_or_else(|| SwarmError::NotFound(format!("network {} not found", n.target)))?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- tasks

    pub fn tasks(&self) -> SwarmResult<Vec<TaskRecord>> {
        let a = self.active()?;
        list::<TaskRecord>(a.store.as_ref(), Kind::Task)
    }

    pub fn task(&self, key: &str) -> SwarmResult<TaskRecord> {
        find(
            self.tasks()?,
            key,
            |t| t.task.id.as_str(),
            |_| String::new(),
        )
        .map_err(|_| SwarmError::NotFound(format!("task {key} not found")))
    }
}

/// The cluster object as stored: its wire info plus the secrets of
/// membership (join tokens, the unlock key).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredCluster {
    pub info: ClusterInfo,
    pub join_tokens: JoinTokens,
    #[serde(default)]
    pub unlock_key: String,
}

fn out_of_sequence() -> SwarmError {
    SwarmError::Conflict(
        "update out of sequence: the object changed since its version was read; inspect it again and retry".into(),
    )
}

fn join_token() -> String {
    let part = |n: usize| {
        (0..n)
            .map(|_| char::from_digit(rand::random::<u32>() % 36, 36).expect("digit"))
            .collect::<String>()
    };
    format!("SWMTKN-1-{}-{}", part(50), part(25))
}

fn unlock_key() -> String {
    use base64::Engine;
    let key: [u8; 32] = rand::random();
    format!(
        "SWMKEY-1-{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(key)
    )
}

/// swarmkit's defaults for what `init`/`update` leave out.
fn swarm_spec_defaults(mut s: SwarmSpec, autolock: bool) -> SwarmSpec {
    s.name.get_or_insert_with(|| "default".into());
    s.labels.get_or_insert_with(Default::default);
    let o = s
        .orchestration
        .get_or_insert_with(OrchestrationConfig::default);
    o.task_history_retention_limit.get_or_insert(5);
    let r = s.raft.get_or_insert_with(RaftConfig::default);
    r.snapshot_interval.get_or_insert(10_000);
    r.keep_old_snapshots.get_or_insert(0);
    r.log_entries_for_slow_followers.get_or_insert(500);
    r.election_tick.get_or_insert(10);
    r.heartbeat_tick.get_or_insert(1);
    let d = s.dispatcher.get_or_insert_with(DispatcherConfig::default);
    d.heartbeat_period.get_or_insert(5_000_000_000);
    let ca = s.ca_config.get_or_insert_with(CaConfig::default);
    ca.node_cert_expiry.get_or_insert(7_776_000_000_000_000);
    s.encryption_config = Some(EncryptionConfig {
        auto_lock_managers: autolock,
    });
    s.task_defaults.get_or_insert_with(TaskDefaults::default);
    s
}

pub(crate) fn list<T: DeserializeOwned + Versioned>(
    store: &dyn ClusterStore,
    kind: Kind,
) -> SwarmResult<Vec<T>> {
    store
        .list(kind)?
        .iter()
        .map(|r| {
            let mut v: T = decode(kind, r)?;
            v.set_version(r.version);
            Ok(v)
        })
        .collect()
}

pub(crate) fn get<T: DeserializeOwned + Versioned>(
    store: &dyn ClusterStore,
    kind: Kind,
    id: &str,
) -> SwarmResult<T> {
    let r = store
        .get(kind, id)?
        .ok_or_else(|| SwarmError::NotFound(format!("{} {id} not found", kind.as_str())))?;
    let mut v: T = decode(kind, &r)?;
    v.set_version(r.version);
    Ok(v)
}

/// Objects whose `Version.Index` is the store's record version.
pub(crate) trait Versioned {
    fn set_version(&mut self, v: u64);
}

impl Versioned for Node {
    fn set_version(&mut self, v: u64) {
        self.version.index = v;
    }
}
impl Versioned for Service {
    fn set_version(&mut self, v: u64) {
        self.version.index = v;
    }
}
impl Versioned for TaskRecord {
    fn set_version(&mut self, v: u64) {
        self.task.version.index = v;
    }
}

enum Found {
    None,
    Many,
}

/// By full ID, then by name, then by unique ID prefix (dockerd's order).
fn find<T>(
    items: Vec<T>,
    key: &str,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> String,
) -> Result<T, Found> {
    if key.is_empty() {
        return Err(Found::None);
    }
    let mut items = items;
    if let Some(i) = items.iter().position(|t| id(t) == key) {
        return Ok(items.swap_remove(i));
    }
    if let Some(i) = items.iter().position(|t| name(t) == key) {
        return Ok(items.swap_remove(i));
    }
    let mut hits: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, t)| id(t).starts_with(key))
        .map(|(i, _)| i)
        .collect();
    match hits.len() {
        0 => Err(Found::None),
        1 => Ok(items.swap_remove(hits.pop().expect("one"))),
        _ => Err(Found::Many),
    }
}

/// The task's container, when it got one.
pub(crate) fn container_of(t: &TaskRecord) -> Option<String> {
    t.task
        .status
        .container_status
        .as_ref()
        .map(|c| c.container_id.clone())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_swarmkits() {
        let id = new_id();
        assert_eq!(id.len(), 25);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(id, new_id());
        let t = join_token();
        assert!(
            t.starts_with("SWMTKN-1-") && t.len() == 9 + 50 + 1 + 25,
            "{t}"
        );
    }

    #[test]
    fn lookup_by_id_name_then_prefix() {
        let items = vec![("abc1", "web"), ("abd2", "db"), ("x9", "abc")];
        let f = |k: &str| {
            find(items.clone(), k, |t| t.0, |t| t.1.to_string())
                .map(|t| t.0)
                .map_err(|e| matches!(e, Found::Many))
        };
        assert_eq!(f("abc1"), Ok("abc1"));
        assert_eq!(f("db"), Ok("abd2"));
        assert_eq!(f("abc"), Ok("x9"), "a name beats an ID prefix");
        assert_eq!(f("ab"), Err(true), "an ambiguous prefix");
        assert_eq!(f("zz"), Err(false));
    }
}
