//! The shim tests' fixture: a busybox bundle from `runc spec` in a
//! tempdir, its own cgroup, and a guard that kills and removes everything.

#![allow(dead_code)] // each test binary uses part of it

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_shim::protocol::{read_frame, StreamType};
use berth_shim::{spawn_shim, ShimArgs, ShimClient, ShimStarted};

pub const EXE: &str = env!("CARGO_BIN_EXE_berth-shim-test");
pub const CGROUP_PARENT: &str = "berth-shim-test";

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub started: Option<ShimStarted>,
}

pub fn require_env() {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root");
    assert!(
        Path::new("/bin/busybox").exists(),
        "need busybox-static at /bin/busybox"
    );
    assert!(
        Command::new("runc").arg("--version").output().is_ok(),
        "need runc on PATH"
    );
}

impl Fixture {
    pub fn new(name: &str, args: &[&str], terminal: bool) -> Fixture {
        require_env();
        let dir = tempfile::Builder::new()
            .prefix("bshim")
            .tempdir_in("/tmp")
            .unwrap();
        let id = format!("{name}-{}", std::process::id());
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "echo", "sleep", "cat", "tty", "true", "ls"] {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let out = Command::new("runc")
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runc spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = serde_json::json!(terminal);
        spec["root"]["readonly"] = serde_json::json!(false);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{CGROUP_PARENT}/{id}"));
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let state_dir = dir.path().join("state");
        let log_path = dir.path().join("logs").join(format!("{id}-json.log"));
        Fixture {
            _dir: dir,
            id,
            bundle,
            state_dir,
            log_path,
            started: None,
        }
    }

    pub fn edit_spec(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        f(&mut spec);
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    }

    pub fn args(&self) -> ShimArgs {
        ShimArgs::new(&self.id, &self.bundle, &self.state_dir, &self.log_path)
    }

    pub fn start(&mut self, args: &ShimArgs) -> ShimStarted {
        let started = spawn_shim(Path::new(EXE), args)
            .unwrap_or_else(|e| panic!("spawn shim: {e}\nshim.log:\n{}", self.shim_log()));
        self.started = Some(started);
        started
    }

    pub fn client(&self) -> ShimClient {
        ShimClient::connect(&self.state_dir).unwrap()
    }

    pub fn shim_log(&self) -> String {
        fs::read_to_string(self.state_dir.join("shim.log")).unwrap_or_default()
    }

    pub fn log_entries(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
            .collect()
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                dirs.push(e.path().join(CGROUP_PARENT).join(&self.id));
            }
        }
        dirs.push(
            Path::new("/sys/fs/cgroup")
                .join(CGROUP_PARENT)
                .join(&self.id),
        );
        dirs
    }

    /// Wait for the shim to finish, then check it left nothing behind.
    pub fn assert_cleaned_up(&self) {
        let started = self.started.expect("started");
        assert!(
            eventually(Duration::from_secs(10), || !alive(started.shim_pid)),
            "shim {} still running",
            started.shim_pid
        );
        assert!(
            !alive(started.pid),
            "container init {} still running",
            started.pid
        );
        assert!(
            !self.state_dir.join("shim.sock").exists(),
            "socket left behind"
        );
        assert!(
            !self.state_dir.join("runtime").join(&self.id).exists(),
            "runtime state left behind"
        );
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Kill the shim first so it cannot restart anything, then whatever
        // of the container is left, then remove its cgroups.
        if let Some(s) = self.started {
            for pid in [s.shim_pid, s.pid] {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for d in self.cgroup_dirs() {
            if let Ok(procs) = fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for d in self.cgroup_dirs() {
            if d.exists() {
                let _ = eventually(Duration::from_secs(2), || {
                    fs::remove_dir(&d).is_ok() || !d.exists()
                });
            }
            // The shared parent goes when the last test is done with it.
            if let Some(parent) = d.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie is finished; our pid 1 may not reap orphans promptly.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn read_all_frames(stream: &mut impl Read) -> Vec<(StreamType, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Some(f) = read_frame(stream).expect("frame") {
        frames.push(f);
    }
    frames
}
