//! The cluster store: where cluster objects live, behind the one seam a
//! distributed store implements later.
//!
//! The interface is etcd's model, cut to what the orchestrator needs: a
//! key space per object [`Kind`], a store-wide revision that every write
//! advances, each object's version being the revision of its last write
//! (etcd's `mod_revision`, swarm's `Version.Index`), and writes applied as
//! one all-or-nothing transaction whose operations may each demand the
//! version they read (compare-and-swap). A `watch` delivers every committed
//! change in revision order. Values are opaque bytes here; [`crate::Cluster`]
//! gives them types.
//!
//! [`LocalStore`] keeps it in one redb file under the data root: crash-safe
//! (redb commits are durable and atomic), single process.

use std::path::Path;
use std::sync::{mpsc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// The object kinds of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The one cluster object (swarm spec, keys).
    Cluster,
    Node,
    Service,
    Task,
    Secret,
    Config,
    /// Cluster networks (swarm scope).
    Network,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Cluster,
        Kind::Node,
        Kind::Service,
        Kind::Task,
        Kind::Secret,
        Kind::Config,
        Kind::Network,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Node => "node",
            Kind::Service => "service",
            Kind::Task => "task",
            Kind::Secret => "secret",
            Kind::Config => "config",
            Kind::Network => "network",
        }
    }

    fn table(self) -> TableDefinition<'static, &'static str, (u64, &'static [u8])> {
        TableDefinition::new(self.as_str())
    }
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    /// The revision of the object's last write.
    pub version: u64,
    pub value: Vec<u8>,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Fails with [`StoreError::Exists`] when the id is taken.
    Create {
        kind: Kind,
        id: String,
        value: Vec<u8>,
    },
    /// Fails with [`StoreError::Stale`] unless the object's version is
    /// `expect`, with [`StoreError::Missing`] when it is gone.
    Update {
        kind: Kind,
        id: String,
        expect: u64,
        value: Vec<u8>,
    },
    /// Deletes; with `expect`, only at that version. Deleting an absent
    /// object is [`StoreError::Missing`].
    Delete {
        kind: Kind,
        id: String,
        expect: Option<u64>,
    },
}

/// A committed change, as `watch` delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub revision: u64,
    pub kind: Kind,
    pub id: String,
    /// `None` when the object was deleted.
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} already exists", kind = .0.as_str(), id = .1)]
    Exists(Kind, String),
    #[error("{kind} {id} not found", kind = .0.as_str(), id = .1)]
    Missing(Kind, String),
    /// The object changed since the caller read it.
    #[error("{kind} {id}: version {expected} is out of date (now {actual})", kind = .kind.as_str())]
    Stale {
        kind: Kind,
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("cluster store {what}: {reason}")]
    Backend { what: &'static str, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the orchestrator needs from a store.
pub trait ClusterStore: Send + Sync {
    fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>>;
    fn list(&self, kind: Kind) -> StoreResult<Vec<Record>>;
    /// Applies `ops` atomically and returns the new revision; nothing is
    /// written when one fails.
    fn apply(&self, ops: Vec<Op>) -> StoreResult<u64>;
    /// The latest committed revision.
    fn revision(&self) -> StoreResult<u64>;
    /// Every change committed from now on, in revision order, until the
    /// receiver is dropped.
    fn watch(&self) -> mpsc::Receiver<Change>;
    /// Deletes everything (leaving a swarm).
    fn wipe(&self) -> StoreResult<()>;
}

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
/// The on-disk format of the values (the cluster objects' JSON).
const FORMAT: &str = "format";
pub const FORMAT_VERSION: u64 = 1;

fn backend(what: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |e| StoreError::Backend {
        what,
        reason: e.to_string(),
    }
}

/// The engine's own store: one redb file.
pub struct LocalStore {
    db: Database,
    watchers: Mutex<Vec<mpsc::Sender<Change>>>,
}

impl LocalStore {
    /// Opens (or creates) the store at `path`. A file written by a newer
    /// format is refused rather than misread.
    pub fn open(path: &Path) -> StoreResult<LocalStore> {
        let db = Database::create(path).map_err(|e| StoreError::Backend {
            what: "open",
            reason: format!("{}: {e}", path.display()),
        })?;
        let tx = db.begin_write().map_err(|e| backend("open")(e.into()))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| backend("open")(e.into()))?;
            let format = meta
                .get(FORMAT)
                .map_err(|e| backend("open")(e.into()))?
                .map(|v| v.value());
            match format {
                None => {
                    meta.insert(FORMAT, FORMAT_VERSION)
                        .map_err(|e| backend("open")(e.into()))?;
                }
                Some(v) if v > FORMAT_VERSION => {
                    return Err(StoreError::Backend {
                        what: "open",
                        reason: format!(
                            "{} was written in format {v}; this berth reads up to {FORMAT_VERSION}",
                            path.display()
                        ),
                    })
                }
                Some(_) => {}
            }
            for kind in Kind::ALL {
                tx.open_table(kind.table())
                    .map_err(|e| backend("open")(e.into()))?;
            }
        }
        tx.commit().map_err(|e| backend("open")(e.into()))?;
        Ok(LocalStore {
            db,
            watchers: Mutex::new(Vec::new()),
        })
    }

    fn notify(&self, changes: Vec<Change>) {
        let mut w = self.watchers.lock().expect("watchers lock");
        w.retain(|tx| changes.iter().all(|c| tx.send(c.clone()).is_ok()));
    }
}

impl ClusterStore for LocalStore {
    fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let err = backend("read");
        let tx = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
        let got = table.get(id).map_err(|e| err(e.into()))?;
        Ok(got.map(|v| {
            let (version, value) = v.value();
            Record {
                id: id.to_string(),
                version,
                value: value.to_vec(),
            }
        }))
    }

    fn list(&self, kind: Kind) -> StoreResult<Vec<Record>> {
        let err = backend("read");
        let tx = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| err(e.into()))? {
            let (k, v) = entry.map_err(|e| err(e.into()))?;
            let (version, value) = v.value();
            out.push(Record {
                id: k.value().to_string(),
                version,
                value: value.to_vec(),
            });
        }
        Ok(out)
    }

    fn apply(&self, ops: Vec<Op>) -> StoreResult<u64> {
        let err = backend("write");
        let tx = self.db.begin_write().map_err(|e| err(e.into()))?;
        let mut changes = Vec::with_capacity(ops.len());
        let revision;
        {
            let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
            let current = meta
                .get(REVISION)
                .map_err(|e| err(e.into()))?
                .map(|v| v.value())
                .unwrap_or(0);
            revision = current + 1;
            for op in ops {
                match op {
                    Op::Create { kind, id, value } => {
                        let mut t = tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
                        if t.get(id.as_str()).map_err(|e| err(e.into()))?.is_some() {
                            return Err(StoreError::Exists(kind, id));
                        }
                        t.insert(id.as_str(), (revision, value.as_slice()))
                            .map_err(|e| err(e.into()))?;
                        changes.push(Change {
                            revision,
                            kind,
                            id,
                            value: Some(value),
                        });
                    }
                    Op::Update {
                        kind,
                        id,
                        expect,
                        value,
                    } => {
                        let mut t = tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
                        let actual = t
                            .get(id.as_str())
                            .map_err(|e| err(e.into()))?
                            .map(|v| v.value().0);
                        match actual {
                            None => return Err(StoreError::Missing(kind, id)),
                            Some(a) if a != expect => {
                                return Err(StoreError::Stale {
                                    kind,
                                    id,
                                    expected: expect,
                                    actual: a,
                                })
                            }
                            Some(_) => {}
                        }
                        t.insert(id.as_str(), (revision, value.as_slice()))
                            .map_err(|e| err(e.into()))?;
                        changes.push(Change {
                            revision,
                            kind,
                            id,
                            value: Some(value),
                        });
                    }
                    Op::Delete { kind, id, expect } => {
                        let mut t = tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
                        let actual = t
                            .get(id.as_str())
                            .map_err(|e| err(e.into()))?
                            .map(|v| v.value().0);
                        match (actual, expect) {
                            (None, _) => return Err(StoreError::Missing(kind, id)),
                            (Some(a), Some(x)) if a != x => {
                                return Err(StoreError::Stale {
                                    kind,
                                    id,
                                    expected: x,
                                    actual: a,
                                })
                            }
                            _ => {}
                        }
                        t.remove(id.as_str()).map_err(|e| err(e.into()))?;
                        changes.push(Change {
                            revision,
                            kind,
                            id,
                            value: None,
                        });
                    }
                }
            }
            meta.insert(REVISION, revision).map_err(|e| err(e.into()))?;
        }
        tx.commit().map_err(|e| err(e.into()))?;
        self.notify(changes);
        Ok(revision)
    }

    fn revision(&self) -> StoreResult<u64> {
        let err = backend("read");
        let tx = self.db.begin_read().map_err(|e| err(e.into()))?;
        let meta = tx.open_table(META).map_err(|e| err(e.into()))?;
        Ok(meta
            .get(REVISION)
            .map_err(|e| err(e.into()))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    fn watch(&self) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel();
        self.watchers.lock().expect("watchers lock").push(tx);
        rx
    }

    fn wipe(&self) -> StoreResult<()> {
        let err = backend("wipe");
        let tx = self.db.begin_write().map_err(|e| err(e.into()))?;
        for kind in Kind::ALL {
            tx.delete_table(kind.table()).map_err(|e| err(e.into()))?;
            tx.open_table(kind.table()).map_err(|e| err(e.into()))?;
        }
        tx.commit().map_err(|e| err(e.into()))?;
        Ok(())
    }
}

/// Checks any [`ClusterStore`] against the contract above; the local
/// store's tests run it, and so will a distributed store's.
pub fn conformance(store: &dyn ClusterStore) {
    let v = |s: &str| s.as_bytes().to_vec();
    let watch = store.watch();
    let r0 = store.revision().unwrap();
    let r1 = store
        .apply(vec![Op::Create {
            kind: Kind::Service,
            id: "s1".into(),
            value: v("one"),
        }])
        .unwrap();
    assert!(r1 > r0, "a write advances the revision");
    let got = store.get(Kind::Service, "s1").unwrap().unwrap();
    assert_eq!((got.version, got.value.as_slice()), (r1, &b"one"[..]));
    assert!(
        store.get(Kind::Task, "s1").unwrap().is_none(),
        "kinds are separate key spaces"
    );

    // Create of a taken id fails and writes nothing (the whole batch).
    let e = store
        .apply(vec![
            Op::Create {
                kind: Kind::Task,
                id: "t1".into(),
                value: v("t"),
            },
            Op::Create {
                kind: Kind::Service,
                id: "s1".into(),
                value: v("again"),
            },
        ])
        .unwrap_err();
    assert!(matches!(e, StoreError::Exists(Kind::Service, _)), "{e}");
    assert!(
        store.get(Kind::Task, "t1").unwrap().is_none(),
        "a failed transaction writes nothing"
    );
    assert_eq!(store.revision().unwrap(), r1);

    // Compare-and-swap.
    let stale = store
        .apply(vec![Op::Update {
            kind: Kind::Service,
            id: "s1".into(),
            expect: r1 - 1,
            value: v("two"),
        }])
        .unwrap_err();
    assert!(matches!(stale, StoreError::Stale { actual, .. } if actual == r1));
    let r2 = store
        .apply(vec![Op::Update {
            kind: Kind::Service,
            id: "s1".into(),
            expect: r1,
            value: v("two"),
        }])
        .unwrap();
    assert_eq!(store.get(Kind::Service, "s1").unwrap().unwrap().version, r2);
    let missing = store
        .apply(vec![Op::Update {
            kind: Kind::Service,
            id: "nope".into(),
            expect: 1,
            value: v("x"),
        }])
        .unwrap_err();
    assert!(matches!(missing, StoreError::Missing(..)));

    // Delete, with and without a version.
    assert!(matches!(
        store.apply(vec![Op::Delete {
            kind: Kind::Service,
            id: "s1".into(),
            expect: Some(r1),
        }]),
        Err(StoreError::Stale { .. })
    ));
    let r3 = store
        .apply(vec![
            Op::Create {
                kind: Kind::Task,
                id: "t2".into(),
                value: v("t"),
            },
            Op::Delete {
                kind: Kind::Service,
                id: "s1".into(),
                expect: Some(r2),
            },
        ])
        .unwrap();
    assert!(store.get(Kind::Service, "s1").unwrap().is_none());
    assert_eq!(store.list(Kind::Task).unwrap().len(), 1);

    // The watch saw exactly the committed changes, in order.
    let seen: Vec<(u64, Kind, String, bool)> = watch
        .try_iter()
        .map(|c| (c.revision, c.kind, c.id, c.value.is_some()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (r1, Kind::Service, "s1".to_string(), true),
            (r2, Kind::Service, "s1".to_string(), true),
            (r3, Kind::Task, "t2".to_string(), true),
            (r3, Kind::Service, "s1".to_string(), false),
        ]
    );

    store.wipe().unwrap();
    assert!(store.list(Kind::Task).unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_store_conforms() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::open(&d.path().join("swarm.db")).unwrap();
        conformance(&s);
    }

    #[test]
    fn local_store_survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("swarm.db");
        let r = {
            let s = LocalStore::open(&path).unwrap();
            s.apply(vec![Op::Create {
                kind: Kind::Node,
                id: "n".into(),
                value: b"x".to_vec(),
            }])
            .unwrap()
        };
        let s = LocalStore::open(&path).unwrap();
        assert_eq!(s.revision().unwrap(), r);
        assert_eq!(s.get(Kind::Node, "n").unwrap().unwrap().version, r);
    }

    #[test]
    fn newer_format_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("swarm.db");
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert(FORMAT, FORMAT_VERSION + 1)
                .unwrap();
            tx.commit().unwrap();
        }
        let e = LocalStore::open(&path).err().expect("refused");
        assert!(e.to_string().contains("format"), "{e}");
    }
}
