//! The fallback resolver: a path walked one component at a time from a
//! descriptor of the root, for kernels without `openat2(2)`.
//!
//! Every component is opened with `openat(dir, name, O_PATH|O_NOFOLLOW)`
//! relative to the descriptor of the directory reached so far, so a
//! component swapped for a symlink is seen as a symlink, never followed by
//! the kernel. A symlink's target is read from its own descriptor
//! (`readlinkat(fd, "")`) and spliced into the remaining components: an
//! absolute target restarts at the root, `..` pops back to the directory
//! the walk came from and stops at the root (CVE-2018-15664: the root is
//! the floor, as `chroot` would make it). `/proc` magic links are ordinary
//! symlinks to this walk: their text is resolved inside the root, so they
//! cannot jump out either. At most [`MAX_SYMLINKS`] links are followed.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::fstat;

/// Linux's `MAXSYMLINKS`: more links than this in one lookup is ELOOP.
pub const MAX_SYMLINKS: usize = 40;

/// Resolves `path` inside `root` to an `O_PATH` descriptor. With
/// `follow_last` false a final symlink is returned itself.
pub fn open_in_root(root: BorrowedFd<'_>, path: &str, follow_last: bool) -> io::Result<OwnedFd> {
    walk(root, path.as_bytes(), follow_last, false).map(|(fd, _)| fd)
}

/// Like [`open_in_root`], but a missing component is not an error: returns
/// the deepest existing directory and the components that do not exist
/// (with any `..` among them applied lexically).
pub fn resolve_partial(
    root: BorrowedFd<'_>,
    path: &str,
    follow_last: bool,
) -> io::Result<(OwnedFd, Vec<Vec<u8>>)> {
    walk(root, path.as_bytes(), follow_last, true)
}

fn walk(
    root: BorrowedFd<'_>,
    path: &[u8],
    follow_last: bool,
    allow_missing: bool,
) -> io::Result<(OwnedFd, Vec<Vec<u8>>)> {
    let mut pending: Vec<Vec<u8>> = components(path).rev().collect();
    // Descriptors of the directories from the root down to where the walk
    // is; empty means "at the root".
    let mut stack: Vec<OwnedFd> = Vec::new();
    // Components past the first missing one.
    let mut missing: Vec<Vec<u8>> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == b"." {
            continue;
        }
        if part == b".." {
            if missing.pop().is_none() {
                stack.pop();
            }
            continue;
        }
        if !missing.is_empty() {
            missing.push(part);
            continue;
        }
        let dir = stack.last().map_or(root, AsFd::as_fd);
        let fd = match openat_nofollow(dir, &part) {
            Ok(fd) => fd,
            Err(e)
                if allow_missing
                    && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) =>
            {
                missing.push(part);
                continue;
            }
            Err(e) => return Err(e),
        };
        let st = fstat(fd.as_fd())?;
        let kind = st.st_mode & libc::S_IFMT;
        let is_last = pending.is_empty();
        if kind == libc::S_IFLNK && (!is_last || follow_last) {
            hops += 1;
            if hops > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = readlink_fd(fd.as_fd())?;
            if target.first() == Some(&b'/') {
                stack.clear();
            }
            pending.extend(components(&target).rev());
            continue;
        }
        if !is_last && kind != libc::S_IFDIR {
            if allow_missing {
                missing.push(part);
                continue;
            }
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    let fd = match stack.pop() {
        Some(fd) => fd,
        None => root.try_clone_to_owned()?,
    };
    Ok((fd, missing))
}

/// The non-empty components of `path` (`a//b/` → `a`, `b`).
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
}

fn openat_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `dir` is a live descriptor and `c` NUL-terminated; openat(2)
    // keeps neither.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat(2) and is owned by nobody.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The target of the symlink `fd` (an `O_PATH|O_NOFOLLOW` descriptor).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    const EMPTY: &CStr = c"";
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `fd` is live, `EMPTY` NUL-terminated, and `buf` valid for
        // `buf.len()` bytes of writes.
        let n = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // Possibly truncated: try again with more room.
        buf.resize(buf.len() * 4, 0);
    }
}
