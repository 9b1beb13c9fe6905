//! The snapshot store: one directory per unpacked layer.
//!
//! Layout under the root (e.g. `/var/lib/berth/snapshots`):
//!
//! ```text
//! <key>/fs          the unpacked layer, used as an overlayfs lowerdir
//! <key>/info.json   SnapshotInfo: parent key, size, diff ID
//! tmp-<random>/     work in progress (staging) or being removed
//! ```
//!
//! Lifecycle of a layer: [`Snapshotter::prepare`] creates a private
//! `tmp-<random>/fs` staging directory; the caller applies the layer into it
//! ([`crate::apply_layer`]) and calls [`Snapshotter::commit`], which writes
//! `info.json`, flushes the filesystem and renames the staging directory to
//! `<key>` in one atomic step. A snapshot is therefore either absent or
//! complete. Committing a key that already exists (a concurrent pull of the
//! same layer) discards the staging copy and succeeds. A [`Staging`] dropped
//! without commit deletes itself.
//!
//! [`Snapshotter::remove`] first renames `<key>` to `tmp-rm-<random>` and only
//! then deletes it, so a crash mid-delete never leaves a half-deleted snapshot
//! under its key. [`Snapshotter::open`] sweeps every `tmp-*` left behind by a
//! crash.
//!
//! Keys are chain IDs in hex: only `[a-z0-9]`, 1 to 128 characters, so a key
//! can never name a path outside the root or collide with `tmp-*`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use berth_core::{ErrorKind, HasKind};
use rand::Rng;
use serde::{Deserialize, Serialize};

const TMP_PREFIX: &str = "tmp-";
const INFO_FILE: &str = "info.json";
const FS_DIR: &str = "fs";
const MAX_KEY_LEN: usize = 128;

/// What is recorded about a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Key of the snapshot below this one, `None` for a base layer.
    pub parent: Option<String>,
    /// Bytes of regular file content in this snapshot.
    pub size: u64,
    /// Digest of the uncompressed layer tar, e.g. `sha256:…`.
    pub diff_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid snapshot key \"{key}\": must be 1 to 128 characters of [a-z0-9]")]
    InvalidKey { key: String },
    #[error("snapshot \"{key}\" not found")]
    NotFound { key: String },
    #[error("{op} \"{}\": {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot \"{key}\" has an unreadable info.json: {source}")]
    Info {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

impl HasKind for SnapshotError {
    fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::InvalidKey { .. } => ErrorKind::InvalidArgument,
            SnapshotError::NotFound { .. } => ErrorKind::NotFound,
            SnapshotError::Io { .. } | SnapshotError::Info { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.into();
    move |source| SnapshotError::Io { op, path, source }
}

/// Checks that `key` can name a snapshot: `[a-z0-9]{1,128}`.
pub fn validate_key(key: &str) -> Result<(), SnapshotError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// A directory-based snapshot store. See the module docs.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

/// An uncommitted snapshot: a private directory to unpack a layer into.
/// Removed on drop unless committed.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    fs: PathBuf,
    committed: bool,
}

impl Staging {
    /// The directory to unpack into (it becomes `<key>/fs` on commit).
    pub fn path(&self) -> &Path {
        &self.fs
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(error) = fs::remove_dir_all(&self.dir) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.dir.display(), %error, "removing staging snapshot failed");
                }
            }
        }
    }
}

impl Snapshotter {
    /// Opens (creating if needed) the store at `root` and removes leftovers
    /// of interrupted prepares and removals.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        fs::create_dir_all(root).map_err(io_err("creating snapshot root", root))?;
        for entry in fs::read_dir(root).map_err(io_err("reading snapshot root", root))? {
            let entry = entry.map_err(io_err("reading snapshot root", root))?;
            if entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(TMP_PREFIX.as_bytes())
            {
                let path = entry.path();
                tracing::info!(dir = %path.display(), "removing leftover snapshot work directory");
                let res = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                res.map_err(io_err("removing leftover", &path))?;
            }
        }
        Ok(Snapshotter {
            root: root.to_owned(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a committed snapshot `key` exists (false for invalid keys).
    pub fn exists(&self, key: &str) -> bool {
        validate_key(key).is_ok() && self.root.join(key).join(FS_DIR).is_dir()
    }

    /// The directory of snapshot `key` to use as an overlayfs lowerdir.
    /// Does not check that the snapshot exists.
    pub fn path(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        validate_key(key)?;
        Ok(self.root.join(key).join(FS_DIR))
    }

    /// Creates a fresh staging directory.
    pub fn prepare(&self) -> Result<Staging, SnapshotError> {
        let dir = self.tmp_path("");
        fs::create_dir(&dir).map_err(io_err("creating staging directory", &dir))?;
        // From here on, dropping the Staging cleans up.
        let staging = Staging {
            fs: dir.join(FS_DIR),
            dir,
            committed: false,
        };
        fs::create_dir(&staging.fs).map_err(io_err("creating staging directory", &staging.fs))?;
        Ok(staging)
    }

    /// Makes `staging` the snapshot `key`, durably and atomically. If `key`
    /// already exists the staging copy is discarded and this succeeds.
    pub fn commit(
        &self,
        staging: Staging,
        key: &str,
        info: &SnapshotInfo,
    ) -> Result<(), SnapshotError> {
        validate_key(key)?;
        if self.root.join(key).exists() {
            return Ok(());
        }
        let file = self.seal(&staging, key, info)?;
        // One syncfs(2) flushes the unpacked files, their directories and
        // info.json: far cheaper than an fsync per file, and a snapshot must
        // never become visible with its content still only in page cache.
        nix::unistd::syncfs(file.as_raw_fd()).map_err(|e| SnapshotError::Io {
            op: "syncing",
            path: staging.dir.clone(),
            source: e.into(),
        })?;
        if self.publish_sealed(staging, key)? {
            self.sync_root()?;
        }
        Ok(())
    }

    /// First half of a batched commit: writes `info` into `staging`, not
    /// synced. The caller then makes the staging directories durable with
    /// one `syncfs(2)` before [`publish_sealed`](Self::publish_sealed).
    pub fn seal(
        &self,
        staging: &Staging,
        key: &str,
        info: &SnapshotInfo,
    ) -> Result<File, SnapshotError> {
        validate_key(key)?;
        if let Some(parent) = &info.parent {
            validate_key(parent)?;
        }
        let info_path = staging.dir.join(INFO_FILE);
        let json = serde_json::to_vec_pretty(info).map_err(|source| SnapshotError::Info {
            key: key.to_owned(),
            source,
        })?;
        let mut file = File::create(&info_path).map_err(io_err("writing", &info_path))?;
        file.write_all(&json)
            .map_err(io_err("writing", &info_path))?;
        Ok(file)
    }

    /// Second half: renames a sealed, already synced `staging` to `key`
    /// (a `key` that exists wins and `staging` is discarded). The rename is
    /// durable only after [`sync_root`](Self::sync_root). Returns whether
    /// this call created `key`.
    pub fn publish_sealed(&self, mut staging: Staging, key: &str) -> Result<bool, SnapshotError> {
        validate_key(key)?;
        let target = self.root.join(key);
        if target.exists() {
            return Ok(false);
        }
        match fs::rename(&staging.dir, &target) {
            Ok(()) => {
                staging.committed = true;
                Ok(true)
            }
            // Lost a race with another commit of the same layer.
            Err(_) if target.join(FS_DIR).is_dir() => Ok(false),
            Err(e) => Err(io_err("committing snapshot", &target)(e)),
        }
    }

    /// fsyncs the snapshot root: makes [`publish_sealed`](Self::publish_sealed)
    /// renames durable.
    pub fn sync_root(&self) -> Result<(), SnapshotError> {
        sync_dir(&self.root)
    }

    /// Removes snapshot `key`.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        validate_key(key)?;
        let path = self.root.join(key);
        let doomed = self.tmp_path("rm-");
        match fs::rename(&path, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound {
                    key: key.to_owned(),
                })
            }
            Err(e) => return Err(io_err("removing snapshot", &path)(e)),
        }
        sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).map_err(io_err("removing snapshot", &doomed))
    }

    /// Keys of all committed snapshots, sorted.
    pub fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let mut keys = Vec::new();
        for entry in
            fs::read_dir(&self.root).map_err(io_err("reading snapshot root", &self.root))?
        {
            let entry = entry.map_err(io_err("reading snapshot root", &self.root))?;
            if let Ok(name) = entry.file_name().into_string() {
                if validate_key(&name).is_ok() && entry.path().join(FS_DIR).is_dir() {
                    keys.push(name);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The recorded info of snapshot `key`.
    pub fn info(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        validate_key(key)?;
        let path = self.root.join(key).join(INFO_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound {
                    key: key.to_owned(),
                })
            }
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Info {
            key: key.to_owned(),
            source,
        })
    }

    fn tmp_path(&self, kind: &str) -> PathBuf {
        let suffix: u64 = rand::thread_rng().gen();
        self.root.join(format!("{TMP_PREFIX}{kind}{suffix:016x}"))
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("syncing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(parent: Option<&str>) -> SnapshotInfo {
        SnapshotInfo {
            parent: parent.map(str::to_owned),
            size: 3,
            diff_id: "sha256:abc".into(),
        }
    }

    #[test]
    fn commit_makes_snapshot_visible_with_info() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let staging = store.prepare().unwrap();
        fs::write(staging.path().join("hello"), "hi\n").unwrap();
        assert!(!store.exists("aa11"));
        store.commit(staging, "aa11", &info(None)).unwrap();
        assert!(store.exists("aa11"));
        assert_eq!(
            fs::read(store.path("aa11").unwrap().join("hello")).unwrap(),
            b"hi\n"
        );
        assert_eq!(store.info("aa11").unwrap(), info(None));
        assert_eq!(store.list().unwrap(), vec!["aa11".to_owned()]);
        // No staging leftovers.
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let first = store.prepare().unwrap();
        fs::write(first.path().join("f"), "first").unwrap();
        store.commit(first, "k", &info(None)).unwrap();
        let second = store.prepare().unwrap();
        fs::write(second.path().join("f"), "second").unwrap();
        store.commit(second, "k", &info(Some("p"))).unwrap();
        assert_eq!(
            fs::read(store.path("k").unwrap().join("f")).unwrap(),
            b"first"
        );
        assert_eq!(store.info("k").unwrap(), info(None));
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "second staging discarded"
        );
    }

    #[test]
    fn dropped_staging_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let staging = store.prepare().unwrap();
        let path = staging.path().to_owned();
        assert!(path.is_dir());
        drop(staging);
        assert!(!path.exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_deletes_and_reports_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let staging = store.prepare().unwrap();
        fs::create_dir_all(staging.path().join("a/b")).unwrap();
        store.commit(staging, "k1", &info(None)).unwrap();
        store.remove("k1").unwrap();
        assert!(!store.exists("k1"));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let err = store.remove("k1").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "snapshot \"k1\" not found");
        assert_eq!(store.info("k1").unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn open_sweeps_interrupted_work() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Snapshotter::open(tmp.path()).unwrap();
            let staging = store.prepare().unwrap();
            store.commit(staging, "keep", &info(None)).unwrap();
        }
        fs::create_dir_all(tmp.path().join("tmp-0123/fs/x")).unwrap();
        fs::create_dir_all(tmp.path().join("tmp-rm-4567/fs")).unwrap();
        fs::write(tmp.path().join("tmp-stray"), "").unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let mut names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["keep"]);
        assert_eq!(store.list().unwrap(), vec!["keep"]);
    }

    #[test]
    fn keys_are_validated() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Snapshotter::open(tmp.path()).unwrap();
        let long = "a".repeat(129);
        for bad in [
            "",
            "..",
            "../x",
            "/etc",
            "a/b",
            "ABC",
            "tmp-1",
            "sha256:ab",
            long.as_str(),
        ] {
            let err = store.path(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
            assert!(err.to_string().contains("invalid snapshot key"), "{err}");
            assert!(!store.exists(bad));
            assert!(store.remove(bad).is_err());
            let staging = store.prepare().unwrap();
            assert!(store.commit(staging, bad, &info(None)).is_err());
        }
        let staging = store.prepare().unwrap();
        assert!(store.commit(staging, "ok", &info(Some("../up"))).is_err());
        assert!(validate_key(&"0".repeat(128)).is_ok());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "failed commits cleaned up"
        );
    }
}
