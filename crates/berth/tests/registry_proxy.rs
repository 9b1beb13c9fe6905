//! `berth registry serve --proxy-remote`: a pull-through cache between
//! daemons and an upstream registry, all real processes on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestDaemon;

/// `berth registry serve` as a child process on a port it picks itself.
struct RegistryProcess {
    child: Child,
    addr: String,
    log: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl RegistryProcess {
    fn start(extra: &[&str]) -> RegistryProcess {
        let dir = common::scratch();
        let root = dir.path().join("root");
        let log = dir.path().join("registry.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(common::BERTH)
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(&root)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        let mut addr = String::new();
        common::containers::wait_until("registry listening", Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text.split("addr=").nth(1) {
                Some(rest) => {
                    addr = rest.split_whitespace().next().unwrap().to_string();
                    true
                }
                None => false,
            }
        });
        RegistryProcess {
            child,
            addr,
            log,
            root,
            _dir: dir,
        }
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- registry {} log ---\n{}", self.addr, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over TCP: (status, headers and body as text).
fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn ok(o: common::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        o.stdout_str(),
        o.stderr
    );
    o.stdout_str()
}

fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest: line in\n{out}"))
        .trim()
        .to_string()
}

fn blob_files(root: &Path) -> Vec<PathBuf> {
    common::files_under(&root.join("blobs"))
}

#[test]
fn pull_through_cache_serves_mirrors_sees_moved_tags_and_outlives_its_upstream() {
    let mut upstream = RegistryProcess::start(&[]);
    let seed = TestDaemon::builder().start();
    let id = common::containers::busybox(&seed);
    let up_name = format!("{}/library/busybox:latest", upstream.addr);
    seed.berth_ok(&["tag", "busybox:latest", &up_name]);
    let out = seed.berth_ok(&["push", &up_name]);
    let pushed = out
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in push output:\n{out}"))
        .to_string();

    let remote = format!("http://{}", upstream.addr);
    let proxy = RegistryProcess::start(&["--proxy-remote", &remote]);
    assert!(
        blob_files(&proxy.root).is_empty(),
        "a fresh cache holds nothing"
    );

    // A daemon whose mirror is the proxy pulls a Docker Hub name through it.
    let mirror = serde_json::json!({ "registry-mirrors": [format!("http://{}", proxy.addr)] });
    let a = TestDaemon::builder().short().config(mirror.clone()).start();
    let out = ok(
        a.berth_out(&["pull", "busybox"], None),
        "pull via the proxy",
    );
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(digest_line(&out), pushed);
    assert_eq!(a.image_id("busybox"), id);
    let cached = blob_files(&proxy.root);
    // Manifest + config + one layer, stored whole under their digests.
    assert_eq!(cached.len(), 3, "{cached:?}");
    for f in &cached {
        let hex = f.file_name().unwrap().to_str().unwrap();
        let sum = common::sha256_file(&proxy.root.join("blobs").join(f));
        assert_eq!(
            sum,
            hex,
            "cached blob {} is not what its name says",
            f.display()
        );
    }
    assert!(
        common::files_under(&proxy.root.join("ingest")).is_empty(),
        "temporary files left in ingest/"
    );

    // Pushes and deletes through the cache are refused with UNSUPPORTED.
    let (st, body) = http(&proxy.addr, "POST", "/v2/library/busybox/blobs/uploads/");
    assert_eq!(st, 405, "{body}");
    assert!(body.contains("UNSUPPORTED"), "{body}");
    assert!(body.contains("pull-through cache"), "{body}");
    let (st, body) = http(
        &proxy.addr,
        "DELETE",
        &format!("/v2/library/busybox/manifests/{pushed}"),
    );
    assert_eq!(st, 405, "{body}");
    let proxied = format!("{}/library/busybox:mine", proxy.addr);
    a.berth_ok(&["tag", "busybox:latest", &proxied]);
    let o = a.berth_out(&["push", &proxied], None);
    assert!(!o.status.success(), "push to the cache succeeded");
    assert!(o.stderr.contains("unsupported"), "{}", o.stderr);

    // The tag moves upstream: the next pull through the cache sees it.
    let (st, _, err) = seed.berth(&[
        "import",
        "-c",
        "LABEL moved=yes",
        &common::busybox_rootfs().display().to_string(),
        "moved:latest",
    ]);
    assert!(st.success(), "{err}");
    let moved_id = seed.image_id("moved:latest");
    assert_ne!(moved_id, id);
    seed.berth_ok(&["tag", "moved:latest", &up_name]);
    let out = seed.berth_ok(&["push", &up_name]);
    let moved = out
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in push output:\n{out}"))
        .to_string();
    assert_ne!(moved, pushed);
    drop(seed);
    let out = ok(
        a.berth_out(&["pull", "busybox"], None),
        "pull the moved tag",
    );
    assert_eq!(digest_line(&out), moved, "the cache served a stale tag");
    assert_eq!(a.image_id("busybox"), moved_id);
    drop(a);

    // The upstream goes away; a fresh daemon still gets the same image.
    upstream.stop();
    let b = TestDaemon::builder().short().config(mirror).start();
    let out = ok(
        b.berth_out(&["pull", "busybox"], None),
        "pull from the cache",
    );
    assert_eq!(digest_line(&out), moved, "the cache served other content");
    assert_eq!(b.image_id("busybox"), moved_id);
    let out = b.berth_ok(&["run", "--rm", "busybox", "echo", "cached"]);
    assert_eq!(out.trim(), "cached");
    // The first digest is still served from the cache, by digest.
    let first = format!("busybox@{pushed}");
    ok(
        b.berth_out(&["pull", &first], None),
        "pull the first digest",
    );
    assert_eq!(b.image_id(&first), id);
    assert!(
        proxy.log().contains("serving the cached manifest"),
        "{}",
        proxy.log()
    );

    // A tag the cache never saw cannot be invented while the remote is down.
    let (st, body) = http(&proxy.addr, "GET", "/v2/library/busybox/manifests/other");
    assert_eq!(st, 502, "{body}");
    assert!(body.contains("upstream registry"), "{body}");
}

/// The berth CLI with a private docker config directory (credentials).
fn berth_cfg(d: &TestDaemon, cfg: &Path, args: &[&str]) -> common::Output {
    let mut cmd = Command::new(common::BERTH);
    cmd.arg("-H").arg(d.host()).args(args);
    cmd.env_remove("DOCKER_HOST");
    cmd.env("DOCKER_CONFIG", cfg);
    common::run(cmd, None, Duration::from_secs(180))
}

/// A remote behind Docker's token flow (berth's own `/token`, anonymous
/// refused): the proxy answers its Bearer challenges with
/// `--proxy-username/--proxy-password`; without them it reports why.
#[test]
fn pull_through_cache_authenticates_to_a_token_remote() {
    let dir = common::scratch();
    let htpasswd = dir.path().join("htpasswd");
    let h = bcrypt::hash("s3cret", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    std::fs::write(&htpasswd, format!("alice:{h}\n")).unwrap();
    let upstream = RegistryProcess::start(&["--auth", &format!("token:{}", htpasswd.display())]);

    let seed = TestDaemon::builder().start();
    let id = common::containers::busybox(&seed);
    let cfg = dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    ok(
        berth_cfg(
            &seed,
            &cfg,
            &["login", "-u", "alice", "-p", "s3cret", &upstream.addr],
        ),
        "login",
    );
    let up_name = format!("{}/alice/busybox:latest", upstream.addr);
    seed.berth_ok(&["tag", "busybox:latest", &up_name]);
    ok(berth_cfg(&seed, &cfg, &["push", &up_name]), "push upstream");
    drop(seed);

    let remote = format!("http://{}", upstream.addr);
    let with_creds = RegistryProcess::start(&[
        "--proxy-remote",
        &remote,
        "--proxy-username",
        "alice",
        "--proxy-password",
        "s3cret",
    ]);
    let d = TestDaemon::builder().short().start();
    let name = format!("{}/alice/busybox:latest", with_creds.addr);
    ok(
        d.berth_out(&["pull", &name], None),
        "pull through the proxy",
    );
    assert_eq!(d.image_id(&name), id);
    assert!(
        !with_creds.log().contains("s3cret"),
        "the remote's password reached the log"
    );

    let anonymous = RegistryProcess::start(&["--proxy-remote", &remote]);
    let (st, body) = http(&anonymous.addr, "GET", "/v2/alice/busybox/manifests/latest");
    assert_eq!(st, 502, "{body}");
    assert!(body.contains("unauthorized"), "{body}");
}

#[test]
fn proxy_flags_are_checked() {
    let dir = common::scratch();
    for (args, want) in [
        (
            vec!["--proxy-remote", "registry.example"],
            "http:// or https://",
        ),
        (vec!["--proxy-remote", "http://h/v2/"], "no path"),
        (
            vec!["--proxy-remote", "http://h", "--proxy-password", "x"],
            "--proxy-username",
        ),
    ] {
        let mut cmd = Command::new(common::BERTH);
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("root"))
            .args(&args);
        let o = common::run(cmd, None, Duration::from_secs(30));
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
}
