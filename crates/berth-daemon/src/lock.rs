//! One daemon per data-root: an exclusive `flock(2)` on `<data-root>/berth.lock`,
//! held for the daemon's life and released by the kernel if it dies.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::DaemonError;

pub struct DataRootLock {
    _file: File,
    path: PathBuf,
}

impl DataRootLock {
    pub fn acquire(data_root: &Path) -> Result<DataRootLock, DaemonError> {
        let path = data_root.join("berth.lock");
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| DaemonError::Io {
                context: format!("opening lock file {}", path.display()),
                source: e,
            })?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(DaemonError::Locked(format!(
                "another berth daemon is already using data-root {} (lock {} held{})",
                data_root.display(),
                path.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" by pid {holder}")
                }
            )));
        }
        file.set_len(0).ok();
        file.rewind().ok();
        let _ = write!(file, "{}", std::process::id());
        Ok(DataRootLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
