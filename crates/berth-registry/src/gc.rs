//! Garbage collection of blobs (`berth registry gc --root`).
//!
//! Mark: every manifest linked by every repository is a root; it marks
//! itself, its config and layers, and (for an index or list) its child
//! manifests. Sweep: every blob under `blobs/` not marked is deleted, then
//! repository links to deleted blobs are removed.
//!
//! **Window:** run it while nothing writes to the registry (server stopped
//! or `--read-only`). A push uploads blobs before the manifest that refers
//! to them: a blob uploaded but not yet referenced when the mark runs is
//! swept, and the later manifest PUT fails with MANIFEST_BLOB_UNKNOWN (or,
//! if the sweep lands between the check and the link, names a deleted
//! blob). Upload sessions (`uploads/`) are left alone.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use berth_core::Digest;

use crate::error::RegistryError;
use crate::manifest::Manifest;
use crate::storage::{list_digests, Storage};

/// What a collection did.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs kept because some manifest references them.
    pub marked: usize,
    /// Blobs deleted.
    pub deleted: Vec<Digest>,
    pub bytes_freed: u64,
    /// Repository links removed because their blob was deleted.
    pub links_removed: usize,
}

/// Marks and sweeps the registry stored under `root` (see the module docs
/// for when it is safe).
pub fn gc(root: &Path) -> Result<GcReport, RegistryError> {
    let storage = Storage::open(root).map_err(RegistryError::io(root))?;
    let repos = storage.repositories()?;
    let mut marked: HashSet<Digest> = HashSet::new();
    for repo in &repos {
        for d in storage.manifests(repo)? {
            marked.insert(d.clone());
            let path = storage.blob_path(&d);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(RegistryError::io(path)(e)),
            };
            // A manifest that no longer parses keeps only itself.
            if let Ok(m) = Manifest::parse(&bytes, "") {
                marked.extend(m.blobs.into_iter().map(|b| b.digest));
                marked.extend(m.manifests.into_iter().map(|c| c.digest));
            }
        }
    }
    let mut report = GcReport::default();
    for d in list_digests(&root.join("blobs"))? {
        if marked.contains(&d) {
            report.marked += 1;
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
