//! The content store: immutable blobs addressed by their sha256 digest.
//!
//! Lifecycle of a blob:
//! 1. [`ContentStore::writer`] opens a temporary file under `ingest/`.
//! 2. Bytes are written through it and hashed on the way.
//! 3. [`BlobWriter::commit`] checks the size and digest the caller expects,
//!    fsyncs the file, renames it to `blobs/sha256/<hex>` and fsyncs the
//!    directory. Until then the blob is invisible; a crash leaves only an
//!    `ingest/` file, which [`ContentStore::open`] removes.
//!
//! A caller publishing many blobs at once (a pull) can batch durability
//! instead: [`BlobWriter::flush_data`] each, one `syncfs(2)` of the file
//! system, [`BlobWriter::commit_presynced`] each (verify and rename only),
//! then one [`ContentStore::sync_blobs`] before anything refers to them.
//!
//! Deleting is the caller's decision (garbage collection by roots lives in
//! the image store); this crate never decides what is referenced.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use berth_core::{Digest, ErrorKind, HasKind, Sha256Writer};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("content store i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl HasKind for ContentError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. } => {
                ErrorKind::InvalidArgument
            }
            ContentError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A directory of blobs: `<root>/blobs/sha256/<hex>` and `<root>/ingest/`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store and removes interrupted ingests.
    pub fn open(root: &Path) -> Result<ContentStore, ContentError> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err(&ingest))?;
        for entry in fs::read_dir(&ingest).map_err(io_err(&ingest))? {
            let entry = entry.map_err(io_err(&ingest))?;
            let p = entry.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
            blobs,
            ingest,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a committed blob lives (it may not exist).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        // `Digest` only holds validated lowercase hex, so this cannot escape.
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let p = self.path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let p = self.path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound(digest.clone())
            } else {
                ContentError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut f = self.open_blob(digest)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(io_err(&self.path(digest)))?;
        Ok(v)
    }

    /// Writes a small blob in one call and returns its digest.
    pub fn write_all(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(io_err(&self.ingest))?;
        Ok(w.commit(None)?.0)
    }

    /// Starts a new blob.
    pub fn writer(&self) -> Result<BlobWriter, ContentError> {
        let name = format!("{:016x}", rand::random::<u64>());
        let path = self.ingest.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(BlobWriter {
            inner: Some(Sha256Writer::new(BufWriter::with_capacity(1 << 20, file))),
            tmp: path,
            blobs: self.blobs.clone(),
        })
    }

    /// Moves a committed blob of another store on the same file system into
    /// this one (used to adopt blobs staged during `load`).
    pub fn adopt(&self, other: &ContentStore, digest: &Digest) -> Result<(), ContentError> {
        let from = other.path(digest);
        let to = self.path(digest);
        if to.exists() {
            return Ok(());
        }
        fs::rename(&from, &to).map_err(io_err(&from))?;
        sync_dir(&self.blobs).map_err(io_err(&self.blobs))
    }

    /// Removes a blob; a missing blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<(), ContentError> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ContentError::Io { path: p, source: e }),
        }
    }

    /// Every committed blob. Files whose names are not valid digests are
    /// reported as well-formed digests are expected; anything else is skipped.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err(&self.blobs))? {
            let entry = entry.map_err(io_err(&self.blobs))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(d) = Digest::from_sha256_hex(name) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// fsyncs the blob directory: makes the renames of
    /// [`BlobWriter::commit_presynced`] durable.
    pub fn sync_blobs(&self) -> Result<(), ContentError> {
        sync_dir(&self.blobs).map_err(io_err(&self.blobs))
    }

    /// Total bytes of all blobs.
    pub fn usage(&self) -> u64 {
        self.list()
            .unwrap_or_default()
            .iter()
            .filter_map(|d| self.size(d).ok())
            .sum()
    }
}

/// A blob being written. Dropping it without `commit` discards it.
pub struct BlobWriter {
    inner: Option<Sha256Writer<BufWriter<File>>>,
    tmp: PathBuf,
    blobs: PathBuf,
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map(|w| w.written()).unwrap_or(0)
    }

    /// Verifies (when `expected` is given), fsyncs and publishes the blob.
    /// Returns its digest and size.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64), ContentError> {
        self.publish(expected, true)
    }

    /// Hands every byte written so far to the kernel (no fsync), so that a
    /// later `syncfs(2)` of the file system makes them durable.
    pub fn flush_data(&mut self) -> Result<(), ContentError> {
        let tmp = self.tmp.clone();
        self.flush().map_err(io_err(&tmp))
    }

    /// [`commit`](Self::commit) without any fsync: for a batch whose data
    /// the caller made durable ([`flush_data`](Self::flush_data), then
    /// `syncfs`) before this call, and whose renames it makes durable with
    /// [`ContentStore::sync_blobs`] before anything refers to the blobs.
    pub fn commit_presynced(
        self,
        expected: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64), ContentError> {
        self.publish(expected, false)
    }

    fn publish(
        mut self,
        expected: Option<(&Digest, u64)>,
        sync: bool,
    ) -> Result<(Digest, u64), ContentError> {
        let w = self.inner.take().expect("commit called once");
        let (buf, digest, size) = w.finish();
        let file = buf.into_inner().map_err(|e| ContentError::Io {
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        if let Some((want, want_size)) = expected {
            if size != want_size {
                let _ = fs::remove_file(&self.tmp);
                return Err(ContentError::SizeMismatch {
                    digest: want.clone(),
                    expected: want_size,
                    actual: size,
                });
            }
            if &digest != want {
                let _ = fs::remove_file(&self.tmp);
                return Err(ContentError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        if sync {
            file.sync_all().map_err(io_err(&self.tmp))?;
        }
        drop(file);
        let dest = self.blobs.join(digest.hex());
        if dest.exists() {
            // Same digest, same bytes: keep the committed copy.
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &dest).map_err(io_err(&dest))?;
            if sync {
                sync_dir(&self.blobs).map_err(io_err(&self.blobs))?;
            }
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().expect("writer open").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.as_mut().expect("writer open").write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("writer open").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// fsyncs a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_publishes_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.write_all(b"hello").unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(store.size(&d).unwrap(), 5);

        let mut w = store.writer().unwrap();
        w.write_all(b"other").unwrap();
        let err = w.commit(Some((&d, 5))).unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        let mut w = store.writer().unwrap();
        w.write_all(b"hello!").unwrap();
        assert!(matches!(
            w.commit(Some((&d, 5))),
            Err(ContentError::SizeMismatch { .. })
        ));
        // Nothing half-written is left in ingest/ or blobs/.
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn dropped_writer_leaves_nothing_and_open_sweeps_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        fs::write(dir.path().join("ingest/leftover"), b"x").unwrap();
        ContentStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn missing_blob_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"nope");
        assert_eq!(store.open_blob(&d).unwrap_err().kind(), ErrorKind::NotFound);
        store.delete(&d).unwrap();
    }
}
