//! Teardown of a test daemon, and the leak check that fails a test which leaves something
//! behind on the host.
//!
//! After the test body the kit looks, in this order, for:
//! 1. containers the daemon still reports running (or paused, or restarting);
//! 2. after stopping the daemon, processes whose command line names its exec-root (shims,
//!    a rival daemon, a CLI the test did not wait for);
//! 3. cgroups named after any container ID of this daemon (the IDs under the data-root, on
//!    shims' command lines and in the daemon log: `--rm` containers leave no directory);
//! 4. interfaces (veths) still enslaved to one of this daemon's bridges;
//! 5. rules left in the `ports` chain of this daemon's nftables table (published ports);
//! 6. mounts under the test's directory, except those the test made before the daemon first
//!    started ([`super::DaemonBuilder::prepare`]).
//!
//! Everything found is cleaned up (killed, removed, unmounted), then reported: the test
//! fails with a message naming each leak, or, if it is already panicking, the report is
//! printed instead of panicking twice. The bridges and the nftables table themselves are
//! not leaks (a daemon keeps them across restarts, as dockerd keeps docker0); the kit
//! deletes them.
//!
//! A test that leaves containers running on purpose (live restore) says so with
//! [`TestDaemon::expect_left_running`]: teardown then starts the daemon if it is down and
//! removes every container through it (`DELETE /containers/{id}?force=1`) before the
//! checks, so what the daemon fails to clean up is still caught.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{http, mounts_under, TestDaemon, STOP_TIMEOUT};

impl TestDaemon {
    /// This test leaves containers running on purpose (e.g. it kills the daemon and ends):
    /// teardown removes them through the daemon (started again if needed) instead of
    /// calling them leaks.
    pub fn expect_left_running(&mut self) {
        self.left_running_expected = true;
    }

    /// Tear down now and fail (panic) naming whatever the test left behind; the daemon is
    /// gone afterwards. Drop does the same for a test that does not call it.
    pub fn finish(mut self) {
        let problems = self.teardown();
        if !problems.is_empty() {
            panic!("{}", report(&problems));
        }
    }

    /// The Linux bridges of this daemon's networks (default and user).
    pub fn bridges(&self) -> Vec<String> {
        let mut out = vec![self.bridge.clone()];
        if let Ok(rd) = fs::read_dir(self.data_root.join("networks")) {
            for e in rd.flatten() {
                let v: serde_json::Value =
                    serde_json::from_slice(&fs::read(e.path()).unwrap_or_default())
                        .unwrap_or_default();
                if let Some(b) = v["bridge"].as_str().filter(|b| !b.is_empty()) {
                    if !out.iter().any(|o| o == b) {
                        out.push(b.to_string());
                    }
                }
            }
        }
        out
    }

    /// The daemon's nftables table (`ip <name>`).
    pub fn nft_table(&self) -> String {
        format!("berth_{}", self.bridge.replace('-', "_"))
    }

    /// Processes (pid, command line) whose arguments name this daemon's exec-root.
    pub fn processes_of_this_daemon(&self) -> Vec<(i32, String)> {
        let root = self.exec_root.display().to_string();
        let under = format!("{root}/");
        let me = std::process::id() as i32;
        let mut out = vec![];
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me || !super::containers::pid_alive(pid as u32) {
                continue;
            }
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == &root || a.contains(&under)) {
                out.push((pid, args.join(" ").trim().to_string()));
            }
        }
        out
    }

    /// Everything that names a container of this daemon: IDs under the data-root and the
    /// exec-root, on shims' command lines, and 64-hex words in the daemon log.
    fn container_ids(&self, procs: &[(i32, String)]) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for dir in [
            self.data_root.join("containers"),
            self.exec_root.join("containers"),
        ] {
            for e in fs::read_dir(dir).into_iter().flatten().flatten() {
                ids.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
        for (_, cmd) in procs {
            if let Some(id) = cmd.split(" --id ").nth(1).and_then(|r| r.split(' ').next()) {
                ids.insert(id.to_string());
            }
        }
        let log = fs::read(&self.log_path).unwrap_or_default();
        for w in log.split(|b| !b.is_ascii_hexdigit()) {
            if w.len() == 64
                && w.iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
            {
                ids.insert(String::from_utf8_lossy(w).into_owned());
            }
        }
        ids
    }

    /// Removes every container through the daemon (`expect_left_running`).
    fn remove_all_containers(&mut self) -> Vec<String> {
        let mut problems = vec![];
        if !self.is_running() {
            self.child = None;
            if let Err(e) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn_and_wait()))
            {
                return vec![format!(
                    "starting the daemon again to remove its containers: {}",
                    panic_text(&e)
                )];
            }
        }
        for (id, name, _) in self.containers_listed() {
            let path = format!("/containers/{id}?force=1&v=1");
            match http::request(&self.socket, "DELETE", &path, None, &[]) {
                Ok(r) if r.status == 204 || r.status == 404 => {}
                Ok(r) => problems.push(format!(
                    "removing container {name} ({id}): {} {}",
                    r.status,
                    r.body_str()
                )),
                Err(e) => problems.push(format!("removing container {name} ({id}): {e}")),
            }
        }
        problems
    }

    /// (id, name, state) of every container the daemon lists; empty if it does not answer.
    fn containers_listed(&self) -> Vec<(String, String, String)> {
        let Ok(r) = http::request(&self.socket, "GET", "/containers/json?all=1", None, &[]) else {
            return vec![];
        };
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        v.as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["Id"].as_str().unwrap_or_default().to_string(),
                    c["Names"][0]
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    c["State"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Stops the daemon, checks for leaks, cleans up and removes the test's directory.
    /// Returns every leak and teardown failure; runs once.
    pub(super) fn teardown(&mut self) -> Vec<String> {
        if self.torn_down {
            return vec![];
        }
        self.torn_down = true;
        let mut problems = vec![];
        let mut leaks = vec![];

        if self.left_running_expected {
            problems.extend(self.remove_all_containers());
        }
        if self.is_running() {
            for (id, name, state) in self.containers_listed() {
                if matches!(state.as_str(), "running" | "paused" | "restarting") {
                    leaks.push(format!("container {name} ({id}) still {state}"));
                }
            }
        }
        if self.child.is_some() {
            let (status, killed) = self.stop();
            if killed {
                problems.push(format!(
                    "daemon ignored SIGTERM for {STOP_TIMEOUT:?}; killed"
                ));
            } else if !status.success() {
                problems.push(format!("daemon exited with {status} after SIGTERM"));
            }
        }

        let procs = self.processes_of_this_daemon();
        for (pid, cmd) in &procs {
            leaks.push(format!("process {pid} still running: {cmd}"));
            // SAFETY: kill(2) on a pid whose command line names this test's exec-root.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let gone = wait_quietly(Duration::from_secs(10), || {
            procs
                .iter()
                .all(|(pid, _)| !super::containers::pid_alive(*pid as u32))
        });
        if !gone {
            problems.push("processes of this daemon survived SIGKILL".into());
        }

        for id in self.container_ids(&procs) {
            let dirs = super::containers::cgroup_dirs(&id);
            // A frozen cgroup (a paused container) must thaw before its processes can die.
            for dir in &dirs {
                let _ = fs::write(dir.join("freezer.state"), "THAWED");
                let _ = fs::write(dir.join("cgroup.freeze"), "0");
            }
            for dir in &dirs {
                leaks.push(format!("cgroup {}", dir.display()));
                if let Err(e) = remove_cgroup(dir) {
                    problems.push(e);
                }
            }
        }

        let bridges = self.bridges();
        for (link, master) in links_with_master() {
            if bridges.contains(&master) {
                leaks.push(format!("interface {link} still on bridge {master}"));
                let _ = Command::new("ip")
                    .args(["link", "del", &link])
                    .stderr(Stdio::null())
                    .status();
            }
        }

        for rule in nft_port_rules(&self.nft_table()) {
            leaks.push(format!(
                "nftables rule in table ip {} chain ports: {rule}",
                self.nft_table()
            ));
        }

        if let Some(dir) = self.dir.as_ref() {
            for m in mounts_under(dir.path()) {
                if !self.own_mounts.contains(&m) {
                    leaks.push(format!("mount {}", m.display()));
                }
            }
        }
        problems.extend(self.unmount_all());
        problems.extend(self.remove_networks());

        let failing = thread::panicking() || !leaks.is_empty() || !problems.is_empty();
        if failing {
            eprintln!(
                "--- berth daemon log ({}) ---\n{}\n--- end of daemon log ---",
                self.log_path.display(),
                self.log()
            );
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                problems.push(format!("remove {}: {e}", path.display()));
            }
        }
        if !leaks.is_empty() {
            problems.insert(0, format!("left behind: {}", leaks.join("; ")));
        }
        problems
    }

    /// Unmount whatever is left mounted below our directories (deepest first).
    fn unmount_all(&self) -> Vec<String> {
        let Some(dir) = self.dir.as_ref() else {
            return vec![];
        };
        let mut failures = vec![];
        for target in mounts_under(dir.path()) {
            let c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: `c` is a valid NUL-terminated path; umount2 does not retain it.
            let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            if rc != 0 {
                failures.push(format!(
                    "umount {}: {}",
                    target.display(),
                    std::io::Error::last_os_error()
                ));
            }
        }
        failures
    }

    /// Deletes the bridges and the nftables table the daemon made (a real
    /// daemon keeps them across restarts, as dockerd keeps docker0).
    fn remove_networks(&self) -> Vec<String> {
        let mut problems = vec![];
        for b in self.bridges() {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table()])
            .stderr(Stdio::null())
            .status();
        let left = all_links();
        for b in self.bridges() {
            if left.contains(&b) {
                problems.push(format!("bridge {b} could not be removed"));
            }
        }
        problems
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let problems = self.teardown();
        if problems.is_empty() {
            return;
        }
        if thread::panicking() {
            eprintln!("{}", report(&problems));
        } else {
            panic!("{}", report(&problems));
        }
    }
}

fn report(problems: &[String]) -> String {
    format!("test daemon teardown: {}", problems.join("; "))
}

/// The text of a panic payload.
pub fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-text panic>".into())
}

fn wait_quietly(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kill what runs in a cgroup directory, then remove it.
fn remove_cgroup(dir: &Path) -> Result<(), String> {
    let procs = |d: &Path| -> Vec<i32> {
        fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let emptied = wait_quietly(Duration::from_secs(10), || {
        let p = procs(dir);
        for pid in &p {
            // SAFETY: kill(2) on a process in a cgroup named after this daemon's container.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        p.is_empty()
    });
    let removed = wait_quietly(Duration::from_secs(5), || {
        fs::remove_dir(dir).is_ok() || !dir.exists()
    });
    if emptied && removed {
        Ok(())
    } else {
        Err(format!(
            "cgroup {} could not be removed (processes: {:?})",
            dir.display(),
            procs(dir)
        ))
    }
}

/// `ip -j link`: (name, master) of every interface enslaved to a bridge.
fn links_with_master() -> Vec<(String, String)> {
    ip_links()
        .iter()
        .filter_map(|l| {
            Some((
                l["ifname"].as_str()?.to_string(),
                l["master"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn all_links() -> Vec<String> {
    ip_links()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

fn ip_links() -> Vec<serde_json::Value> {
    let out = Command::new("ip")
        .args(["-j", "link"])
        .output()
        .expect("run `ip -j link` (install iproute2)");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Rules in the `ports` chain of `ip TABLE` (one DNAT per published port), as nft prints
/// them.
fn nft_port_rules(table: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["list", "chain", "ip", table, "ports"])
        .stderr(Stdio::null())
        .output()
        .expect("run `nft list chain` (install nftables)");
    if !out.status.success() {
        return vec![]; // no table: nothing published
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("table ") && !l.starts_with("chain "))
        .filter(|l| *l != "}")
        .map(str::to_string)
        .collect()
}
