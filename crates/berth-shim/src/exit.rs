//! Recording how the container ended: the exit code (Docker's 128+signal
//! convention), whether the memory cgroup OOM-killed something, and the
//! crash-safe `exit.json` the daemon reads when the shim is gone.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::sys::wait::WaitStatus;

use crate::protocol::ExitStatus;

/// The file under the state dir holding the [`ExitStatus`].
pub const EXIT_FILE: &str = "exit.json";

/// Exit code and killing signal for a terminal wait status; `None` for
/// stops, continues and other non-terminal states.
pub fn exit_of(status: WaitStatus) -> Option<(i32, Option<i32>)> {
    match status {
        WaitStatus::Exited(_, code) => Some((code, None)),
        WaitStatus::Signaled(_, sig, _) => Some((128 + sig as i32, Some(sig as i32))),
        _ => None,
    }
}

pub fn exit_status(
    code: i32,
    signal: Option<i32>,
    oom_killed: bool,
    at: DateTime<Utc>,
) -> ExitStatus {
    ExitStatus {
        exit_code: code,
        exited_at: at,
        oom_killed,
        signal,
    }
}

/// Where the container's memory cgroup lives, from `linux.cgroupsPath`.
///
/// cgroup v1 (also the hybrid layout, where memory is still on v1) keeps
/// it under `/sys/fs/cgroup/memory`; v2 under the unified `/sys/fs/cgroup`.
/// A systemd-style `slice:prefix:name` path is not resolved.
pub fn memory_cgroup_dir(cgroups_path: &str) -> Option<PathBuf> {
    memory_cgroup_dir_in(Path::new("/sys/fs/cgroup"), cgroups_path)
}

fn memory_cgroup_dir_in(root: &Path, cgroups_path: &str) -> Option<PathBuf> {
    if cgroups_path.is_empty() || cgroups_path.contains(':') {
        return None;
    }
    let rel = cgroups_path.trim_start_matches('/');
    let v1 = root.join("memory");
    if v1.is_dir() {
        Some(v1.join(rel))
    } else {
        Some(root.join(rel))
    }
}

/// Whether the kernel OOM-killed a process in this memory cgroup: the
/// `oom_kill` counter of `memory.events` (v2) or `memory.oom_control` (v1,
/// kernels >= 4.13). Unreadable means no.
pub fn oom_killed(memory_dir: &Path) -> bool {
    ["memory.events", "memory.oom_control"].iter().any(|name| {
        fs::read_to_string(memory_dir.join(name))
            .map(|text| oom_kill_count(&text) > 0)
            .unwrap_or(false)
    })
}

fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse().ok())
        .next()
        .unwrap_or(0)
}

/// Write `exit.json` so that a reader sees either nothing or the whole
/// record: temporary file, rename. Not fsynced: the state directory is
/// runtime state under the exec-root (tmpfs on most hosts), read only by a
/// daemon that restarts while the machine stays up, and the page cache
/// outlives a daemon; after a reboot the container is gone anyway.
pub fn write_exit_file(state_dir: &Path, status: &ExitStatus) -> io::Result<()> {
    let tmp = state_dir.join(format!(".{EXIT_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(io::Error::other)?)?;
    f.write_all(b"\n")?;
    drop(f);
    fs::rename(&tmp, state_dir.join(EXIT_FILE))
}

/// Read a recorded exit, if the shim wrote one.
pub fn read_exit_file(state_dir: &Path) -> io::Result<Option<ExitStatus>> {
    match fs::read(state_dir.join(EXIT_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn exit_codes_follow_docker() {
        let pid = Pid::from_raw(1);
        assert_eq!(exit_of(WaitStatus::Exited(pid, 3)), Some((3, None)));
        assert_eq!(
            exit_of(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some((143, Some(15)))
        );
        assert_eq!(
            exit_of(WaitStatus::Signaled(pid, Signal::SIGKILL, true)),
            Some((137, Some(9)))
        );
        assert_eq!(exit_of(WaitStatus::StillAlive), None);
    }

    #[test]
    fn finds_oom_kill_counter() {
        assert_eq!(
            oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            oom_kill_count("low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n"),
            0
        );
        assert_eq!(oom_kill_count("oom_kill_disable 0\nunder_oom 0\n"), 0);
        let dir = tempfile::tempdir().unwrap();
        assert!(!oom_killed(dir.path()));
        fs::write(dir.path().join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(dir.path()));
    }

    #[test]
    fn memory_dir_per_hierarchy() {
        let v1 = tempfile::tempdir().unwrap();
        fs::create_dir(v1.path().join("memory")).unwrap();
        assert_eq!(
            memory_cgroup_dir_in(v1.path(), "/a/b"),
            Some(v1.path().join("memory/a/b"))
        );
        let v2 = tempfile::tempdir().unwrap();
        assert_eq!(
            memory_cgroup_dir_in(v2.path(), "/a/b"),
            Some(v2.path().join("a/b"))
        );
        assert_eq!(
            memory_cgroup_dir_in(v2.path(), "system.slice:berth:x"),
            None
        );
    }

    #[test]
    fn exit_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit_file(dir.path()).unwrap(), None);
        let s = exit_status(137, Some(9), true, Utc::now());
        write_exit_file(dir.path(), &s).unwrap();
        assert_eq!(read_exit_file(dir.path()).unwrap(), Some(s));
        assert!(!dir.path().join(".exit.json.tmp").exists());
    }
}
