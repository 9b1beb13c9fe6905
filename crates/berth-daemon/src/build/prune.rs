//! `builder prune` (`POST /build/prune`): forgets build-cache entries and
//! deletes the step images only the cache kept, so the next build runs
//! those steps again; with `all`, cache mounts too.
//!
//! An entry's image is deleted when it is untagged, no container uses it
//! and no other image builds on it (a tagged result keeps its ancestors,
//! as `rmi` would; their entries still go). `until` keeps what a build used
//! at or after that time. Cache mounts a running step holds (its `flock`)
//! are skipped.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_api::backend::{BuildPruneReport, BuildPruneRequest};
use berth_api::ApiError;
use berth_core::Digest;

use super::cache::BuildCache;
use super::mounts::cache_mounts_dir;
use crate::build::BuildService;

/// Bytes used by the files under `p` (hard links once per directory walk).
fn tree_size(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut n = m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                n += tree_size(&e.path());
            }
        }
    }
    n
}

pub(super) fn prune(
    service: &BuildService,
    req: &BuildPruneRequest,
) -> Result<BuildPruneReport, ApiError> {
    let cache = BuildCache::open(&service.config.data_root);
    let removed = cache
        .remove_where(|e| req.until.is_none_or(|u| e.last_used < u))
        .map_err(|e| ApiError::internal(format!("pruning the build cache: {e}")))?;
    let mut report = BuildPruneReport::default();
    let mut wanted: BTreeSet<Digest> = BTreeSet::new();
    for (key, entry) in &removed {
        report.caches_deleted.push(key.clone());
        if let Ok(d) = entry.id.parse::<Digest>() {
            wanted.insert(d);
        }
    }
    // Leaves first: deleting a step image may make its parent a leaf.
    loop {
        let (gone, bytes) = service
            .images
            .store
            .prune(
                false,
                &|info| !wanted.contains(&info.record.id),
                &|id: &Digest| {
                    service
                        .containers
                        .store()
                        .users_of(&id.to_string())
                        .into_iter()
                        .next()
                },
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
        report.space_reclaimed += bytes;
        if gone.is_empty() {
            break;
        }
    }
    if req.all {
        let dir = cache_mounts_dir(&service.config.data_root);
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let base = e.path();
            let Ok(lock) = fs::OpenOptions::new().write(true).open(base.join("lock")) else {
                continue;
            };
            if let Some(u) = req.until {
                let used = lock.metadata().map(|m| m.mtime()).unwrap_or(0);
                if used >= u {
                    continue;
                }
            }
            // SAFETY: flock on a descriptor owned by `lock`.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue; // a step is using it
            }
            let id = fs::read_to_string(base.join("id")).unwrap_or_default();
            let size = tree_size(&base);
            match fs::remove_dir_all(&base) {
                Ok(()) => {
                    report.caches_deleted.push(format!("cache-mount:{id}"));
                    report.space_reclaimed += size;
                }
                Err(err) => {
                    tracing::warn!(path = %base.display(), error = %err, "removing a cache mount")
                }
            }
        }
    }
    tracing::info!(
        entries = report.caches_deleted.len(),
        reclaimed = report.space_reclaimed,
        "build cache pruned"
    );
    Ok(report)
}
