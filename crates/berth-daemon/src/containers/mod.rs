//! Containers: records, names, lifecycle. One [`Container`] per container,
//! held in [`Containers`]; its record is persisted on every state change,
//! and a `watch` channel publishes state changes to waiters (`wait`,
//! `logs -f`, attach).
//!
//! Lifecycle: create (record + writable layer dirs) → start (overlay rootfs
//! mounted, OCI bundle written, `berth shim` spawned) → exit (the shim's
//! monitor records the exit, unmounts, applies `--rm`/restart policy) →
//! remove (dirs deleted).

pub(crate) mod archive;
mod create;
mod devices;
pub mod exec;
mod freeze;
mod health;
mod host_config;
mod lifecycle;
pub mod logs;
mod names;
mod namespaces;
pub(crate) mod ops;
mod process_start;
pub use names::generate as generate_name;
pub mod record;
mod restart;
mod runtime;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::Duration;

use berth_core::{ErrorKind, HasKind};
use tokio::sync::watch;

pub use lifecycle::{RemoveOptions, StopOptions, WaitCondition};
pub use record::{ContainerRecord, Status};

use crate::events::EventBus;
use crate::images::ImageService;
use crate::network::Networks;
use crate::volumes::Volumes;

/// The container service: creates, starts, stops, waits on and removes
/// containers, runs their execs and health checks, and sets up their
/// network sandboxes. It owns the container records ([`Containers`]) and
/// takes the image, volume and network services it needs at construction.
///
/// Threads it starts for a container (the exit monitor, health checks)
/// hold the service itself, not the engine.
pub struct ContainerService {
    pub(crate) containers: Containers,
    pub(crate) images: Arc<ImageService>,
    pub(crate) volumes: Arc<Volumes>,
    pub(crate) networks: Arc<Networks>,
    pub(crate) events: Arc<EventBus>,
    me: Weak<ContainerService>,
}

impl ContainerService {
    pub fn new(
        containers: Containers,
        images: Arc<ImageService>,
        volumes: Arc<Volumes>,
        networks: Arc<Networks>,
        events: Arc<EventBus>,
    ) -> Arc<ContainerService> {
        Arc::new_cyclic(|me| ContainerService {
            containers,
            images,
            volumes,
            networks,
            events,
            me: me.clone(),
        })
    }

    /// The service as an owned handle, for the threads it starts.
    pub(crate) fn arc(&self) -> Arc<ContainerService> {
        self.me
            .upgrade()
            .expect("container service is alive while in use")
    }

    /// The container records, for lookups.
    pub fn store(&self) -> &Containers {
        &self.containers
    }

    /// Containers (IDs) whose mounts use volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|r| r.id)
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFoundOther(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(String),
    /// The container's process, or an exec's, could not be started: no such
    /// executable, or one that cannot be executed. `message` is dockerd's.
    #[error("{message}")]
    ProcessStart {
        failure: berth_shim::ExecFailure,
        message: String,
    },
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// Tearing a container down left things behind: every failure is kept
    /// as it was, not flattened into one string.
    #[error("removing container {id}: {}", join_errors(.failures))]
    Cleanup {
        id: String,
        failures: Vec<ContainerError>,
    },
}

fn join_errors(errors: &[ContainerError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_) | ContainerError::NotFoundOther(_) => ErrorKind::NotFound,
            ContainerError::Conflict(_) => ErrorKind::Conflict,
            ContainerError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ContainerError::Io { .. }
            | ContainerError::Runtime(_)
            | ContainerError::Cleanup { .. } => ErrorKind::Internal,
            ContainerError::Volume(e) => e.kind(),
            // dockerd answers these as a bad configuration, not a fault.
            ContainerError::ProcessStart { failure, .. } => match failure.class {
                berth_shim::ExecFailureClass::NotFound
                | berth_shim::ExecFailureClass::NotExecutable => ErrorKind::InvalidArgument,
                berth_shim::ExecFailureClass::Other => ErrorKind::Internal,
            },
        }
    }
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let context = context.into();
    move |source| ContainerError::Io { context, source }
}

/// Whether the host runs cgroup v2 (the unified hierarchy) rather than v1.
pub(crate) fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// What waiters watch: the status and how many times the container exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub status: Status,
    pub exit_code: i64,
    pub exits: u64,
    pub removed: bool,
}

pub struct Container {
    pub id: String,
    /// `<data-root>/containers/<id>`: record, logs, writable layer.
    pub dir: PathBuf,
    /// `<exec-root>/containers/<id>`: bundle, shim socket.
    pub run_dir: PathBuf,
    record: Mutex<ContainerRecord>,
    watch: watch::Sender<Snapshot>,
    /// Serializes start/stop/remove of this container.
    pub(crate) op: Mutex<()>,
    /// Attach streams still copying output; `--rm` waits for them so the
    /// last lines are not deleted with the log before they are sent.
    pub(crate) attachers: std::sync::atomic::AtomicUsize,
    /// For waiters that are threads rather than tasks (attach pumps, the
    /// monitor, the builder): a counter bumped on every state change or
    /// attacher departure, and a condition variable to sleep on it, so that
    /// they wake at once instead of polling.
    changes: Mutex<u64>,
    changed: Condvar,
}

impl Container {
    fn new(record: ContainerRecord, dir: PathBuf, run_dir: PathBuf) -> Container {
        let snap = Snapshot {
            status: record.state.status,
            exit_code: record.state.exit_code,
            exits: 0,
            removed: false,
        };
        Container {
            id: record.id.clone(),
            dir,
            run_dir,
            record: Mutex::new(record),
            watch: watch::channel(snap).0,
            op: Mutex::new(()),
            attachers: Default::default(),
            changes: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// Publishes a snapshot change to tasks (`watch`) and threads
    /// ([`Container::wait_change`]).
    fn publish(&self, f: impl FnOnce(&mut Snapshot)) {
        self.watch.send_modify(f);
        self.poke();
    }

    /// Wakes the threads blocked in [`Container::wait_change`].
    pub(crate) fn poke(&self) {
        *self.changes.lock().expect("changes lock") += 1;
        self.changed.notify_all();
    }

    /// The change counter: read it before looking at the state, then pass it
    /// to [`Container::wait_change`] so that no change in between is missed.
    pub(crate) fn changes(&self) -> u64 {
        *self.changes.lock().expect("changes lock")
    }

    /// Blocks until the change counter moves past `seen` or `timeout`
    /// passes; returns the counter.
    pub(crate) fn wait_change(&self, seen: u64, timeout: Duration) -> u64 {
        let g = self.changes.lock().expect("changes lock");
        let (g, _) = self
            .changed
            .wait_timeout_while(g, timeout, |n| *n == seen)
            .expect("changes lock");
        *g
    }

    pub fn record(&self) -> ContainerRecord {
        self.record.lock().expect("record lock").clone()
    }

    pub fn name(&self) -> String {
        self.record.lock().expect("record lock").name.clone()
    }

    /// Changes the record, persists it, and tells watchers.
    pub fn update(&self, f: impl FnOnce(&mut ContainerRecord)) -> Result<(), ContainerError> {
        let mut r = self.record.lock().expect("record lock");
        let before = r.state.status;
        f(&mut r);
        r.save(&self.dir)
            .map_err(io(format!("saving container {}", self.id)))?;
        let exited = before.is_running() && !r.state.status.is_running();
        let status = r.state.status;
        let code = r.state.exit_code;
        drop(r);
        self.publish(|s| {
            s.status = status;
            s.exit_code = code;
            if exited {
                s.exits += 1;
            }
        });
        Ok(())
    }

    /// Counts one more exit without a record change (a start that failed).
    pub(crate) fn count_exit(&self) {
        self.publish(|s| s.exits += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.watch.subscribe()
    }

    pub fn mark_removed(&self) {
        self.publish(|s| s.removed = true);
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }
    pub fn upper_dir(&self) -> PathBuf {
        self.dir.join("rw").join("upper")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("rw").join("work")
    }
    pub fn bundle(&self) -> PathBuf {
        self.run_dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// `<exec-root>/s/<id[..16]>`: kept short, because the shim's socket
    /// path must fit in `sun_path` (108 bytes) even under a long exec-root.
    pub fn shim_dir(&self) -> PathBuf {
        let exec_root = self
            .run_dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&self.run_dir);
        exec_root.join("s").join(&self.id[..16])
    }
}

/// All containers of this engine.
pub struct Containers {
    pub root: PathBuf,
    pub run_root: PathBuf,
    /// `<exec-root>/seccomp`: the shims' compiled seccomp programs
    /// (`berth_shim::seccomp`).
    pub seccomp_cache: PathBuf,
    map: RwLock<HashMap<String, Arc<Container>>>,
    /// Names claimed by creates and renames in flight: name → the ID of
    /// the container it is for (see [`Containers::claim_name`]).
    claims: Mutex<HashMap<String, String>>,
    pub(crate) execs: exec::Execs,
}

impl Containers {
    pub(crate) fn make(&self, record: ContainerRecord) -> Arc<Container> {
        let dir = self.root.join(&record.id);
        let run_dir = self.run_root.join(&record.id);
        Arc::new(Container::new(record, dir, run_dir))
    }

    /// Loads every container record under `<data-root>/containers`.
    pub fn open(data_root: &Path, exec_root: &Path) -> Result<Containers, ContainerError> {
        let root = data_root.join("containers");
        let run_root = exec_root.join("containers");
        // A cache only: running shims hold their programs in memory, so a
        // fresh start begins with none and profiles no container uses any
        // more do not pile up.
        let seccomp_cache = exec_root.join("seccomp");
        let _ = std::fs::remove_dir_all(&seccomp_cache);
        std::fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        std::fs::create_dir_all(&run_root)
            .map_err(io(format!("creating {}", run_root.display())))?;
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(&root).map_err(io(format!("reading {}", root.display())))? {
            let Ok(entry) = entry else { continue };
            let dir = entry.path();
            match ContainerRecord::load(&dir) {
                Ok(rec) if rec.id == entry.file_name().to_string_lossy() => {
                    let run_dir = run_root.join(&rec.id);
                    map.insert(rec.id.clone(), Arc::new(Container::new(rec, dir, run_dir)));
                }
                Ok(_) | Err(_) => {
                    // A directory without a complete record is a create that
                    // never finished: nothing refers to it.
                    tracing::warn!(dir = %dir.display(), "removing incomplete container directory");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        Ok(Containers {
            root,
            run_root,
            seccomp_cache,
            map: RwLock::new(map),
            claims: Default::default(),
            execs: Default::default(),
        })
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.map
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    /// By full ID, name (with or without '/'), or unique ID prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Container>, ContainerError> {
        let map = self.map.read().expect("containers lock");
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.name() == name) {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let found: Vec<_> = map.values().filter(|c| c.id.starts_with(key)).collect();
            match found.len() {
                1 => return Ok(found[0].clone()),
                0 => {}
                n => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "multiple IDs found with provided prefix: {key} ({n} containers)"
                    )))
                }
            }
        }
        Err(ContainerError::NotFound(key.to_string()))
    }

    pub fn name_owner(&self, name: &str) -> Option<String> {
        self.map
            .read()
            .expect("containers lock")
            .values()
            .find(|c| c.name() == name)
            .map(|c| c.id.clone())
    }

    /// Claims `name` for container `id` until the claim is dropped. Refused
    /// with a conflict naming the owner when a container has the name or
    /// another create or rename holds it: the check and the claim are one
    /// step, so of two creates (or renames) to one name exactly one wins.
    /// A create holds its claim until the container is inserted, a rename
    /// until the record carries the new name.
    pub(crate) fn claim_name(
        &self,
        name: &str,
        id: &str,
    ) -> Result<names::NameClaim<'_>, ContainerError> {
        let mut claims = self.claims.lock().expect("name claims lock");
        let owner = self.name_owner(name).or_else(|| claims.get(name).cloned());
        if let Some(owner) = owner {
            return Err(ContainerError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        claims.insert(name.to_string(), id.to_string());
        Ok(names::NameClaim::new(&self.claims, name))
    }

    /// Whether a container has `name` or a create or rename claims it.
    pub(crate) fn name_taken(&self, name: &str) -> bool {
        self.name_owner(name).is_some()
            || self
                .claims
                .lock()
                .expect("name claims lock")
                .contains_key(name)
    }

    /// Renames `c` to `new_name` (with or without '/'); returns the old name.
    pub(crate) fn rename(&self, c: &Container, new_name: &str) -> Result<String, ContainerError> {
        let new = new_name.strip_prefix('/').unwrap_or(new_name);
        names::validate(new).map_err(ContainerError::InvalidArgument)?;
        let _claim = self.claim_name(new, &c.id)?;
        let old_name = c.name();
        c.update(|r| r.name = new.to_string())?;
        Ok(old_name)
    }

    pub(crate) fn insert(&self, c: Arc<Container>) {
        self.map
            .write()
            .expect("containers lock")
            .insert(c.id.clone(), c);
    }

    pub(crate) fn forget(&self, id: &str) -> Option<Arc<Container>> {
        self.execs.remove_container(id);
        self.map.write().expect("containers lock").remove(id)
    }

    /// IDs of containers using an image (for `rmi`).
    pub fn users_of(&self, image_id: &str) -> Vec<(String, bool)> {
        self.all()
            .iter()
            .map(|c| c.record())
            .filter(|r| r.image_id == image_id)
            .map(|r| (r.id.clone(), r.state.status.is_running()))
            .collect()
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn cleanup_failures_are_kept_as_values_with_their_kinds() {
        let e = ContainerError::Cleanup {
            id: "abc".into(),
            failures: vec![
                io("/run/x")(std::io::Error::from_raw_os_error(libc::EBUSY)),
                crate::volumes::VolumeError::InUse("volume v is in use".into()).into(),
            ],
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
        let ContainerError::Cleanup { failures, .. } = &e else {
            unreachable!()
        };
        assert_eq!(failures[1].kind(), ErrorKind::Conflict);
        let text = e.to_string();
        assert!(
            text.starts_with("removing container abc: /run/x: "),
            "{text}"
        );
        assert!(text.ends_with("; volume v is in use"), "{text}");
    }
}

#[cfg(test)]
mod name_tests {
    use std::sync::Barrier;

    use super::*;

    /// Containers over a temporary data-root and exec-root: no root needed.
    fn store() -> (tempfile::TempDir, Containers) {
        let t = tempfile::tempdir().unwrap();
        let c = Containers::open(&t.path().join("data"), &t.path().join("exec")).unwrap();
        (t, c)
    }

    fn id(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    /// Creates a container record named `name` as `container_create` does
    /// once it holds the name's claim.
    fn add(cs: &Containers, id: &str, name: &str) -> Arc<Container> {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/record-current");
        let mut r = ContainerRecord::load(&fixture).unwrap();
        r.id = id.to_string();
        r.name = name.to_string();
        r.state = Default::default();
        let c = cs.make(r.clone());
        std::fs::create_dir_all(&c.dir).unwrap();
        r.save(&c.dir).unwrap();
        cs.insert(c.clone());
        c
    }

    fn conflict(e: ContainerError) -> String {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        e.to_string()
    }

    #[test]
    fn of_two_concurrent_creates_of_one_name_one_wins() {
        let (_t, cs) = store();
        let barrier = Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let claim = |n: u8| {
                let (cs, barrier) = (&cs, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    match cs.claim_name("web", &id(n)) {
                        // Held like a create holds it: until the container is in.
                        Ok(claim) => {
                            add(cs, &id(n), "web");
                            drop(claim);
                            Ok(n)
                        }
                        Err(e) => Err(conflict(e)),
                    }
                })
            };
            let (a, b) = (claim(1), claim(2));
            (a.join().unwrap(), b.join().unwrap())
        });
        let (winner, msg) = match (a, b) {
            (Ok(w), Err(m)) | (Err(m), Ok(w)) => (w, m),
            other => panic!("want one winner and one conflict: {other:?}"),
        };
        assert!(msg.contains("\"/web\""), "{msg}");
        assert!(
            msg.contains(&id(winner)),
            "the conflict names the owner: {msg}"
        );
        assert_eq!(cs.name_owner("web"), Some(id(winner)));
        assert_eq!(cs.all().len(), 1);
    }

    #[test]
    fn a_name_claimed_by_a_create_in_flight_is_taken() {
        let (_t, cs) = store();
        let claim = cs.claim_name("web", &id(1)).unwrap();
        assert!(cs.name_taken("web"));
        let msg = conflict(cs.claim_name("web", &id(2)).err().unwrap());
        assert!(msg.contains(&id(1)), "{msg}");
        // A create that fails before inserting its container frees the name.
        drop(claim);
        assert!(!cs.name_taken("web"));
        drop(cs.claim_name("web", &id(2)).unwrap());
    }

    #[test]
    fn a_removed_container_frees_its_name() {
        let (_t, cs) = store();
        add(&cs, &id(1), "web");
        conflict(cs.claim_name("web", &id(2)).err().unwrap());
        cs.forget(&id(1)).unwrap();
        assert!(!cs.name_taken("web"));
        let _claim = cs.claim_name("web", &id(2)).unwrap();
    }

    #[test]
    fn rename_moves_the_name_and_refuses_a_taken_one() {
        let (_t, cs) = store();
        let a = add(&cs, &id(1), "one");
        add(&cs, &id(2), "two");
        assert_eq!(cs.rename(&a, "/three").unwrap(), "one");
        assert_eq!(cs.name_owner("three"), Some(id(1)));
        assert_eq!(cs.name_owner("one"), None, "the old name is free");
        assert_eq!(
            ContainerRecord::load(&a.dir).unwrap().name,
            "three",
            "persisted"
        );
        let msg = conflict(cs.rename(&a, "two").unwrap_err());
        assert!(msg.contains("\"/two\"") && msg.contains(&id(2)), "{msg}");
        assert_eq!(a.name(), "three", "a refused rename keeps the name");
        // Renaming to its own name is a conflict too, as dockerd's.
        conflict(cs.rename(&a, "three").unwrap_err());
        // A create in flight holds its name against renames.
        let _claim = cs.claim_name("four", &id(3)).unwrap();
        conflict(cs.rename(&a, "four").unwrap_err());
        assert_eq!(
            cs.rename(&a, "no spaces").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
