//! Garbage collection of blobs (`berth registry gc --root [--grace D]`).
//!
//! Mark: every manifest linked by every repository is a root; it marks
//! itself, its config and layers, and (for an index or list) its child
//! manifests. Sweep: every blob under `blobs/` not marked is deleted, then
//! repository links to deleted blobs are removed.
//!
//! **Safe while the registry serves** (in the same or another process):
//!
//! * *Grace period.* A blob whose file, or any repository link to it, was
//!   modified less than `grace` ago (default [`DEFAULT_GRACE`], one hour) is
//!   never deleted. A push uploads blobs before the manifest that refers to
//!   them; publishing, re-uploading or mounting a blob and re-putting a
//!   manifest all set its mtime to now, so a push in progress has `grace`
//!   to put its manifest. `grace = 0` is the old stop-the-world behaviour.
//! * *Lock.* Writers that make a blob referenced (manifest PUT from its blob
//!   checks to its last link, blob publish, mount) hold `gc.lock` shared.
//!   After the unlocked mark, gc takes it exclusively, re-marks from every
//!   manifest linked since, re-checks each candidate's mtime, and only then
//!   deletes: a manifest committed during the collection is seen, and a
//!   manifest PUT after it finds the blob gone (MANIFEST_BLOB_UNKNOWN)
//!   instead of naming a deleted one.
//! * Upload sessions (`uploads/`) are never touched: their bytes are not
//!   blobs until the session finishes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_core::Digest;

use crate::error::RegistryError;
use crate::manifest::Manifest;
use crate::names::RepoName;
use crate::storage::{list_digests, Storage};

/// Default grace period: blobs younger than this are kept.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// How to collect.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Keep blobs (and links) modified more recently than this.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
        }
    }
}

/// What a collection did.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs kept because some manifest references them.
    pub marked: usize,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub young: usize,
    /// Blobs deleted.
    pub deleted: Vec<Digest>,
    pub bytes_freed: u64,
    /// Repository links removed because their blob was deleted.
    pub links_removed: usize,
}

/// Parses a `--grace` value: `0`, or a number with a unit `s`, `m`, `h`
/// or `d` (`90s`, `30m`, `1h`, `2d`; a bare number is seconds).
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (want e.g. 0, 90s, 30m, 1h, 2d)"))?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid duration unit in {s:?} (s, m, h or d)")),
    };
    n.checked_mul(mul)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

/// Collects with the default options (one hour of grace).
pub fn gc(root: &Path) -> Result<GcReport, RegistryError> {
    gc_with(root, &GcOptions::default())
}

/// Marks `d` and what the manifest it names refers to, once per manifest.
fn mark_manifest(
    storage: &Storage,
    d: &Digest,
    seen: &mut HashSet<Digest>,
    marked: &mut HashSet<Digest>,
) -> Result<(), RegistryError> {
    if !seen.insert(d.clone()) {
        return Ok(());
    }
    marked.insert(d.clone());
    let path = storage.blob_path(d);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RegistryError::io(path)(e)),
    };
    // A manifest that no longer parses keeps only itself.
    if let Ok(m) = Manifest::parse(&bytes, "") {
        marked.extend(m.blobs.into_iter().map(|b| b.digest));
        marked.extend(m.manifests.into_iter().map(|c| c.digest));
    }
    Ok(())
}

fn mark_all(
    storage: &Storage,
    seen: &mut HashSet<Digest>,
    marked: &mut HashSet<Digest>,
) -> Result<Vec<RepoName>, RegistryError> {
    let repos = storage.repositories()?;
    for repo in &repos {
        for d in storage.manifests(repo)? {
            mark_manifest(storage, &d, seen, marked)?;
        }
    }
    Ok(repos)
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Newest modification time of `d`'s blob file or any link to it.
fn newest(
    storage: &Storage,
    d: &Digest,
    link_times: &HashMap<Digest, SystemTime>,
) -> Option<SystemTime> {
    let blob = mtime(&storage.blob_path(d));
    match (blob, link_times.get(d).copied()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn link_times(
    storage: &Storage,
    repos: &[RepoName],
) -> Result<HashMap<Digest, SystemTime>, RegistryError> {
    let mut out: HashMap<Digest, SystemTime> = HashMap::new();
    for repo in repos {
        for d in storage.linked_blobs(repo)? {
            if let Some(t) = mtime(&storage.link_path(repo, "_blobs", &d)) {
                let e = out.entry(d).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    Ok(out)
}

/// Marks and sweeps the registry stored under `root`; safe while it serves
/// (see the module docs).
pub fn gc_with(root: &Path, opts: &GcOptions) -> Result<GcReport, RegistryError> {
    let storage = Storage::attach(root).map_err(RegistryError::io(root))?;
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut marked: HashSet<Digest> = HashSet::new();
    // Unlocked mark: the expensive part, concurrent with pushes.
    mark_all(&storage, &mut seen, &mut marked)?;

    // Short exclusive section: writers that link manifests or publish blobs
    // wait; everything they committed before is re-marked here.
    let _lock = storage.gc_lock()?;
    let repos = mark_all(&storage, &mut seen, &mut marked)?;
    let links = link_times(&storage, &repos)?;
    let cutoff = SystemTime::now()
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = GcReport::default();
    for d in list_digests(&root.join("blobs"))? {
        if marked.contains(&d) {
            report.marked += 1;
            continue;
        }
        if !opts.grace.is_zero() && newest(&storage, &d, &links).is_none_or(|t| t > cutoff) {
            report.young += 1;
            continue;
        }
        let path = storage.blob_path(&d);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RegistryError::io(path)(e)),
        }
        tracing::info!(digest = %d, size, "gc: deleted blob");
        report.bytes_freed += size;
        report.deleted.push(d);
    }
    let deleted: HashSet<&Digest> = report.deleted.iter().collect();
    for repo in &repos {
        for d in storage.linked_blobs(repo)? {
            if deleted.contains(&d) && storage.unlink_blob(repo, &d)? {
                report.links_removed += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_parses() {
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_grace("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_grace("1h"), Ok(DEFAULT_GRACE));
        assert_eq!(parse_grace("2d"), Ok(Duration::from_secs(172800)));
        assert!(parse_grace("1w").is_err() && parse_grace("h").is_err());
    }
}
