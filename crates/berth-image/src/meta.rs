//! Image metadata: which images exist and which tags point at them.
//!
//! Stored in a redb database (`meta.db`) so every change is one ACID
//! transaction: after `kill -9` at any instant the database holds either the
//! state before or after a change, never half of it. An in-memory copy serves
//! reads; writes go to the database first and to the copy after the commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

use berth_core::Digest;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ImageError;

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// Push cache: layer diff ID → `digest size` of its gzip-compressed blob,
/// which is kept in the content store while an image references the layer
/// (see `push_cache.rs`).
const COMPRESSED: TableDefinition<&str, &str> = TableDefinition::new("compressed");
/// Compressed blob digest → the repositories (`domain/path`, one per line,
/// most recent last) a push put it in, for cross-repository mounts.
const BLOB_REPOS: TableDefinition<&str, &str> = TableDefinition::new("blob_repos");
/// How many repositories are remembered per blob.
const BLOB_REPOS_KEPT: usize = 8;

/// What berth records about an image besides its config blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The config digest, which is the image ID.
    pub id: Digest,
    pub layers: Vec<LayerRecord>,
    /// When the image was added to this store (unix nanoseconds).
    pub added_at: i64,
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// Parent image for images built or committed here.
    #[serde(default)]
    pub parent: Option<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// Bytes of file content the layer adds (what `docker images` shows as size).
    pub size: u64,
}

impl ImageRecord {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

#[derive(Default, Clone)]
pub struct State {
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Full reference string (`docker.io/library/busybox:latest`) → image ID.
    pub tags: BTreeMap<String, Digest>,
}

impl State {
    /// The tags (`name:tag`) naming `id`; digest references are not tags.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(k, v)| *v == id && !k.contains('@'))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The repository digests (`name@sha256:…`) recorded for `id` by a
    /// pull or push: kept in the tag table so they resolve like tags.
    pub fn digests_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(k, v)| *v == id && k.contains('@'))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// A batch of changes applied in one transaction.
#[derive(Default)]
pub struct Change {
    pub put_images: Vec<ImageRecord>,
    pub delete_images: Vec<Digest>,
    pub set_tags: Vec<(String, Digest)>,
    pub remove_tags: Vec<String>,
}

pub struct MetaStore {
    db: Database,
    state: RwLock<State>,
}

fn db_err(e: impl Into<redb::Error>) -> ImageError {
    ImageError::Metadata(e.into().to_string())
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<MetaStore, ImageError> {
        let db = Database::create(path).map_err(db_err)?;
        let mut state = State::default();
        {
            let tx = db.begin_write().map_err(db_err)?;
            {
                let images = tx.open_table(IMAGES).map_err(db_err)?;
                for row in images.iter().map_err(db_err)? {
                    let (_, v) = row.map_err(db_err)?;
                    let rec: ImageRecord = serde_json::from_slice(v.value())
                        .map_err(|e| ImageError::Metadata(format!("corrupt image record: {e}")))?;
                    state.images.insert(rec.id.clone(), rec);
                }
                let tags = tx.open_table(TAGS).map_err(db_err)?;
                for row in tags.iter().map_err(db_err)? {
                    let (k, v) = row.map_err(db_err)?;
                    let id: Digest = v.value().parse().map_err(|e| {
                        ImageError::Metadata(format!("corrupt tag {}: {e}", k.value()))
                    })?;
                    state.tags.insert(k.value().to_string(), id);
                }
            }
            tx.commit().map_err(db_err)?;
        }
        Ok(MetaStore {
            db,
            state: RwLock::new(state),
        })
    }

    /// A consistent copy of the current state.
    pub fn snapshot(&self) -> State {
        self.state.read().expect("meta lock").clone()
    }

    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().expect("meta lock"))
    }

    /// Applies a change durably, then to the in-memory state.
    pub fn apply(&self, change: Change) -> Result<(), ImageError> {
        let mut state = self.state.write().expect("meta lock");
        // A deleted image takes its repository digests with it.
        let mut change = change;
        for id in &change.delete_images {
            change.remove_tags.extend(state.digests_of(id));
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut images = tx.open_table(IMAGES).map_err(db_err)?;
            let mut tags = tx.open_table(TAGS).map_err(db_err)?;
            for rec in &change.put_images {
                let bytes = serde_json::to_vec(rec).expect("record serializes");
                images
                    .insert(rec.id.to_string().as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            for id in &change.delete_images {
                images.remove(id.to_string().as_str()).map_err(db_err)?;
            }
            for name in &change.remove_tags {
                tags.remove(name.as_str()).map_err(db_err)?;
            }
            for (name, id) in &change.set_tags {
                tags.insert(name.as_str(), id.to_string().as_str())
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        for rec in change.put_images {
            state.images.insert(rec.id.clone(), rec);
        }
        for id in change.delete_images {
            state.images.remove(&id);
        }
        for name in change.remove_tags {
            state.tags.remove(&name);
        }
        for (name, id) in change.set_tags {
            state.tags.insert(name, id);
        }
        Ok(())
    }

    /// The compressed blob (digest, size) recorded under `key` by a push:
    /// the diff ID for gzip, `"<diff ID> <codec>"` for another codec.
    pub fn compressed_of(&self, key: &str) -> Option<(Digest, u64)> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(COMPRESSED).ok()?;
        let v = table.get(key).ok()??;
        let (d, n) = v.value().split_once(' ')?;
        Some((d.parse().ok()?, n.parse().ok()?))
    }

    pub fn set_compressed(&self, key: &str, blob: &Digest, size: u64) -> Result<(), ImageError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(COMPRESSED).map_err(db_err)?;
            table
                .insert(key, format!("{blob} {size}").as_str())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Every push-cache entry: its key and, if it parses, (diff ID,
    /// compressed blob digest).
    #[allow(clippy::type_complexity)]
    pub fn compressed_all(&self) -> Result<Vec<(String, Option<(Digest, Digest)>)>, ImageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = match tx.open_table(COMPRESSED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let key = k.value().to_string();
            // An entry that does not parse names nothing: its layer is
            // unknown, so the caller's clean-up forgets it.
            let diff = key.split(' ').next().and_then(|d| d.parse().ok());
            let blob = v.value().split_once(' ').and_then(|(d, _)| d.parse().ok());
            out.push((key, diff.zip(blob)));
        }
        Ok(out)
    }

    /// Forgets these push-cache entries (by key), in one transaction.
    pub fn remove_compressed(&self, keys: &[String]) -> Result<(), ImageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(COMPRESSED).map_err(db_err)?;
            let mut repos = tx.open_table(BLOB_REPOS).map_err(db_err)?;
            for k in keys {
                let blob = table
                    .remove(k.as_str())
                    .map_err(db_err)?
                    .and_then(|v| v.value().split_once(' ').map(|(b, _)| b.to_string()));
                if let Some(b) = blob {
                    repos.remove(b.as_str()).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    /// The repositories a push put `blob` in, most recent last.
    pub fn blob_repos(&self, blob: &Digest) -> Vec<String> {
        let read = || -> Option<Vec<String>> {
            let tx = self.db.begin_read().ok()?;
            let table = tx.open_table(BLOB_REPOS).ok()?;
            let v = table.get(blob.to_string().as_str()).ok()??;
            Some(v.value().lines().map(str::to_string).collect())
        };
        read().unwrap_or_default()
    }

    /// Forgets the repositories of every blob `keep` says no to. Looks
    /// first with a read transaction, so a collection with nothing to
    /// forget (the usual case) costs no write commit.
    pub fn retain_blob_repos(&self, keep: impl Fn(&Digest) -> bool) -> Result<(), ImageError> {
        let gone: Vec<String> = {
            let tx = self.db.begin_read().map_err(db_err)?;
            let table = match tx.open_table(BLOB_REPOS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(db_err(e)),
            };
            let mut gone = Vec::new();
            for row in table.iter().map_err(db_err)? {
                let (k, _) = row.map_err(db_err)?;
                let key = k.value().to_string();
                if !key.parse::<Digest>().is_ok_and(|d| keep(&d)) {
                    gone.push(key);
                }
            }
            gone
        };
        if gone.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(BLOB_REPOS).map_err(db_err)?;
            for k in gone {
                table.remove(k.as_str()).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Remembers that `repo` (`domain/path`) has `blob`.
    pub fn add_blob_repo(&self, blob: &Digest, repo: &str) -> Result<(), ImageError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = tx.open_table(BLOB_REPOS).map_err(db_err)?;
            let key = blob.to_string();
            let mut repos: Vec<String> = table
                .get(key.as_str())
                .map_err(db_err)?
                .map(|v| v.value().lines().map(str::to_string).collect())
                .unwrap_or_default();
            repos.retain(|r| r != repo);
            repos.push(repo.to_string());
            let skip = repos.len().saturating_sub(BLOB_REPOS_KEPT);
            let joined = repos[skip..].join("\n");
            table
                .insert(key.as_str(), joined.as_str())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Reads back from disk, bypassing the in-memory copy (used by tests).
    pub fn count_on_disk(&self) -> Result<(usize, usize), ImageError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let images = tx.open_table(IMAGES).map_err(db_err)?;
        let tags = tx.open_table(TAGS).map_err(db_err)?;
        Ok((
            images.iter().map_err(db_err)?.count(),
            tags.iter().map_err(db_err)?.count(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = Digest::sha256_of(b"config");
        let rec = ImageRecord {
            id: id.clone(),
            layers: vec![LayerRecord {
                diff_id: Digest::sha256_of(b"l"),
                size: 10,
            }],
            added_at: 1,
            last_tag_time: None,
            parent: None,
        };
        {
            let m = MetaStore::open(&dir.path().join("meta.db")).unwrap();
            m.apply(Change {
                put_images: vec![rec.clone()],
                set_tags: vec![("docker.io/library/a:latest".into(), id.clone())],
                ..Default::default()
            })
            .unwrap();
        }
        let m = MetaStore::open(&dir.path().join("meta.db")).unwrap();
        let s = m.snapshot();
        assert_eq!(s.images.get(&id), Some(&rec));
        assert_eq!(
            s.tags_of(&id),
            vec!["docker.io/library/a:latest".to_string()]
        );
        m.apply(Change {
            delete_images: vec![id.clone()],
            remove_tags: vec!["docker.io/library/a:latest".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(m.count_on_disk().unwrap(), (0, 0));
    }
}
