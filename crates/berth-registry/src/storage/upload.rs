//! Blob upload sessions (spec "Pushing blobs").
//!
//! A session is a directory `uploads/<uuid>/` holding `repo` (the
//! repository it was opened for; any other repository's URL does not find
//! it) and `data` (the bytes received so far). Chunks are appended strictly
//! in order; the running sha256 is kept in memory so finishing a large blob
//! does not read it again. After a restart, or when a chunk failed half-way,
//! the hash is rebuilt from `data`, so sessions survive restarts.
//!
//! Finishing verifies the digest the client names, fsyncs `data` and renames
//! it to `blobs/sha256/<hex>`: the blob is visible whole or not at all.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_core::digest::Algorithm;
use berth_core::Digest;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::Storage;
use crate::error::RegistryError;
use crate::names::{RepoName, UploadId};

type Result<T> = std::result::Result<T, RegistryError>;

#[derive(Clone)]
struct HashState {
    hasher: Sha256,
    offset: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// The table of open sessions; one per server.
pub struct Uploads {
    storage: Storage,
    slots: Mutex<HashMap<UploadId, Slot>>,
}

/// A locked session: requests on one session are serialized.
pub struct Session {
    id: UploadId,
    dir: PathBuf,
    guard: tokio::sync::OwnedMutexGuard<Option<HashState>>,
}

impl Session {
    pub fn id(&self) -> &UploadId {
        &self.id
    }
    /// Bytes received so far.
    pub fn offset(&self) -> u64 {
        self.guard.as_ref().map(|s| s.offset).unwrap_or(0)
    }
}

impl Uploads {
    pub fn new(storage: Storage) -> Uploads {
        Uploads {
            storage,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn dir(&self, id: &UploadId) -> PathBuf {
        self.storage.root().join("uploads").join(id.as_str())
    }

    /// Opens a new, empty session for `repo`.
    pub async fn start(&self, repo: &RepoName) -> Result<Session> {
        let id = UploadId::random();
        let dir = self.dir(&id);
        fs::create_dir_all(&dir).map_err(RegistryError::io(&dir))?;
        fs::write(dir.join("data"), b"").map_err(RegistryError::io(&dir))?;
        fs::write(dir.join("repo"), repo.as_str()).map_err(RegistryError::io(&dir))?;
        self.lock(repo, &id).await
    }

    /// Locks the session `id` of `repo`; BLOB_UPLOAD_UNKNOWN if there is none.
    pub async fn lock(&self, repo: &RepoName, id: &UploadId) -> Result<Session> {
        let dir = self.dir(id);
        let unknown = || RegistryError::BlobUploadUnknown(id.to_string());
        match fs::read_to_string(dir.join("repo")) {
            Ok(r) if r == repo.as_str() => {}
            _ => return Err(unknown()),
        }
        let slot = self
            .slots
            .lock()
            .expect("uploads table")
            .entry(id.clone())
            .or_default()
            .clone();
        let mut guard = slot.lock_owned().await;
        if !dir.join("data").is_file() {
            // Finished or cancelled while we waited.
            return Err(unknown());
        }
        if guard.is_none() {
            *guard = Some(rehash(&dir.join("data"))?);
        }
        Ok(Session {
            id: id.clone(),
            dir,
            guard,
        })
    }

    /// Appends a chunk. `range` is the request's Content-Range (inclusive
    /// start and end) when it sent one: it must start at the current offset
    /// (else 416, spec "Pushing a blob in chunks").
    pub async fn append<S, E>(
        &self,
        s: &mut Session,
        range: Option<(u64, u64)>,
        mut body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let state = s.guard.as_mut().expect("locked session has a hash");
        if let Some((start, end)) = range {
            if start != state.offset || end < start {
                return Err(RegistryError::RangeInvalid(format!(
                    "chunk {start}-{end} does not follow offset {}",
                    state.offset
                )));
            }
        }
        let path = s.dir.join("data");
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(RegistryError::io(&path))?;
        let mut work = state.clone();
        let res: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| RegistryError::Body(e.to_string()))?;
                f.write_all(&chunk)
                    .await
                    .map_err(RegistryError::io(&path))?;
                work.hasher.update(&chunk);
                work.offset += chunk.len() as u64;
            }
            f.flush().await.map_err(RegistryError::io(&path))
        }
        .await;
        match res {
            Ok(()) => {
                *state = work;
                if let Some((start, end)) = range {
                    if state.offset != end + 1 {
                        // Bytes are in; the hash stays right. Report the mismatch.
                        return Err(RegistryError::SizeInvalid(format!(
                            "Content-Range {start}-{end} but upload is now {} bytes",
                            state.offset
                        )));
                    }
                }
                Ok(state.offset)
            }
            Err(e) => {
                // Part of the chunk may be on disk: rebuild the hash from the file next time.
                *s.guard = None;
                Err(e)
            }
        }
    }

    /// Verifies the whole upload against `want` and publishes the blob.
    /// On a digest mismatch the session is dropped (as distribution does).
    pub async fn finish(&self, s: Session, want: &Digest) -> Result<u64> {
        let state = s.guard.as_ref().expect("locked session has a hash").clone();
        if want.algorithm() != Algorithm::Sha256 {
            self.remove(s);
            return Err(RegistryError::DigestInvalid(format!(
                "unsupported digest algorithm {}",
                want.algorithm().as_str()
            )));
        }
        let got = Digest::from_sha256_hex(&hex::encode(state.hasher.finalize()))
            .expect("sha256 hex is a digest");
        if &got != want {
            self.remove(s);
            return Err(RegistryError::DigestInvalid(format!(
                "expected {want}, got {got}"
            )));
        }
        let data = s.dir.join("data");
        let storage = self.storage.clone();
        let digest = want.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<()> {
            fs::File::open(&data)
                .and_then(|f| f.sync_all())
                .map_err(RegistryError::io(&data))?;
            storage.publish_file(&data, &digest)
        })
        .await
        .map_err(|e| RegistryError::Body(e.to_string()))?;
        self.remove(s);
        res.map(|_| state.offset)
    }

    /// Cancels a session and deletes what it received.
    pub fn cancel(&self, s: Session) {
        self.remove(s)
    }

    fn remove(&self, s: Session) {
        let _ = fs::remove_dir_all(&s.dir);
        self.slots.lock().expect("uploads table").remove(&s.id);
    }
}

fn rehash(path: &std::path::Path) -> Result<HashState> {
    let mut f = fs::File::open(path).map_err(RegistryError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(RegistryError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(HashState { hasher, offset })
}
