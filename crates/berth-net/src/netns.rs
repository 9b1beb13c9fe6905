//! Persistent network namespaces: a new namespace is made on a throwaway
//! thread (`unshare(CLONE_NEWNET)` affects only the calling thread) and
//! pinned by bind-mounting the thread's nsfs file onto a file under the
//! exec-root. The OCI runtime joins it by path; it lives until unmounted,
//! so a daemon restart does not lose it. Its loopback is brought up here,
//! as Docker does.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{io_err, NetError};

/// Makes a network namespace pinned at `path` (a new file).
pub fn create(path: &Path) -> Result<(), NetError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> Result<(), NetError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Io {
            context: "unsharing the network namespace".into(),
            source: e.into(),
        })?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetError::Io {
            context: format!("pinning the network namespace at {}", target.display()),
            source: e.into(),
        })?;
        crate::link::loopback_up_here()
    })
    .join()
    .unwrap_or_else(|_| Err(NetError::Firewall("netns thread panicked".into())));
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Unpins and deletes the namespace file; the namespace (and the container
/// ends of its veths) goes away with its last process.
pub fn remove(path: &Path) -> Result<(), NetError> {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
    }
}

/// Removes every namespace file in `dir` whose name `keep` rejects
/// (namespaces of containers that no longer run after a crash).
pub fn sweep(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut removed = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !keep(&name) && remove(&e.path()).is_ok() {
                removed.push(name);
            }
        }
    }
    removed
}
