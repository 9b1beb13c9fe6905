//! `openat2(2)` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (Linux 5.6+).
//!
//! Called through `libc::syscall` rather than a crate: libc already carries
//! `SYS_openat2`, `open_how` and the `RESOLVE_*` flags, the wrapper is a
//! dozen lines, and `pathrs` would bring a C-ABI library and its own path
//! policy for the one call berth needs.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the kernel said ENOSYS; every later call goes to the walk.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// How often an EAGAIN (the kernel saw a concurrent rename or mount while
/// resolving `..` and could not prove the result safe) is retried before
/// the caller falls back to the userspace walk.
const EAGAIN_RETRIES: usize = 32;

/// Resolves `path` inside `root` to an `O_PATH` descriptor, or `None` when
/// `openat2` cannot be used here and the caller must walk instead.
pub(super) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    follow_last: bool,
) -> Option<io::Result<OwnedFd>> {
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return None;
    }
    let trimmed = path.trim_start_matches('/');
    let rel = if trimmed.is_empty() { "." } else { trimmed };
    let Ok(c) = std::ffi::CString::new(rel) else {
        return Some(Err(io::Error::from_raw_os_error(libc::EINVAL)));
    };
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if !follow_last {
        flags |= libc::O_NOFOLLOW;
    }
    // SAFETY: `open_how` is plain integers; all-zero is its "nothing set"
    // value (it is non_exhaustive in libc, so it is filled in field by field).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    for _ in 0..EAGAIN_RETRIES {
        // SAFETY: `c` is NUL-terminated and `how` a valid `open_how` whose
        // size is passed along; both outlive the call, which keeps neither.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if rc >= 0 {
            // SAFETY: openat2 returned a new descriptor that nobody owns.
            return Some(Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) }));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            Some(libc::ENOSYS) => {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                tracing::info!("openat2 unavailable; resolving container paths by walking them");
                return None;
            }
            _ => return Some(Err(err)),
        }
    }
    None
}
