//! Helpers for container tests: a busybox image, exit codes, polling, and what a container
//! leaves behind on the host (shim processes, cgroup directories, state directories, mounts).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::TestDaemon;

/// Import the cached busybox rootfs as `busybox:latest`; returns the image ID.
pub fn busybox(d: &TestDaemon) -> String {
    d.import(&super::busybox_rootfs(), "busybox:latest")
}

/// Exit code of a finished command (panics if it was killed by a signal).
pub fn code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("command killed by a signal: {status}"))
}

/// Poll `f` every 50 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// `berth inspect -f FORMAT NAME`, trimmed.
pub fn inspect_f(d: &TestDaemon, format: &str, name: &str) -> String {
    d.berth_ok(&["inspect", "-f", format, name])
        .trim()
        .to_string()
}

/// Full container ID of NAME.
pub fn container_id(d: &TestDaemon, name: &str) -> String {
    let id = inspect_f(d, "{{.Id}}", name);
    assert_eq!(id.len(), 64, "container id of {name}: {id:?}");
    id
}

/// The STATUS column `berth ps -a` shows for the container named NAME, if it is listed.
pub fn ps_status(d: &TestDaemon, name: &str) -> Option<String> {
    let out = d.berth_ok(&["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"]);
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s.to_string())
}

/// PIDs of `berth shim` processes serving container ID (matched on their command line).
pub fn shim_pids(id: &str) -> Vec<u32> {
    let mut out = vec![];
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "shim") && args.iter().any(|a| a.contains(id)) {
            out.push(pid);
        }
    }
    out
}

/// Cgroup directories (v1 per controller, or v2) named after container ID below `berth/`.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut found = vec![];
    let v2 = root.join("berth").join(id);
    if v2.exists() {
        found.push(v2);
    }
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join("berth").join(id);
            if p.exists() {
                found.push(p);
            }
        }
    }
    found
}

/// Entries of `dir` (names only); empty if it does not exist.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether process PID exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// PIDs whose command line is exactly `args` (e.g. a container's `sleep 1000 <marker>`).
pub fn pids_with_cmdline(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut out = vec![];
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Runs `sh -c 'echo ran-before; SCRIPT'` in a `--rm` busybox container with `opts` and
/// asserts that SCRIPT ran and failed for `reason`: the marker printed first (so the
/// container started and the shell ran), the exit code is the command's own (non-zero, not
/// the engine's 125, 126 or 127) and stderr names `reason` (e.g. "Read-only file system").
/// Returns the exit code and stdout after the marker.
pub fn run_must_fail(d: &TestDaemon, opts: &[&str], script: &str, reason: &str) -> (i32, String) {
    let full = format!("echo ran-before; {script}");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", &full]);
    let (st, out, err) = d.berth(&args);
    let c = code(st);
    let what = format!(
        "`{script}` with {opts:?} exited {c}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    );
    let rest = out
        .strip_prefix("ran-before\n")
        .unwrap_or_else(|| panic!("the container's shell did not run: {what}"));
    assert!(c != 0, "succeeded: {what}");
    assert!(
        !(125..=127).contains(&c),
        "an engine error, not the command's failure: {what}"
    );
    assert!(
        err.contains(reason),
        "failed, but not with {reason:?}: {what}"
    );
    (c, rest.to_string())
}
