//! The registry's file-system storage under `--root`.
//!
//! ```text
//! blobs/<alg>/<hex>                          every blob and manifest, once, by digest
//! ingest/                                    temporary files being written
//! gc.lock                                    writers share it, gc takes it alone
//! uploads/<uuid>/{data,repo}                 upload sessions (survive restarts)
//! repositories/<name>/_blobs/<alg>/<hex>     empty link: the repo may serve this blob
//! repositories/<name>/_manifests/<alg>/<hex> link holding the manifest's media type
//! repositories/<name>/_tags/<tag>            the digest the tag points to
//! repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>
//!                                            manifests whose `subject` is that digest
//! ```
//!
//! Blobs are shared across repositories but only served from a repository
//! holding a link, so knowing a digest is not enough to read it. Every file
//! is written to `ingest/` (or its upload dir), fsynced and renamed into
//! place, then its directory fsynced: readers see whole files or nothing.
//! Repository names and digests are validated ([`crate::names`]) before they
//! are joined to a path; components of names never start with `_`, so a
//! repository cannot collide with the `_blobs`/`_manifests` directories.

pub mod upload;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use berth_core::digest::Algorithm;
use berth_core::Digest;

use crate::error::RegistryError;
use crate::names::{valid_tag, RepoName};

pub use upload::Uploads;

type Result<T> = std::result::Result<T, RegistryError>;

/// Handle on a registry root; cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

fn alg_dir(d: &Digest) -> &'static str {
    d.algorithm().as_str()
}

fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Storage {
    /// Opens (creating) the layout under `root` and clears `ingest/`.
    pub fn open(root: &Path) -> io::Result<Storage> {
        for d in ["blobs/sha256", "ingest", "uploads", "repositories"] {
            fs::create_dir_all(root.join(d))?;
        }
        for e in fs::read_dir(root.join("ingest"))? {
            let _ = fs::remove_file(e?.path());
        }
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    /// Opens (creating) the layout without clearing `ingest/`: for tools
    /// (gc) running beside a live server whose temp files are there.
    pub fn attach(root: &Path) -> io::Result<Storage> {
        for d in ["blobs/sha256", "ingest", "uploads", "repositories"] {
            fs::create_dir_all(root.join(d))?;
        }
        Ok(Storage {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(alg_dir(d)).join(d.hex())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        self.root.join("repositories").join(repo.as_str())
    }

    pub(crate) fn link_path(&self, repo: &RepoName, kind: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join(kind)
            .join(alg_dir(d))
            .join(d.hex())
    }

    /// Writes `data` to `dest` atomically: temp file in `ingest/`, fsync,
    /// rename, fsync of the directory.
    pub(crate) fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let dir = dest.parent().expect("dest has a parent");
        fs::create_dir_all(dir).map_err(RegistryError::io(dir))?;
        let tmp = self
            .root
            .join("ingest")
            .join(format!("{:016x}", rand::random::<u64>()));
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, dest)?;
            berth_content::sync_dir(dir)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(RegistryError::io(dest))
    }

    // ---- the gc lock -------------------------------------------------------

    fn open_lock(&self) -> Result<File> {
        let p = self.root.join("gc.lock");
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(RegistryError::io(&p))
    }

    /// Shared lock (flock on `gc.lock`) held by every write that makes a blob
    /// referenced: the manifest PUT from its blob checks to its last link,
    /// publishing or mounting a blob. Dropping the file releases it.
    pub fn writer_lock(&self) -> Result<File> {
        let f = self.open_lock()?;
        f.lock_shared()
            .map_err(RegistryError::io(self.root.join("gc.lock")))?;
        Ok(f)
    }

    /// Exclusive lock taken by gc for its re-mark and sweep (see [`crate::gc`]).
    pub fn gc_lock(&self) -> Result<File> {
        let f = self.open_lock()?;
        f.lock()
            .map_err(RegistryError::io(self.root.join("gc.lock")))?;
        Ok(f)
    }

    /// Sets a blob's mtime to now: gc spares blobs younger than its grace
    /// period, so a blob a push just (re)used is safe until its manifest comes.
    pub(crate) fn touch_blob(&self, d: &Digest) -> Result<()> {
        let p = self.blob_path(d);
        match filetime::set_file_mtime(&p, filetime::FileTime::now()) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(RegistryError::io(p)(e)),
        }
    }

    // ---- blobs -------------------------------------------------------------

    /// Size of a committed blob, if present at all (in any repository).
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::io(self.blob_path(d))(e)),
        }
    }

    /// Publishes a verified, fsynced file as the blob `d` (rename under the
    /// writer lock; an existing copy wins and the file is removed), with a
    /// fresh mtime so gc's grace period covers it until it is referenced.
    pub(crate) fn publish_file(&self, file: &Path, d: &Digest) -> Result<()> {
        let dest = self.blob_path(d);
        let _lock = self.writer_lock()?;
        if dest.is_file() {
            let _ = fs::remove_file(file);
        } else {
            fs::rename(file, &dest).map_err(RegistryError::io(&dest))?;
            berth_content::sync_dir(&self.blobs_dir()).map_err(RegistryError::io(&dest))?;
        }
        self.touch_blob(d)
    }

    /// Writes a small blob (a manifest) and returns its sha256 digest.
    pub fn put_blob_bytes(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::sha256_of(data);
        let p = self.blob_path(&d);
        if p.is_file() {
            self.touch_blob(&d)?;
        } else {
            self.write_atomic(&p, data)?;
        }
        Ok(d)
    }

    /// Size of a blob that `repo` links to; `None` if unlinked or gone.
    pub fn repo_blob_size(&self, repo: &RepoName, d: &Digest) -> Result<Option<u64>> {
        if !self.link_path(repo, "_blobs", d).is_file() {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Links `d` into `repo` (under the writer lock, freshening the blob's
    /// mtime so gc's grace period covers the manifest that will follow).
    pub fn link_blob(&self, repo: &RepoName, d: &Digest) -> Result<()> {
        let _lock = self.writer_lock()?;
        self.touch_blob(d)?;
        let p = self.link_path(repo, "_blobs", d);
        if p.is_file() {
            return filetime::set_file_mtime(&p, filetime::FileTime::now())
                .map_err(RegistryError::io(&p));
        }
        self.write_atomic(&p, b"")
    }

    /// Removes `repo`'s link to a blob (the data goes with the next GC).
    pub fn unlink_blob(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        remove_if_exists(&self.link_path(repo, "_blobs", d))
    }

    // ---- manifests ---------------------------------------------------------

    /// The media type `repo` stored the manifest `d` with, if it has it.
    pub fn manifest_media_type(&self, repo: &RepoName, d: &Digest) -> Result<Option<String>> {
        let p = self.link_path(repo, "_manifests", d);
        match fs::read_to_string(&p) {
            Ok(mt) if self.blob_path(d).is_file() => Ok(Some(mt)),
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::io(p)(e)),
        }
    }

    pub fn link_manifest(&self, repo: &RepoName, d: &Digest, media_type: &str) -> Result<()> {
        self.write_atomic(
            &self.link_path(repo, "_manifests", d),
            media_type.as_bytes(),
        )
    }

    pub fn unlink_manifest(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        remove_if_exists(&self.link_path(repo, "_manifests", d))
    }

    /// Every manifest digest of `repo`.
    pub fn manifests(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        list_digests(&self.repo_dir(repo).join("_manifests"))
    }

    /// Every blob digest `repo` links to.
    pub fn linked_blobs(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        list_digests(&self.repo_dir(repo).join("_blobs"))
    }

    // ---- tags --------------------------------------------------------------

    pub fn tag(&self, repo: &RepoName, tag: &str) -> Result<Option<Digest>> {
        debug_assert!(valid_tag(tag));
        let p = self.repo_dir(repo).join("_tags").join(tag);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RegistryError::io(p)(e)),
        }
    }

    pub fn set_tag(&self, repo: &RepoName, tag: &str, d: &Digest) -> Result<()> {
        debug_assert!(valid_tag(tag));
        let p = self.repo_dir(repo).join("_tags").join(tag);
        self.write_atomic(&p, d.to_string().as_bytes())
    }

    pub fn delete_tag(&self, repo: &RepoName, tag: &str) -> Result<bool> {
        remove_if_exists(&self.repo_dir(repo).join("_tags").join(tag))
    }

    /// Tags of `repo` in ASCII order; `None` if the repository is unknown.
    pub fn tags(&self, repo: &RepoName) -> Result<Option<Vec<(String, Digest)>>> {
        if !self.repo_exists(repo) {
            return Ok(None);
        }
        let dir = self.repo_dir(repo).join("_tags");
        let mut out = Vec::new();
        for name in read_names(&dir)? {
            if valid_tag(&name) {
                if let Some(d) = self.tag(repo, &name)? {
                    out.push((name, d));
                }
            }
        }
        out.sort();
        Ok(Some(out))
    }

    // ---- referrers ---------------------------------------------------------

    fn referrers_dir(&self, repo: &RepoName, subject: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_referrers")
            .join(alg_dir(subject))
            .join(subject.hex())
    }

    pub fn add_referrer(&self, repo: &RepoName, subject: &Digest, d: &Digest) -> Result<()> {
        let p = self
            .referrers_dir(repo, subject)
            .join(format!("{}-{}", alg_dir(d), d.hex()));
        self.write_atomic(&p, b"")
    }

    pub fn remove_referrer(&self, repo: &RepoName, subject: &Digest, d: &Digest) -> Result<()> {
        let p = self
            .referrers_dir(repo, subject)
            .join(format!("{}-{}", alg_dir(d), d.hex()));
        remove_if_exists(&p).map(|_| ())
    }

    /// Digests of manifests of `repo` whose subject is `subject`.
    pub fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<Digest>> {
        let mut out: Vec<Digest> = read_names(&self.referrers_dir(repo, subject))?
            .iter()
            .filter_map(|n| n.replacen('-', ":", 1).parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    // ---- repositories ------------------------------------------------------

    pub fn repo_exists(&self, repo: &RepoName) -> bool {
        let dir = self.repo_dir(repo);
        ["_manifests", "_blobs", "_tags"]
            .iter()
            .any(|k| dir.join(k).is_dir())
    }

    /// Every repository holding at least one manifest, sorted.
    pub fn catalog(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        walk_repos(&self.root.join("repositories"), "", true, &mut out)?;
        out.sort();
        Ok(out)
    }

    /// Every repository directory with any links (also without manifests).
    pub fn repositories(&self) -> Result<Vec<RepoName>> {
        let mut out = Vec::new();
        walk_repos(&self.root.join("repositories"), "", false, &mut out)?;
        out.sort();
        Ok(out.iter().filter_map(|n| n.parse().ok()).collect())
    }
}

fn walk_repos(dir: &Path, prefix: &str, need_manifest: bool, out: &mut Vec<String>) -> Result<()> {
    for name in read_names(dir)? {
        if name.starts_with('_') {
            continue;
        }
        let sub = dir.join(&name);
        if !sub.is_dir() {
            continue;
        }
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let is_repo = if need_manifest {
            !list_digests(&sub.join("_manifests"))?.is_empty()
        } else {
            ["_manifests", "_blobs", "_tags"]
                .iter()
                .any(|k| sub.join(k).is_dir())
        };
        if is_repo {
            out.push(full.clone());
        }
        walk_repos(&sub, &full, need_manifest, out)?;
    }
    Ok(())
}

/// File names in `dir`; a missing directory is empty.
fn read_names(dir: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io(dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(RegistryError::io(dir))?;
        if let Ok(n) = e.file_name().into_string() {
            out.push(n);
        }
    }
    Ok(out)
}

/// Digests stored as `<dir>/<alg>/<hex>`.
pub(crate) fn list_digests(dir: &Path) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        for hex in read_names(&dir.join(alg.as_str()))? {
            if let Ok(d) = format!("{}:{hex}", alg.as_str()).parse() {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn remove_if_exists(p: &Path) -> Result<bool> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(RegistryError::io(p)(e)),
    }
}
