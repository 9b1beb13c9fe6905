//! Running path-based code (the tar reader and the layer unpacker) so that
//! every path it uses is resolved by the kernel inside a container's root.
//!
//! A dedicated thread leaves the process's shared file system context
//! (`unshare(CLONE_FS)`: root, working directory and umask become its
//! own), `fchdir`s to the root descriptor and `chroot(".")`s there, then
//! `fchdir`s to the resolved directory. From then on `..` stops at the
//! container root and an absolute symlink — even one swapped in by the
//! container while we work — points into the container, never to the
//! host's `/` (CVE-2018-15664; moby's fix likewise unpacks in a chroot).
//! The thread is never reused: it ends with the closure, and with it its
//! private root. Needs `CAP_SYS_CHROOT`, which the daemon has.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::thread::{Scope, ScopedJoinHandle};

use super::{Root, RootPathError};

/// Runs `f` confined to `root` with `cwd` (a directory inside it) as the
/// working directory, and returns its result.
pub fn confined<T: Send>(
    root: &Root,
    cwd: BorrowedFd<'_>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, RootPathError> {
    std::thread::scope(|s| join(spawn_confined(s, root, cwd, f)))
}

/// Starts `f` confined as [`confined`] does, on a thread of scope `s`, for
/// callers that must do something else (drain a pipe) meanwhile.
pub fn spawn_confined<'scope, 'env: 'scope, T: Send + 'scope>(
    s: &'scope Scope<'scope, 'env>,
    root: &'env Root,
    cwd: BorrowedFd<'env>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, Result<T, RootPathError>> {
    std::thread::Builder::new()
        .name("berth-confined".into())
        .spawn_scoped(s, move || {
            enter(root.fd(), cwd).map_err(|source| RootPathError::Io {
                op: "confining to",
                path: "/".into(),
                root: root.host_path().to_path_buf(),
                source,
            })?;
            Ok(f())
        })
        .expect("spawning a thread")
}

/// The confined thread's result; a panic in it is re-raised here.
pub fn join<T>(h: ScopedJoinHandle<'_, Result<T, RootPathError>>) -> Result<T, RootPathError> {
    match h.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Makes the calling thread's root `root` and its working directory `cwd`.
fn enter(root: BorrowedFd<'_>, cwd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: unshare(CLONE_FS) only detaches this thread's fs context
    // (root, cwd, umask) from the rest of the process; no memory involved.
    check(unsafe { libc::unshare(libc::CLONE_FS) })?;
    // SAFETY: `root` is a live directory descriptor.
    check(unsafe { libc::fchdir(root.as_raw_fd()) })?;
    // SAFETY: a NUL-terminated literal; affects only this thread now.
    check(unsafe { libc::chroot(c".".as_ptr()) })?;
    // SAFETY: `cwd` is a live directory descriptor.
    check(unsafe { libc::fchdir(cwd.as_raw_fd()) })?;
    Ok(())
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
