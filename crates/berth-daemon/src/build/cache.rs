//! The build cache: step key → the image the step produced.
//!
//! A key is the sha256 of what determines a step's result: the parent
//! image ID, the instruction after expansion, for `RUN` the build args it
//! sees, and for `COPY`/`ADD` a digest of the source files (relative paths,
//! types, modes, contents, link targets — never mtimes, so a fresh checkout
//! still hits). The map lives in `<data-root>/build-cache/cache.json`,
//! rewritten atomically, so it survives restarts; an entry whose image was
//! removed is a miss. Each entry remembers when it was last used, for
//! `builder prune --filter until=…`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_core::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Serializes read-modify-write of the cache file between builds.
static FILE_LOCK: Mutex<()> = Mutex::new(());

pub(crate) struct BuildCache {
    path: PathBuf,
}

/// Builds a step key from its parts.
#[derive(Default)]
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn part(mut self, label: &str, value: &str) -> KeyBuilder {
        // Length-prefixed so parts cannot run into each other.
        self.0
            .update(format!("{label}:{}:", value.len()).as_bytes());
        self.0.update(value.as_bytes());
        self
    }
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// One cache entry: the image a step made and when a build last used it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub last_used: i64,
}

/// Entries as stored; the first format held the image ID alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Entry(Entry),
    Id(String),
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl BuildCache {
    pub fn open(data_root: &Path) -> BuildCache {
        BuildCache {
            path: data_root.join("build-cache").join("cache.json"),
        }
    }

    fn load(&self) -> BTreeMap<String, Entry> {
        let stored: BTreeMap<String, Stored> = fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        stored
            .into_iter()
            .map(|(k, v)| {
                let e = match v {
                    Stored::Entry(e) => e,
                    Stored::Id(id) => Entry { id, last_used: 0 },
                };
                (k, e)
            })
            .collect()
    }

    fn save(&self, map: &BTreeMap<String, Entry>) -> std::io::Result<()> {
        let dir = self.path.parent().expect("cache file has a parent");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".cache.json.{}", std::process::id()));
        fs::write(&tmp, serde_json::to_vec(map).expect("map serializes"))?;
        fs::rename(&tmp, &self.path)
    }

    /// The image `key` made; a hit counts as a use (at most one write a
    /// minute per entry).
    pub fn get(&self, key: &str) -> Option<Digest> {
        let _g = FILE_LOCK.lock().expect("cache lock");
        let mut map = self.load();
        let e = map.get_mut(key)?;
        let id = e.id.parse().ok();
        let now = now_unix();
        if now - e.last_used > 60 {
            e.last_used = now;
            if let Err(err) = self.save(&map) {
                tracing::warn!(error = %err, "updating the build cache");
            }
        }
        id
    }

    pub fn put(&self, key: &str, id: &Digest) -> std::io::Result<()> {
        let _g = FILE_LOCK.lock().expect("cache lock");
        let mut map = self.load();
        map.insert(
            key.to_string(),
            Entry {
                id: id.to_string(),
                last_used: now_unix(),
            },
        );
        self.save(&map)
    }

    /// Removes the entries `drop` selects and returns them.
    pub fn remove_where(
        &self,
        drop: impl Fn(&Entry) -> bool,
    ) -> std::io::Result<Vec<(String, Entry)>> {
        let _g = FILE_LOCK.lock().expect("cache lock");
        let map = self.load();
        let (gone, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
            map.into_iter().partition(|(_, e)| drop(e));
        if !gone.is_empty() {
            self.save(&kept)?;
        }
        Ok(gone.into_iter().collect())
    }
}

/// Adds `path` (a file, link or directory tree) to `h` under the name
/// `name`: type, permission bits, link target, file content; recursing
/// into directories in name order.
pub(crate) fn hash_tree(h: &mut Sha256, path: &Path, name: &str) -> std::io::Result<()> {
    let m = fs::symlink_metadata(path)?;
    let ft = m.file_type();
    let mode = m.permissions().mode() & 0o7777;
    if ft.is_symlink() {
        let t = fs::read_link(path)?;
        h.update(format!("L {name} {}\0", t.display()).as_bytes());
    } else if ft.is_dir() {
        h.update(format!("D {name} {mode:o}\0").as_bytes());
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for n in names {
            let child = format!("{name}/{}", n.to_string_lossy());
            hash_tree(h, &path.join(&n), &child)?;
        }
    } else if ft.is_file() {
        h.update(format!("F {name} {mode:o} {}\0", m.size()).as_bytes());
        let mut f = fs::File::open(path)?;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else {
        h.update(format!("O {name} {mode:o} {}\0", m.rdev()).as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_mtime_and_see_content() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("d")).unwrap();
        fs::write(t.path().join("d/a"), "1").unwrap();
        let key = || {
            let mut h = Sha256::new();
            hash_tree(&mut h, &t.path().join("d"), "d").unwrap();
            hex::encode(h.finalize())
        };
        let k1 = key();
        let past = filetime::FileTime::from_unix_time(1000, 0);
        filetime::set_file_mtime(t.path().join("d/a"), past).unwrap();
        assert_eq!(key(), k1);
        fs::write(t.path().join("d/a"), "2").unwrap();
        assert_ne!(key(), k1);
    }

    #[test]
    fn cache_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let c = BuildCache::open(t.path());
        let k = KeyBuilder::default().part("a", "b").finish();
        assert_ne!(k, KeyBuilder::default().part("ab", "").finish());
        let d = Digest::sha256_of(b"x");
        c.put(&k, &d).unwrap();
        assert_eq!(BuildCache::open(t.path()).get(&k), Some(d.clone()));
        // The first format (key → ID) still reads.
        fs::write(
            t.path().join("build-cache/cache.json"),
            format!(r#"{{"old":"{d}"}}"#),
        )
        .unwrap();
        assert_eq!(c.get("old"), Some(d.clone()));
        let gone = c.remove_where(|e| e.last_used < now_unix() - 3600).unwrap();
        assert!(gone.is_empty(), "a hit refreshed last_used");
        let gone = c.remove_where(|_| true).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(c.get("old"), None);
    }
}
