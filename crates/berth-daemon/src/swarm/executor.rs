//! The orchestrator thread: plans each service (berth-swarm's pure
//! `plan`), stores the task changes, and drives this node's tasks towards
//! their desired state through the container service.
//!
//! It wakes on every store write, on container events (a task's container
//! died, turned healthy) and at the next restart deadline, and otherwise
//! sleeps. Starting and stopping containers runs on short-lived worker
//! threads, one per task at a time, so that a slow stop (a grace period)
//! or an image pull never holds up the others; a task has at most one
//! operation in flight.
//!
//! Task lifecycle here: `assigned` → `preparing` (image present, else
//! pulled) → `starting` (container created and started; with a
//! healthcheck, until it is healthy) → `running` → `complete` | `failed`
//! (its container exited: `task: non-zero exit (N)`) | `shutdown` (stopped
//! because the desired state moved on) | `rejected` (could not be made).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use berth_api::container_types::{ContainerConfig, ContainerCreateBody, LogConfig, Ulimit};
use berth_api::host_config::{HostConfig, PortBinding};
use berth_core::{ErrorKind, HasKind};
use berth_swarm::constraints::NodeFacts;
use berth_swarm::objects::{format_time, TaskRecord, TaskState};
use berth_swarm::plan::{self, Action, NodeView};
use berth_swarm::{ClusterStore, Kind, Op, StoreError};
use berth_wire::swarm::{
    ContainerStatus, Endpoint, EndpointPortConfig, EndpointSpec, Node, Service, ServiceSpec,
};

use super::{container_of, encode, get, list, new_id, now_nanos, StoredCluster};
use crate::containers::{ContainerService, RemoveOptions, StopOptions};
use crate::events::{ContainerAction, EngineEvent, EventBus};
use crate::images::ImageService;

/// The running orchestrator of a joined cluster.
pub struct Orchestrator {
    wake: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    inflight: Arc<Mutex<HashSet<String>>>,
}

impl Orchestrator {
    pub fn start(
        store: Arc<dyn ClusterStore>,
        node_id: String,
        containers: Arc<ContainerService>,
        images: Arc<ImageService>,
        events: Arc<EventBus>,
        rt: tokio::runtime::Handle,
    ) -> Orchestrator {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let inflight = Arc::new(Mutex::new(HashSet::new()));

        // Container events that matter to tasks wake the loop.
        let mut sub = events.subscribe(None);
        let ev_tx = tx.clone();
        let ev_stop = stop.clone();
        std::thread::Builder::new()
            .name("swarm-events".into())
            .spawn(move || {
                while let Ok(e) = sub.live.blocking_recv_compat() {
                    if ev_stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let relevant = matches!(
                        &e.event,
                        EngineEvent::Container {
                            action: ContainerAction::Die { .. }
                                | ContainerAction::Destroy
                                | ContainerAction::Start
                                | ContainerAction::HealthStatus { .. },
                            ..
                        }
                    );
                    if relevant && ev_tx.send(()).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the swarm event thread");

        // Every store write wakes it too.
        let watch = store.watch();
        let w_tx = tx.clone();
        let w_stop = stop.clone();
        std::thread::Builder::new()
            .name("swarm-watch".into())
            .spawn(move || {
                while watch.recv().is_ok() {
                    if w_stop.load(Ordering::Relaxed) || w_tx.send(()).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the swarm watch thread");

        let worker = Loop {
            store,
            node_id,
            containers,
            images,
            rt,
            stop: stop.clone(),
            wake: tx.clone(),
            inflight: inflight.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("swarm-orchestrator".into())
            .spawn(move || worker.run(rx))
            .expect("spawning the orchestrator");
        Orchestrator {
            wake: tx,
            stop,
            thread: Mutex::new(Some(thread)),
            inflight,
        }
    }

    pub fn wake(&self) {
        let _ = self.wake.send(());
    }

    /// Stops the loop and waits (a while) for operations in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake();
        if let Some(t) = self.thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.inflight.lock().expect("inflight lock").is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `broadcast::Receiver::blocking_recv` that skips over lagged events (a
/// wake-up is all that is needed).
trait BlockingRecv<T> {
    fn blocking_recv_compat(&mut self) -> Result<T, ()>;
}

impl<T: Clone> BlockingRecv<T> for tokio::sync::broadcast::Receiver<T> {
    fn blocking_recv_compat(&mut self) -> Result<T, ()> {
        loop {
            match self.blocking_recv() {
                Ok(v) => return Ok(v),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(()),
            }
        }
    }
}

#[derive(Clone)]
struct Loop {
    store: Arc<dyn ClusterStore>,
    node_id: String,
    containers: Arc<ContainerService>,
    images: Arc<ImageService>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<()>,
    inflight: Arc<Mutex<HashSet<String>>>,
}

/// How long a load-balanced task keeps serving the connections it has
/// after it left the rotation, before it is stopped.
const DRAIN: Duration = Duration::from_millis(500);

/// When nothing wakes the loop, it still looks every so often.
const IDLE: Duration = Duration::from_secs(2);

impl Loop {
    fn run(self, rx: mpsc::Receiver<()>) {
        let mut timeout = Duration::ZERO;
        let mut known = HashSet::new();
        loop {
            match rx.recv_timeout(timeout) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while rx.try_recv().is_ok() {}
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            timeout = match self.pass(&mut known) {
                Ok(next) => next.unwrap_or(IDLE).min(IDLE),
                Err(e) => {
                    tracing::warn!(error = %e, "swarm reconciliation failed; retrying");
                    Duration::from_millis(200)
                }
            };
        }
    }

    /// One reconciliation; returns how long until a restart delay ends.
    fn pass(&self, known: &mut HashSet<String>) -> Result<Option<Duration>, super::SwarmError> {
        let now = now_nanos();
        let node: Node = get(self.store.as_ref(), Kind::Node, &self.node_id)?;
        let cluster: Option<StoredCluster> = self
            .store
            .list(Kind::Cluster)?
            .first()
            .and_then(|r| serde_json::from_slice(&r.value).ok());
        let history = cluster
            .and_then(|c| c.info.spec.orchestration)
            .and_then(|o| o.task_history_retention_limit)
            .map(|n| n.max(0) as usize)
            .unwrap_or(plan::DEFAULT_HISTORY);
        let view = node_view(&node);
        let services: Vec<Service> = list(self.store.as_ref(), Kind::Service)?;
        let tasks: Vec<TaskRecord> = list(self.store.as_ref(), Kind::Task)?;
        let mut by_service: HashMap<&str, Vec<TaskRecord>> = HashMap::new();
        for t in &tasks {
            by_service
                .entry(t.task.service_id.as_str())
                .or_default()
                .push(t.clone());
        }
        for svc in &services {
            let own = by_service.remove(svc.id.as_str()).unwrap_or_default();
            let mut ids = new_id;
            let mut ctx = plan::Context {
                now,
                history,
                node: &view,
                new_id: &mut ids,
            };
            let actions = plan::plan(svc, &own, &mut ctx);
            self.apply(actions);
        }
        // Tasks whose service is gone: stop, then delete.
        for t in by_service.into_values().flatten() {
            if t.desired() != TaskState::Remove {
                self.update_task(&t.task.id, |t| {
                    t.task.desired_state = TaskState::Remove.as_str().into();
                    true
                });
            } else if t.state().is_terminal() {
                self.delete_task(&t);
            }
        }

        let tasks: Vec<TaskRecord> = list(self.store.as_ref(), Kind::Task)?;
        self.balance(&services, &tasks, known);
        let names: HashMap<String, Published> = services
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    Published {
                        name: s.spec.name.clone().unwrap_or_default(),
                        ports: s.endpoint.ports.clone().unwrap_or_default(),
                        vip: s.endpoint.spec.mode.as_deref() != Some("dnsrr"),
                        balanced: s.endpoint.ports.as_ref().is_some_and(|p| {
                            p.iter()
                                .any(|p| p.publish_mode.as_deref() == Some("ingress"))
                        }) || s
                            .endpoint
                            .virtual_ips
                            .as_ref()
                            .is_some_and(|v| !v.is_empty()),
                    },
                )
            })
            .collect();
        let mut next: Option<i64> = None;
        for t in &tasks {
            if t.task.node_id != self.node_id {
                continue;
            }
            if let Some(wait) = self.drive(t, &tasks, &names, &node, now) {
                next = Some(next.map_or(wait, |n: i64| n.min(wait)));
            }
        }
        Ok(next.map(|n| Duration::from_nanos((n - now).max(1_000_000) as u64)))
    }

    /// Stores a plan's actions: creates and desired-state changes in one
    /// transaction (a restart is "old one down, new one in" at once),
    /// then deletions.
    fn apply(&self, actions: Vec<Action>) {
        let mut ops = Vec::new();
        let mut deletes = Vec::new();
        let now = format_time(now_nanos());
        for a in actions {
            match a {
                Action::Create(t) => ops.push(Op::Create {
                    kind: Kind::Task,
                    id: t.task.id.clone(),
                    value: encode(&t),
                }),
                Action::Update(mut t) => {
                    t.task.updated_at = now.clone();
                    ops.push(Op::Update {
                        kind: Kind::Task,
                        id: t.task.id.clone(),
                        expect: t.task.version.index,
                        value: encode(&t),
                    })
                }
                Action::Delete { id, .. } => deletes.push(id),
            }
        }
        if !ops.is_empty() {
            if let Err(e) = self.store.apply(ops) {
                // Someone wrote in between (a worker's state change): the
                // next pass plans again from what is stored.
                tracing::debug!(error = %e, "task changes not applied; replanning");
                let _ = self.wake.send(());
            }
        }
        for id in deletes {
            if let Ok(t) = get::<TaskRecord>(self.store.as_ref(), Kind::Task, &id) {
                self.delete_task(&t);
            }
        }
    }

    fn delete_task(&self, t: &TaskRecord) {
        if let Some(cid) = container_of(t) {
            match self.containers.remove(
                &cid,
                RemoveOptions {
                    force: true,
                    volumes: true,
                },
            ) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(task = %t.task.id, container = %cid, error = %e, "removing a task's container");
                    return;
                }
            }
        }
        super::task_files::release(&self.containers, &t.task.id);
        let _ = self.store.apply(vec![Op::Delete {
            kind: Kind::Task,
            id: t.task.id.clone(),
            expect: None,
        }]);
    }

    /// Changes a stored task with `f` (which returns false to leave it),
    /// retrying on concurrent writes.
    fn update_task(&self, id: &str, mut f: impl FnMut(&mut TaskRecord) -> bool) {
        for _ in 0..20 {
            let Ok(t) = get::<TaskRecord>(self.store.as_ref(), Kind::Task, id) else {
                return;
            };
            let mut next = t.clone();
            if !f(&mut next) {
                return;
            }
            next.task.updated_at = format_time(now_nanos());
            match self.store.apply(vec![Op::Update {
                kind: Kind::Task,
                id: id.to_string(),
                expect: t.task.version.index,
                value: encode(&next),
            }]) {
                Ok(_) => return,
                Err(StoreError::Stale { .. }) => continue,
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "updating a task");
                    return;
                }
            }
        }
    }

    fn set_state(&self, id: &str, state: TaskState, message: &str, err: Option<String>) {
        let message = message.to_string();
        self.update_task(id, |t| {
            if t.state() >= state && state != TaskState::Running {
                // States only move forward.
                return t.state() < state;
            }
            set_status(t, state, &message, err.clone());
            true
        });
    }

    /// Moves one task along; returns a deadline (unix ns) to wake at.
    fn drive(
        &self,
        t: &TaskRecord,
        all: &[TaskRecord],
        names: &HashMap<String, Published>,
        node: &Node,
        now: i64,
    ) -> Option<i64> {
        if self
            .inflight
            .lock()
            .expect("inflight lock")
            .contains(&t.task.id)
        {
            return None;
        }
        let state = t.state();
        let desired = t.desired();
        if desired <= TaskState::Running {
            if state < TaskState::Starting {
                if t.task.status.err.is_some() && state == TaskState::Pending {
                    return None;
                }
                if t.start_after > now {
                    return Some(t.start_after);
                }
                // Stop-first: the slot's previous task must be down.
                let predecessor_up = all.iter().any(|o| {
                    o.task.id != t.task.id
                        && o.task.service_id == t.task.service_id
                        && o.slot() == t.slot()
                        && o.task.node_id == t.task.node_id
                        && o.desired() > TaskState::Running
                        && !o.state().is_terminal()
                });
                if predecessor_up {
                    return None;
                }
                let published = names.get(&t.task.service_id).cloned().unwrap_or_default();
                let facts = node_facts_of(node);
                self.spawn(t, move |lp, t| lp.start_task(&t, &published, &facts));
                return None;
            }
            if state.is_terminal() {
                return None;
            }
            self.observe(t);
            return None;
        }
        if !state.is_terminal() {
            match container_of(t) {
                Some(_) => {
                    // A task that took connections gets a moment to finish
                    // those already sent its way before it is stopped: the
                    // balancers stopped sending it new ones this pass.
                    let drain = state == TaskState::Running
                        && names.get(&t.task.service_id).is_none_or(|p| p.balanced);
                    self.spawn(t, move |lp, t| {
                        if drain {
                            std::thread::sleep(DRAIN);
                        }
                        lp.stop_task(&t)
                    })
                }
                None => self.set_state(&t.task.id, TaskState::Shutdown, "shutdown", None),
            }
        }
        None
    }

    fn spawn(&self, t: &TaskRecord, f: impl FnOnce(&Loop, TaskRecord) + Send + 'static) {
        let id = t.task.id.clone();
        if !self
            .inflight
            .lock()
            .expect("inflight lock")
            .insert(id.clone())
        {
            return;
        }
        let lp = self.clone();
        let task = t.clone();
        let spawned = std::thread::Builder::new()
            .name("swarm-task".into())
            .spawn(move || {
                f(&lp, task);
                lp.inflight.lock().expect("inflight lock").remove(&id);
                let _ = lp.wake.send(());
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "spawning a task worker");
            self.inflight
                .lock()
                .expect("inflight lock")
                .remove(&t.task.id);
        }
    }

    /// A starting or running task: has its container moved on?
    fn observe(&self, t: &TaskRecord) {
        let Some(cid) = container_of(t) else {
            self.set_state(
                &t.task.id,
                TaskState::Failed,
                "failed",
                Some("task has no container".into()),
            );
            return;
        };
        let c = match self.containers.store().get(&cid) {
            Ok(c) => c,
            Err(_) => {
                self.set_state(
                    &t.task.id,
                    TaskState::Failed,
                    "failed",
                    Some(format!("task: container {cid} was removed")),
                );
                return;
            }
        };
        let r = c.record();
        if r.state.status.is_running() {
            let health = r
                .state
                .health
                .as_ref()
                .and_then(|h| h["Status"].as_str().map(str::to_string));
            match health.as_deref() {
                Some("unhealthy") => {
                    let tid = t.task.id.clone();
                    self.spawn(t, move |lp, t| {
                        let _ = lp.containers.stop(&cid, stop_options(&t));
                        lp.set_state(
                            &tid,
                            TaskState::Failed,
                            "failed",
                            Some("task: container unhealthy".into()),
                        );
                    });
                }
                Some("starting") => {}
                // With a healthcheck, only a healthy container runs (no
                // reading yet is not healthy).
                None if has_healthcheck(&r) => {}
                _ if t.state() == TaskState::Starting => {
                    let pid = r.state.pid;
                    self.update_task(&t.task.id, |t| {
                        if t.state() != TaskState::Starting {
                            return false;
                        }
                        set_status(t, TaskState::Running, "started", None);
                        if let Some(cs) = t.task.status.container_status.as_mut() {
                            cs.pid = pid;
                        }
                        true
                    });
                }
                _ => {}
            }
            return;
        }
        let code = r.state.exit_code;
        self.update_task(&t.task.id, |t| {
            if t.state().is_terminal() {
                return false;
            }
            if code == 0 {
                set_status(t, TaskState::Complete, "finished", None);
            } else {
                set_status(
                    t,
                    TaskState::Failed,
                    "failed",
                    Some(format!("task: non-zero exit ({code})")),
                );
            }
            if let Some(cs) = t.task.status.container_status.as_mut() {
                cs.exit_code = code;
                cs.pid = 0;
            }
            true
        });
    }

    fn start_task(&self, t: &TaskRecord, published: &Published, node: &NodeFacts) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        let id = t.task.id.clone();
        let spec = t.task.spec.container_spec.clone().unwrap_or_default();
        let image = spec.image.clone().unwrap_or_default();
        self.set_state(&id, TaskState::Preparing, "preparing", None);
        if let Err(e) = self.ensure_image(&image) {
            self.set_state(&id, TaskState::Rejected, "rejected", Some(e));
            return;
        }
        let cid = match container_of(t) {
            Some(c) if self.containers.store().get(&c).is_ok() => c,
            _ => {
                let (name, mut body) = container_body(t, published, node);
                let files = super::task_files::attach(&*self.store, &self.containers, t, &mut body);
                if let Err(e) = files {
                    self.set_state(&id, TaskState::Rejected, "rejected", Some(e));
                    return;
                }
                match self.containers.create(Some(&name), body) {
                    Ok(c) => c.id,
                    Err(e) => {
                        self.set_state(&id, TaskState::Rejected, "rejected", Some(e.to_string()));
                        return;
                    }
                }
            }
        };
        if let Err(e) = self.connect_extra_networks(t, &cid, published) {
            self.set_state(&id, TaskState::Rejected, "rejected", Some(e));
            return;
        }
        self.update_task(&id, |t| {
            set_status(t, TaskState::Starting, "starting", None);
            t.task.status.container_status = Some(ContainerStatus {
                container_id: cid.clone(),
                ..Default::default()
            });
            true
        });
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.containers.start(&cid) {
            self.set_state(
                &id,
                TaskState::Failed,
                "failed",
                Some(format!("starting container failed: {e}")),
            );
            return;
        }
        let started = now_nanos();
        let healthcheck = self
            .containers
            .store()
            .get(&cid)
            .map(|c| has_healthcheck(&c.record()))
            .unwrap_or(false);
        let pid = self
            .containers
            .store()
            .get(&cid)
            .map(|c| c.record().state.pid)
            .unwrap_or(0);
        self.update_task(&id, |t| {
            if t.state() != TaskState::Starting {
                return false;
            }
            t.started_at = started;
            if let Some(cs) = t.task.status.container_status.as_mut() {
                cs.pid = pid;
            }
            if !healthcheck {
                set_status(t, TaskState::Running, "started", None);
            }
            true
        });
    }

    fn ensure_image(&self, image: &str) -> Result<(), String> {
        if self.images.store.resolve(image).is_ok() {
            return Ok(());
        }
        let _g = self.rt.enter();
        let reference = berth_core::Reference::parse_normalized(image)
            .map_err(|e| format!("invalid image {image:?}: {e}"))?;
        let req = berth_api::backend::PullRequest {
            from_image: reference.to_string(),
            tag: None,
            platform: None,
            auth: None,
            all_tags: false,
        };
        self.images
            .pull(req, Arc::new(|_| {}))
            .map_err(|e| format!("No such image: {image} ({})", e.message))?;
        Ok(())
    }

    fn connect_extra_networks(
        &self,
        t: &TaskRecord,
        cid: &str,
        published: &Published,
    ) -> Result<(), String> {
        let nets = t.task.spec.networks.clone().unwrap_or_default();
        for n in nets.iter().skip(1) {
            let rec = self
                .containers
                .networks
                .find(&n.target)
                .ok_or_else(|| format!("network {} not found", n.target))?;
            let c = self
                .containers
                .store()
                .get(cid)
                .map_err(|e| e.to_string())?;
            if c.record().networks.contains_key(&rec.name) {
                continue;
            }
            let mut aliases = published.aliases();
            aliases.extend(n.aliases.clone().unwrap_or_default());
            let body = serde_json::json!({
                "Container": cid,
                "EndpointConfig": {"Aliases": aliases},
            });
            self.containers
                .connect_network(&rec, &body)
                .map_err(|e| format!("connecting to network {}: {e}", rec.name))?;
        }
        Ok(())
    }

    fn stop_task(&self, t: &TaskRecord) {
        let Some(cid) = container_of(t) else {
            return;
        };
        let code = match self.containers.stop(&cid, stop_options(t)) {
            Ok(_) => self
                .containers
                .store()
                .get(&cid)
                .map(|c| c.record().state.exit_code)
                .unwrap_or(0),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(task = %t.task.id, error = %e, "stopping a task");
                return;
            }
        };
        self.update_task(&t.task.id, |t| {
            if t.state().is_terminal() {
                return false;
            }
            set_status(t, TaskState::Shutdown, "shutdown", None);
            if let Some(cs) = t.task.status.container_status.as_mut() {
                cs.exit_code = code;
                cs.pid = 0;
            }
            true
        });
    }
}

/// Whether the container runs a healthcheck (its own or its image's).
fn has_healthcheck(r: &crate::containers::ContainerRecord) -> bool {
    r.config
        .healthcheck
        .as_ref()
        .and_then(|h| h["Test"].as_array().and_then(|a| a.first().cloned()))
        .is_some_and(|first| first != "NONE")
}

/// What a task's container needs to know of its service's endpoint.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub name: String,
    pub ports: Vec<EndpointPortConfig>,
    /// `vip` endpoint mode: the name resolves to the virtual IP, and
    /// `tasks.NAME` to the tasks; in `dnsrr` both resolve to the tasks.
    pub vip: bool,
    /// Connections reach its tasks through a balancer (an ingress port or
    /// a virtual IP).
    pub balanced: bool,
}

impl Published {
    fn aliases(&self) -> Vec<String> {
        let mut a = vec![format!("tasks.{}", self.name)];
        if !self.vip {
            a.push(self.name.clone());
        }
        a
    }
}

impl Loop {
    /// The balancers of every service from the tasks that run now: an
    /// ingress port spreads over every running task, a virtual IP over
    /// the running tasks on its network. A task leaves the rotation as
    /// soon as it is told to stop, before its container is stopped.
    fn balance(&self, services: &[Service], tasks: &[TaskRecord], known: &mut HashSet<String>) {
        let nets = &self.containers.networks;
        let mut seen = HashSet::new();
        for svc in services {
            seen.insert(svc.id.clone());
            let running: Vec<crate::containers::ContainerRecord> = tasks
                .iter()
                .filter(|t| {
                    t.task.service_id == svc.id
                        && t.state() == TaskState::Running
                        && t.desired() == TaskState::Running
                })
                .filter_map(container_of)
                .filter_map(|cid| self.containers.store().get(&cid).ok())
                .map(|c| c.record())
                .filter(|r| r.state.status.is_running())
                .collect();
            let ip_on = |r: &crate::containers::ContainerRecord, net: Option<&str>| {
                let ep = match net {
                    Some(n) => r.networks.get(n),
                    None => r
                        .networks
                        .get(&r.host_config.network_mode)
                        .or_else(|| r.networks.values().next()),
                };
                ep.and_then(|e| e.ip.parse::<std::net::Ipv4Addr>().ok())
            };
            let mut balancers = Vec::new();
            for p in svc.endpoint.ports.clone().unwrap_or_default() {
                if p.publish_mode.as_deref() != Some("ingress") {
                    continue;
                }
                let (Ok(proto), Some(port)) = (
                    p.protocol
                        .as_deref()
                        .unwrap_or("tcp")
                        .parse::<berth_net::nft::Proto>(),
                    p.published_port,
                ) else {
                    continue;
                };
                let mut backends: Vec<_> = running.iter().filter_map(|r| ip_on(r, None)).collect();
                backends.sort();
                balancers.push(berth_net::nft::Balancer {
                    proto,
                    daddr: None,
                    port: port as u16,
                    target_port: p.target_port as u16,
                    backends,
                });
            }
            for v in svc.endpoint.virtual_ips.clone().unwrap_or_default() {
                let Some(vip) = v.addr.split('/').next().and_then(|a| a.parse().ok()) else {
                    continue;
                };
                let Some(net) = nets.find(&v.network_id) else {
                    continue;
                };
                let mut backends: Vec<_> = running
                    .iter()
                    .filter_map(|r| ip_on(r, Some(&net.name)))
                    .collect();
                backends.sort();
                balancers.push(berth_net::nft::Balancer {
                    proto: berth_net::nft::Proto::Tcp,
                    daddr: Some(vip),
                    port: 0,
                    target_port: 0,
                    backends,
                });
            }
            if let Err(e) = nets.set_balancers(&svc.id, balancers) {
                tracing::warn!(service = %svc.id, error = %e, "loading a service's balancers");
            }
        }
        for gone in known.difference(&seen) {
            let _ = nets.set_balancers(gone, Vec::new());
        }
        *known = seen;
    }
}

fn set_status(t: &mut TaskRecord, state: TaskState, message: &str, err: Option<String>) {
    t.task.status.state = state.as_str().into();
    t.task.status.message = message.into();
    t.task.status.timestamp = format_time(now_nanos());
    t.task.status.err = err;
}

fn stop_options(t: &TaskRecord) -> StopOptions {
    let grace = t
        .task
        .spec
        .container_spec
        .as_ref()
        .and_then(|c| c.stop_grace_period)
        .unwrap_or(10_000_000_000)
        .max(0);
    StopOptions {
        signal: t
            .task
            .spec
            .container_spec
            .as_ref()
            .and_then(|c| c.stop_signal.clone()),
        timeout: Some(Duration::from_nanos(grace as u64)),
    }
}

fn node_facts_of(node: &Node) -> NodeFacts {
    NodeFacts {
        id: node.id.clone(),
        hostname: node.description.hostname.clone(),
        role: node.spec.role.clone().unwrap_or_else(|| "manager".into()),
        os: node.description.platform.os.clone().unwrap_or_default(),
        arch: node
            .description
            .platform
            .architecture
            .clone()
            .unwrap_or_default(),
        labels: node.spec.labels.clone().unwrap_or_default(),
        engine_labels: node.description.engine.labels.clone().unwrap_or_default(),
    }
}

fn node_view(node: &Node) -> NodeView {
    NodeView {
        facts: node_facts_of(node),
        availability: node
            .spec
            .availability
            .clone()
            .unwrap_or_else(|| "active".into()),
    }
}

/// The task's name as the docker CLI shows it: `web.1`, or `web.<node>`
/// for a global service.
pub fn task_name(service_name: &str, t: &TaskRecord) -> String {
    match t.slot() {
        Some(s) => format!("{service_name}.{s}"),
        None => format!("{service_name}.{}", t.task.node_id),
    }
}

/// Expands swarm's templates (`{{.Task.Slot}}`, `{{.Service.Name}}`,
/// `{{.Node.Hostname}}`, …) in a hostname, env value or label.
pub fn expand(
    s: &str,
    service_id: &str,
    service_name: &str,
    t: &TaskRecord,
    node: &NodeFacts,
) -> String {
    if !s.contains("{{") {
        return s.to_string();
    }
    let slot = t.slot().map(|n| n.to_string()).unwrap_or_default();
    let name = task_name(service_name, t);
    let vars: [(&str, &str); 10] = [
        (".Service.ID", service_id),
        (".Service.Name", service_name),
        (".Node.ID", &node.id),
        (".Node.Hostname", &node.hostname),
        (".Node.Platform.OS", &node.os),
        (".Node.Platform.Architecture", &node.arch),
        (".Task.ID", &t.task.id),
        (".Task.Name", &name),
        (".Task.Slot", &slot),
        (".Service.Labels", ""),
    ];
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match vars.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The container a task runs: its `ContainerSpec` as a create body, with
/// swarm's labels and name.
pub fn container_body(
    t: &TaskRecord,
    published: &Published,
    node: &NodeFacts,
) -> (String, ContainerCreateBody) {
    let service_name = published.name.as_str();
    let ports = &published.ports;
    let spec = t.task.spec.container_spec.clone().unwrap_or_default();
    let sid = t.task.service_id.as_str();
    let x = |s: &str| expand(s, sid, service_name, t, node);
    let task_name = task_name(service_name, t);
    let mut labels: BTreeMap<String, String> = spec
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, x(&v)))
        .collect();
    for (k, v) in [
        ("com.docker.swarm.node.id", t.task.node_id.clone()),
        ("com.docker.swarm.service.id", sid.to_string()),
        ("com.docker.swarm.service.name", service_name.to_string()),
        ("com.docker.swarm.task", String::new()),
        ("com.docker.swarm.task.id", t.task.id.clone()),
        (
            "com.docker.swarm.task.name",
            format!("{task_name}.{}", t.task.id),
        ),
    ] {
        labels.insert(k.into(), v);
    }
    let res = t.task.spec.resources.clone().unwrap_or_default();
    let limits = res.limits.unwrap_or_default();
    let networks = t.task.spec.networks.clone().unwrap_or_default();
    let mut port_bindings = BTreeMap::new();
    let mut exposed = BTreeMap::new();
    for p in ports {
        if p.publish_mode.as_deref() == Some("host") {
            let key = format!(
                "{}/{}",
                p.target_port,
                p.protocol.as_deref().unwrap_or("tcp")
            );
            exposed.insert(key.clone(), serde_json::json!({}));
            port_bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: String::new(),
                    host_port: p
                        .published_port
                        .filter(|p| *p != 0)
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                }]),
            );
        }
    }
    let dns = spec.dns_config.clone().unwrap_or_default();
    let host = HostConfig {
        network_mode: networks
            .first()
            .map(|n| n.target.clone())
            .unwrap_or_else(|| "bridge".into()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        mounts: spec.mounts.clone(),
        cap_add: spec.capability_add.clone(),
        cap_drop: spec.capability_drop.clone(),
        dns: dns.nameservers,
        dns_search: dns.search,
        dns_options: dns.options,
        // swarm writes `IP host…`; HostConfig wants `host:IP`.
        extra_hosts: spec.hosts.as_ref().map(|h| {
            h.iter()
                .flat_map(|line| {
                    let mut w = line.split_whitespace();
                    let ip = w.next().unwrap_or_default().to_string();
                    w.map(move |name| format!("{name}:{ip}"))
                        .collect::<Vec<_>>()
                })
                .collect()
        }),
        group_add: spec.groups.clone(),
        init: spec.init,
        readonly_rootfs: spec.read_only,
        sysctls: spec.sysctls.clone(),
        ulimits: spec.ulimits.as_ref().map(|u| {
            u.iter()
                .map(|u| Ulimit {
                    name: u.name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect()
        }),
        oom_score_adj: spec.oom_score_adj.unwrap_or(0),
        nano_cpus: limits.nano_cpus.unwrap_or(0),
        memory: limits.memory_bytes.unwrap_or(0),
        pids_limit: limits.pids,
        memory_reservation: res.reservations.and_then(|r| r.memory_bytes).unwrap_or(0),
        log_config: t
            .task
            .spec
            .log_driver
            .as_ref()
            .map(|d| LogConfig {
                kind: d.name.clone(),
                config: d.options.clone().unwrap_or_default(),
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    let networking = networks.first().map(|n| {
        let mut aliases = published.aliases();
        aliases.extend(n.aliases.clone().unwrap_or_default());
        berth_api::container_types::NetworkingConfig {
            endpoints_config: [(
                n.target.clone(),
                berth_api::container_types::EndpointSettings {
                    aliases: Some(aliases),
                    ..Default::default()
                },
            )]
            .into(),
        }
    });
    let config = ContainerConfig {
        hostname: spec.hostname.as_deref().map(x).unwrap_or_default(),
        user: spec.user.clone().unwrap_or_default(),
        tty: spec.tty,
        open_stdin: spec.open_stdin,
        env: spec.env.as_ref().map(|e| e.iter().map(|v| x(v)).collect()),
        cmd: spec.args.clone(),
        entrypoint: spec.command.clone(),
        image: spec.image.clone().unwrap_or_default(),
        working_dir: spec.dir.clone().unwrap_or_default(),
        labels: Some(labels),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_grace_period.map(|g| g / 1_000_000_000),
        healthcheck: spec.health_check.clone(),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        ..Default::default()
    };
    (
        format!("{task_name}.{}", t.task.id),
        ContainerCreateBody {
            config,
            host_config: host,
            networking_config: networking,
        },
    )
}

/// `Service.Endpoint`: the endpoint spec with swarm's defaults, and the
/// ports as published.
pub fn endpoint_of(spec: &ServiceSpec) -> Endpoint {
    let mut es = spec.endpoint_spec.clone().unwrap_or(EndpointSpec {
        mode: None,
        ports: None,
    });
    es.mode.get_or_insert_with(|| "vip".into());
    let ports: Vec<EndpointPortConfig> = es
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut p| {
            p.protocol.get_or_insert_with(|| "tcp".into());
            p.publish_mode.get_or_insert_with(|| "ingress".into());
            p
        })
        .collect();
    Endpoint {
        spec: es,
        ports: (!ports.is_empty()).then_some(ports),
        virtual_ips: None,
    }
}
