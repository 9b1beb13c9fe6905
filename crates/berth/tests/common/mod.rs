//! Test kit for berth's integration tests.
//!
//! Each test starts its own real daemon (`TestDaemon::builder().start()`) with a private data-root,
//! exec-root and socket under a fresh temporary directory, so tests run in parallel without
//! seeing each other. Checks are made from outside, the way a user would: the `berth` CLI,
//! the stock docker CLI through `DOCKER_HOST`, raw Engine API requests over the unix socket,
//! and the files the daemon leaves on disk.
//!
//! Lifecycle: `start()` spawns `berth daemon` with its output captured in a log file and
//! waits until `/_ping` answers; `Drop` (or `finish()`) checks that the test left nothing
//! behind — running containers, shims, cgroups, veths, published-port rules, mounts — and
//! fails the test naming each leak (see `teardown.rs`), stops the daemon (SIGTERM, SIGKILL
//! after 10 s), cleans up and removes the test's directories. When the test fails the daemon
//! log is printed so the failure comes with the daemon's side of the story.
//!
//! Tests need root and the tools they drive; a missing tool is a loud failure, never a skip.

#![allow(dead_code)] // every test binary uses a different subset of the kit

pub mod build;
pub mod containers;
pub mod http;
pub mod registry;
pub mod tarball;
mod teardown;
#[allow(unused_imports)] // used by no_leaks.rs only
pub use teardown::panic_text;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

pub use http::Response;

/// Path of the berth binary under test.
pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");
/// The stock docker CLI (28.x) used to check API compatibility.
pub const DOCKER: &str = "/usr/local/bin/docker";
/// Cache for test fixtures that are expensive to build; outside the repository.
pub const CACHE_DIR: &str = "/var/cache/berth-test";
/// The `python:3` root file system from Debian packages, with gcc and
/// libc6-dev (scripts/make-python-image.sh, made by scripts/test.sh while
/// the tests compile; the name's version follows the script's package list).
pub const PYTHON_ROOTFS: &str = "/var/cache/berth-test/python3-bookworm-v2-rootfs.tar";
/// How long a single CLI command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the daemon may take to answer `/_ping` after being started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts that the command ran and failed for the stated reason: exit
    /// status `code` and stderr containing every one of `reasons` (a bare
    /// non-zero status would also pass for a typo or a dead daemon).
    /// Returns stderr.
    pub fn must_fail(&self, what: &str, code: i32, reasons: &[&str]) -> &str {
        let shown = format!(
            "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_str(),
            self.stderr
        );
        assert_eq!(self.status.code(), Some(code), "{shown}");
        for r in reasons {
            assert!(
                self.stderr.contains(r),
                "failed, but not with {r:?}: {shown}"
            );
        }
        &self.stderr
    }
}

/// A running (or stopped) berth daemon owned by one test.
pub struct TestDaemon {
    /// Holds data-root, exec-root and the log; removed on drop.
    dir: Option<tempfile::TempDir>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub log_path: PathBuf,
    /// This daemon's default bridge (`--bridge`) and its subnet (`--bip`),
    /// unique per test so daemons run in parallel.
    pub bridge: String,
    pub bip: String,
    /// More `berth daemon` arguments (e.g. `--config-file`).
    extra_args: Vec<String>,
    child: Option<Child>,
    /// Mounts under the test's directory made before the daemon first started
    /// ([`DaemonBuilder::prepare`]): the test's own, not leaks.
    own_mounts: Vec<PathBuf>,
    /// Set by [`TestDaemon::expect_left_running`].
    left_running_expected: bool,
    /// Teardown ran (by [`TestDaemon::finish`] or drop).
    torn_down: bool,
}

/// A /24 no other test daemon of this run uses: 10.X.Y.0/24 with X from the
/// process id and Y from a counter.
pub fn unique_subnet_octets() -> (u8, u8) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let x = 160 + (std::process::id() % 80) as u8;
    (x, (n % 250) as u8 + 1)
}

/// A free TCP port on the host (bound, then released for the test to use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free /24 for a user network of a test (`network create --subnet`).
pub fn unique_subnet() -> String {
    let (x, y) = unique_subnet_octets();
    format!("10.{x}.{y}.0/24")
}

/// Work done on a test daemon's data-root before it starts.
type Prepare = Box<dyn FnOnce(&Path)>;

/// How a test daemon is made: `TestDaemon::builder().short().config(json).prepare(f).start()`.
#[derive(Default)]
pub struct DaemonBuilder {
    short: bool,
    config: Option<serde_json::Value>,
    prepare: Option<Prepare>,
}

impl DaemonBuilder {
    /// Roots under a short directory (`/tmp/bXXXX`), for tests that run containers: each
    /// shim's socket is `<exec-root>/containers/<64-hex id>/shim/shim.sock`, which must fit
    /// `sun_path` (107 bytes and a NUL), so an exec-root longer than 17 bytes (such as
    /// `/tmp/berth-test-XXXXXX/exec`) makes every container start fail.
    pub fn short(mut self) -> DaemonBuilder {
        self.short = true;
        self
    }

    /// A daemon.json holding `config` (Docker's keys, e.g. `registry-mirrors`).
    pub fn config(mut self, config: serde_json::Value) -> DaemonBuilder {
        self.config = Some(config);
        self
    }

    /// Call `prepare(data_root)` before the daemon starts (e.g. to mount a small tmpfs
    /// there). Mounts made here belong to the test: teardown unmounts them without calling
    /// them a leak.
    pub fn prepare(mut self, prepare: impl FnOnce(&Path) + 'static) -> DaemonBuilder {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// Start the daemon with fresh, private roots and wait until it answers `/_ping`.
    pub fn start(self) -> TestDaemon {
        require_root();
        let mut b = tempfile::Builder::new();
        if self.short {
            b.prefix("b").rand_bytes(4);
        } else {
            b.prefix("berth-test-");
        }
        let dir = b
            .tempdir_in("/tmp")
            .expect("create test directory under /tmp");
        let mut extra_args = vec![];
        if let Some(config) = &self.config {
            let path = dir.path().join("daemon.json");
            fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
            extra_args = vec!["--config-file".into(), path.display().to_string()];
        }
        if let Some(prepare) = self.prepare {
            let data_root = dir.path().join("data");
            fs::create_dir_all(&data_root).unwrap();
            prepare(&data_root);
        }
        TestDaemon::start_in_with(dir, extra_args)
    }
}

impl TestDaemon {
    /// A builder for a test daemon; `TestDaemon::builder().start()` is the plain one.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    fn start_in_with(dir: tempfile::TempDir, extra_args: Vec<String>) -> TestDaemon {
        let base = dir.path().to_path_buf();
        let data_root = base.join("data");
        let exec_root = base.join("exec");
        fs::create_dir_all(&data_root).unwrap();
        fs::create_dir_all(&exec_root).unwrap();
        let (x, y) = unique_subnet_octets();
        let tag: String = base
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect()
            })
            .unwrap_or_default();
        let tag = &tag[tag.len().saturating_sub(8)..];
        let mut d = TestDaemon {
            own_mounts: mounts_under(&base),
            dir: Some(dir),
            bridge: format!("bt{tag}"),
            bip: format!("10.{x}.{y}.1/24"),
            extra_args,
            socket: exec_root.join("berth.sock"),
            log_path: base.join("daemon.log"),
            data_root,
            exec_root,
            child: None,
            left_running_expected: false,
            torn_down: false,
        };
        d.spawn_and_wait();
        d
    }

    /// `unix:///…/berth.sock`, as given to `-H` and `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Arguments that start a daemon on this test's roots (for starting a rival by hand).
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            "daemon".into(),
            "--data-root".into(),
            self.data_root.display().to_string(),
            "--exec-root".into(),
            self.exec_root.display().to_string(),
            "-H".into(),
            self.host(),
            "--log-level".into(),
            "debug".into(),
            "--bridge".into(),
            self.bridge.clone(),
            "--bip".into(),
            self.bip.clone(),
        ]
        .into_iter()
        .chain(self.extra_args.iter().cloned())
        .collect()
    }

    fn spawn_and_wait(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open daemon log");
        writeln!(&log, "===== berth {} =====", self.daemon_args().join(" ")).unwrap();
        let child = Command::new(BERTH)
            .args(self.daemon_args())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BERTH} daemon: {e}"));
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                // Drop prints the daemon log.
                panic!("berth daemon exited during startup with {status}");
            }
            if let Ok(r) = http::request(&self.socket, "GET", "/_ping", None, &[]) {
                if r.status == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "berth daemon did not answer /_ping on {} within {START_TIMEOUT:?}",
                    self.socket.display()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log so far (stdout and stderr of every start).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("<no log: {e}>"))
    }

    /// Process id of the running daemon.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon not running").id()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// SIGTERM the daemon and wait for it (SIGKILL after 10 s). Returns its exit status and
    /// whether it had to be killed.
    pub fn stop(&mut self) -> (ExitStatus, bool) {
        let mut child = self.child.take().expect("daemon not running");
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, false);
            }
            if Instant::now() > deadline {
                signal(&child, libc::SIGKILL);
                return (child.wait().unwrap(), true);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the daemon with SIGKILL, as a power cut would, and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon not running");
        signal(&child, libc::SIGKILL);
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "daemon exited before SIGKILL: {status}"
        );
    }

    /// Stop the daemon if it runs, then start it again on the same roots and socket.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let (status, killed) = self.stop();
            assert!(
                !killed,
                "daemon ignored SIGTERM for {STOP_TIMEOUT:?}\n{}",
                self.log()
            );
            assert!(
                status.success(),
                "daemon exited with {status} on SIGTERM\n{}",
                self.log()
            );
        }
        self.spawn_and_wait();
    }

    /// Run `berth -H unix://… ARGS`; returns (status, stdout, stderr).
    pub fn berth(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let o = self.berth_out(args, None);
        (o.status, o.stdout_str(), o.stderr)
    }

    /// Run the berth CLI with optional stdin, keeping stdout as bytes.
    pub fn berth_out(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
        let mut cmd = Command::new(BERTH);
        cmd.arg("-H").arg(self.host()).args(args);
        cmd.env_remove("DOCKER_HOST");
        run(cmd, stdin, COMMAND_TIMEOUT)
    }

    /// Run the berth CLI with extra environment variables.
    pub fn berth_out_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BERTH);
        cmd.arg("-H").arg(self.host()).args(args);
        cmd.env_remove("DOCKER_HOST");
        cmd.envs(env.iter().copied());
        run(cmd, None, COMMAND_TIMEOUT)
    }

    /// Run the berth CLI and fail the test (with both outputs and the daemon log) unless it
    /// exits 0. Returns stdout.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth_out(args, None);
        self.check_ok("berth", args, &o);
        o.stdout_str()
    }

    /// Run the berth CLI and assert that it fails for the stated reason
    /// (see [`Output::must_fail`]). Returns stderr.
    pub fn berth_must_fail(&self, args: &[&str], code: i32, reasons: &[&str]) -> String {
        let o = self.berth_out(args, None);
        o.must_fail(&format!("berth {args:?}"), code, reasons);
        o.stderr
    }

    /// Run the stock docker CLI with `DOCKER_HOST` pointing at this daemon.
    pub fn docker(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let o = self.docker_out(args, None);
        (o.status, o.stdout_str(), o.stderr)
    }

    pub fn docker_out(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
        self.docker_out_env(args, stdin, &[])
    }

    /// The docker CLI with extra environment (e.g. `DOCKER_BUILDKIT=0`).
    pub fn docker_out_env(
        &self,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        env: &[(&str, &str)],
    ) -> Output {
        assert!(
            Path::new(DOCKER).exists(),
            "{DOCKER} (docker CLI 28) is required for this test; install docker-ce-cli 28"
        );
        let mut cmd = Command::new(DOCKER);
        cmd.args(args);
        cmd.env("DOCKER_HOST", self.host());
        // A private config dir: no credentials helpers, contexts or plugins from the host.
        let cfg = self.exec_root.join("docker-config");
        fs::create_dir_all(&cfg).unwrap();
        cmd.env("DOCKER_CONFIG", cfg);
        cmd.env_remove("DOCKER_CONTEXT");
        cmd.env_remove("DOCKER_API_VERSION");
        cmd.envs(env.iter().copied());
        run(cmd, stdin, COMMAND_TIMEOUT)
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker_out(args, None);
        self.check_ok("docker", args, &o);
        o.stdout_str()
    }

    fn check_ok(&self, prog: &str, args: &[&str], o: &Output) {
        assert!(
            o.status.success(),
            "`{prog} {}` failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            args.join(" "),
            o.status,
            o.stdout_str(),
            o.stderr
        );
    }

    /// A raw Engine API request; returns (status, body as text).
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        let r = self.api_full(method, path, body, &[]);
        (r.status, r.body_str())
    }

    /// A raw Engine API request returning status, headers and body.
    pub fn api_full(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Response {
        http::request(&self.socket, method, path, body, headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- daemon log ---\n{}", self.log()))
    }

    /// `GET path`, asserting 200, parsed as JSON.
    pub fn api_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.api("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: bad JSON {e}: {body}"))
    }

    /// Image IDs the daemon lists, including untagged ones (`/images/json?all=1`).
    pub fn image_ids(&self) -> Vec<String> {
        let v = self.api_json("/images/json?all=1");
        v.as_array()
            .unwrap_or_else(|| panic!("/images/json is not an array: {v}"))
            .iter()
            .map(|i| i["Id"].as_str().expect("image without Id").to_string())
            .collect()
    }

    /// Import `tar` as `reference` through the CLI; returns the image ID from `image inspect`.
    pub fn import(&self, tar: &Path, reference: &str) -> String {
        self.berth_ok(&["import", tar.to_str().unwrap(), reference]);
        self.image_id(reference)
    }

    /// `berth image inspect REF` → the parsed first element.
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        let out = self.berth_ok(&["image", "inspect", reference]);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("image inspect {reference}: bad JSON {e}: {out}"));
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("image inspect is not an array: {out}"));
        assert_eq!(arr.len(), 1, "image inspect {reference}: {out}");
        arr[0].clone()
    }

    /// Full image ID (`sha256:…`) of `reference`.
    pub fn image_id(&self, reference: &str) -> String {
        let v = self.inspect(reference);
        let id = v["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("no Id in {v}"))
            .to_string();
        assert!(is_image_id(&id), "malformed image id {id:?}");
        id
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) with the pid of a child we have not reaped yet; no memory is shared.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({}, {sig}): {}",
        child.id(),
        std::io::Error::last_os_error()
    );
}

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut roots = vec![dir.to_path_buf()];
    if let Ok(c) = dir.canonicalize() {
        if c != dir {
            roots.push(c);
        }
    }
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| roots.iter().any(|r| m.starts_with(r)))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run `cmd` with optional stdin, failing the test if it outlives `timeout`.
pub fn run(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        // A failed write (the command exited early) shows up in its exit status and stderr.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut v = vec![];
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = vec![];
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = out_t.join().unwrap();
            let err = err_t.join().unwrap();
            panic!(
                "{desc} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
    }
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "berth integration tests must run as root (euid is {euid})"
    );
}

/// `sha256:` + 64 lowercase hex digits.
pub fn is_image_id(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// The 12-digit short form the CLI prints.
pub fn short_id(id: &str) -> &str {
    &id.trim_start_matches("sha256:")[..12]
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

static BUSYBOX: Once = Once::new();

/// The busybox rootfs tar (built by scripts/make-busybox-rootfs.sh and cached).
pub fn busybox_rootfs() -> PathBuf {
    let path = Path::new(CACHE_DIR).join("busybox-rootfs.tar");
    BUSYBOX.call_once(|| {
        if path.exists() {
            return;
        }
        let ok = Path::new("/bin/busybox").exists()
            && Command::new("/bin/busybox")
                .arg("--list")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "busybox-static is not installed (/bin/busybox); run `apt-get install busybox-static`"
        );
        let script = scripts_dir().join("make-busybox-rootfs.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(&path);
        let o = run(cmd, None, Duration::from_secs(120));
        assert!(
            o.status.success(),
            "{} failed: {}\n{}",
            script.display(),
            o.status,
            o.stderr
        );
    });
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

static LARGE: Once = Once::new();

/// A ~512 MiB incompressible rootfs tar (scripts/make-large-rootfs.sh), cached.
pub fn large_rootfs() -> PathBuf {
    let path = Path::new(CACHE_DIR).join("large-rootfs-512m.tar");
    LARGE.call_once(|| {
        if path.exists() {
            return;
        }
        let script = scripts_dir().join("make-large-rootfs.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(&path).arg("512");
        let o = run(cmd, None, Duration::from_secs(600));
        assert!(
            o.status.success(),
            "{} failed: {}\n{}",
            script.display(),
            o.status,
            o.stderr
        );
    });
    path
}

/// Find the row of a `berth images`/`docker images` table for REPOSITORY and TAG.
/// Returns the row's whitespace-separated columns.
pub fn images_row(table: &str, repo: &str, tag: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.len() >= 3 && cols[0] == repo && cols[1] == tag)
}

/// Every file below `dir` (recursively), relative paths; empty if `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A scratch directory for a test's own files (archives, sentinels); removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-scratch-")
        .tempdir_in("/tmp")
        .unwrap()
}

/// The host's main IPv4 address (the one of the default route's interface).
pub fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-j", "route", "show", "default"])
        .output()
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dev = routes[0]["dev"]
        .as_str()
        .expect("a default route")
        .to_string();
    let out = Command::new("ip")
        .args(["-4", "-j", "addr", "show", "dev", &dev])
        .output()
        .unwrap();
    let addrs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    addrs[0]["addr_info"][0]["local"]
        .as_str()
        .expect("an IPv4 address")
        .to_string()
}

/// GET http://addr:port/ with a plain socket; the body, or None.
pub fn http_get(addr: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("{addr}:{port}").parse().ok()?,
        Duration::from_secs(3),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}
