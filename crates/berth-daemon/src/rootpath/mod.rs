//! Paths inside a container's (or an image's) root file system, resolved
//! the way the container itself would see them — symlinks and `..` never
//! leave the root — and then used only through file descriptors.
//!
//! Why (CVE-2018-15664, the `docker cp` symlink-exchange race): resolving a
//! path in userspace with `lstat` and then opening the resulting *string*
//! lets a process inside a running container swap a checked directory for a
//! symlink to `/` between the check and the use; the daemon, root on the
//! host, then reads or writes the host's files. The cure is to resolve in
//! the kernel relative to a file descriptor of the root and to keep working
//! from the descriptor that resolution returned:
//!
//! 1. [`Root::open`] opens the root directory once (`O_PATH`); the host path
//!    leading to it is the daemon's own and trusted.
//! 2. [`Root::open_path`] resolves a user- or image-controlled path with
//!    `openat2(2)` and `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: absolute
//!    symlinks and `..` are taken relative to the root, `/proc/*/fd`-style
//!    magic links are refused. Where the kernel has no `openat2` (ENOSYS,
//!    Linux < 5.6) the same contract is kept by [`walk`], a component by
//!    component walk with `openat(O_PATH|O_NOFOLLOW)` that reads every
//!    symlink itself and never climbs above the root.
//! 3. Callers then `fstat`, read (a reopen through the descriptor's own
//!    `/proc/self/fd` entry reaches exactly that inode), or run a whole tar
//!    read/unpack in [`confine`]: a thread whose file system root *is* the
//!    container root and whose working directory is the resolved directory,
//!    so every path the tar code uses is floored at the root by the kernel.
//!
//! [`Root::resolve_path`] returns a host path string instead of a
//! descriptor; it is for trees no process can change concurrently (the
//! builder's snapshot views and build context) and for callers that must
//! show or join a path.

pub mod archive;
pub mod confine;
mod openat2;
pub mod walk;

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_core::{ErrorKind, HasKind};

/// The most bytes [`Root::read_small_file`] returns: it reads files such as
/// `/etc/passwd`, which a container could otherwise make endless.
pub const SMALL_FILE_LIMIT: u64 = 4 << 20;

/// Why a path inside a root could not be used. `path` is always the path as
/// the caller gave it (inside the root), `root` the host directory.
#[derive(Debug, thiserror::Error)]
pub enum RootPathError {
    #[error("no such file or directory: {path} (inside {root})")]
    NotFound { path: String, root: PathBuf },
    #[error(
        "too many levels of symbolic links, or a /proc magic link, resolving {path} (inside {root})"
    )]
    Loop { path: String, root: PathBuf },
    #[error("not a directory: {path} (inside {root})")]
    NotADirectory { path: String, root: PathBuf },
    #[error("not a regular file: {path} (inside {root})")]
    NotAFile { path: String, root: PathBuf },
    #[error("{op} {path} (inside {root}): {source}")]
    Io {
        op: &'static str,
        path: String,
        root: PathBuf,
        source: io::Error,
    },
}

impl HasKind for RootPathError {
    fn kind(&self) -> ErrorKind {
        match self {
            RootPathError::NotFound { .. } => ErrorKind::NotFound,
            RootPathError::Loop { .. }
            | RootPathError::NotADirectory { .. }
            | RootPathError::NotAFile { .. } => ErrorKind::InvalidArgument,
            RootPathError::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// An open root directory that paths are resolved in.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` (a host path the daemon controls) as a root.
    pub fn open(path: &Path) -> Result<Root, RootPathError> {
        let c = cstring(path.as_os_str()).map_err(|source| RootPathError::Io {
            op: "opening root",
            path: "/".into(),
            root: path.to_path_buf(),
            source,
        })?;
        let fd =
            sys_open(&c, libc::O_PATH | libc::O_DIRECTORY).map_err(|source| RootPathError::Io {
                op: "opening root",
                path: "/".into(),
                root: path.to_path_buf(),
                source,
            })?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The host path this root was opened at (for messages).
    pub fn host_path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Resolves `path` inside the root to an `O_PATH` descriptor. With
    /// `follow_last` false a final symlink is returned itself (like lstat).
    pub fn open_path(&self, path: &str, follow_last: bool) -> Result<OwnedFd, RootPathError> {
        let result = match openat2::open_in_root(self.fd(), path, follow_last) {
            Some(r) => r,
            None => walk::open_in_root(self.fd(), path, follow_last),
        };
        result.map_err(|e| self.error("resolving", path, e))
    }

    /// Resolves `path` (following a final symlink) and reads it, which must
    /// be a regular file, up to [`SMALL_FILE_LIMIT`] bytes.
    pub fn read_small_file(&self, path: &str) -> Result<Vec<u8>, RootPathError> {
        let fd = self.open_path(path, true)?;
        let st = fstat(fd.as_fd()).map_err(|e| self.error("inspecting", path, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(RootPathError::NotAFile {
                path: path.into(),
                root: self.path.clone(),
            });
        }
        let file =
            reopen(fd.as_fd(), libc::O_RDONLY).map_err(|e| self.error("opening", path, e))?;
        let mut out = Vec::new();
        File::from(file)
            .take(SMALL_FILE_LIMIT)
            .read_to_end(&mut out)
            .map_err(|e| self.error("reading", path, e))?;
        Ok(out)
    }

    /// The host path of `path` resolved inside the root: the longest prefix
    /// that exists is resolved through descriptors, a missing rest is
    /// appended as written (`..` in it taken lexically). Only for trees no
    /// process changes meanwhile (see the module docs).
    pub fn resolve_path(&self, path: &str, follow_last: bool) -> Result<PathBuf, RootPathError> {
        let (fd, rest) = walk::resolve_partial(self.fd(), path, follow_last)
            .map_err(|e| self.error("resolving", path, e))?;
        let mut out = self.relative(fd.as_fd(), path)?;
        out.extend(rest.iter().map(|p| Path::new(OsStr::from_bytes(p))));
        Ok(self.path.join(out))
    }

    /// Where `fd` is, relative to the root (empty for the root itself).
    pub fn relative(&self, fd: BorrowedFd<'_>, path: &str) -> Result<PathBuf, RootPathError> {
        let root = fd_path(self.fd()).map_err(|e| self.error("locating", "/", e))?;
        let at = fd_path(fd).map_err(|e| self.error("locating", path, e))?;
        at.strip_prefix(&root)
            .map(Path::to_path_buf)
            .map_err(|_| RootPathError::NotFound {
                path: path.into(),
                root: self.path.clone(),
            })
    }

    /// The typed error for `err` from operation `op` on `path`.
    pub(crate) fn error(&self, op: &'static str, path: &str, err: io::Error) -> RootPathError {
        let root = self.path.clone();
        let path = path.to_string();
        match err.raw_os_error() {
            Some(libc::ENOENT) => RootPathError::NotFound { path, root },
            Some(libc::ELOOP) => RootPathError::Loop { path, root },
            Some(libc::ENOTDIR) => RootPathError::NotADirectory { path, root },
            _ => RootPathError::Io {
                op,
                path,
                root,
                source: err,
            },
        }
    }
}

/// [`Root::resolve_path`] of `path` inside the host directory `root`.
pub fn resolve_path(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, RootPathError> {
    Root::open(root)?.resolve_path(path, follow_last)
}

/// `/proc/<pid>/fd/<n>` for `fd`: a magic link that reaches exactly the
/// inode `fd` refers to, usable by this process and by children it waits
/// for (e.g. `cp -a`) while `fd` stays open.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        fd.as_raw_fd()
    ))
}

/// The host path the kernel records for `fd`.
fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the inode behind `fd` (an `O_PATH` descriptor) again with `flags`.
/// The `/proc/self/fd` entry is a magic link to that very inode, so no path
/// string is resolved again.
pub fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    sys_open(&c, flags)
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is a live descriptor and `st` a valid out pointer.
    let rc = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

pub(crate) fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn sys_open(path: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; open(2) does not keep the pointer.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nobody else.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests;
