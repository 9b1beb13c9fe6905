//! The registry client end to end: a real daemon pushes to and pulls from
//! registries on 127.0.0.1 — berth's own (`berth_registry::serve`, in this
//! process, with no auth, htpasswd and token auth) and Debian's
//! `docker-registry` (distribution 2.8) — checked with the berth CLI, the
//! docker CLI and skopeo.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_registry::AuthConfig;
use common::registry::Registry;
use common::TestDaemon;

fn htpasswd(dir: &Path) -> PathBuf {
    let h = bcrypt::hash("s3cret", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("alice:{h}\n")).unwrap();
    p
}

/// The berth CLI with a private docker config directory (credentials).
fn berth_cfg(d: &TestDaemon, cfg: &Path, args: &[&str], stdin: Option<&str>) -> common::Output {
    let mut cmd = Command::new(common::BERTH);
    cmd.arg("-H").arg(d.host()).args(args);
    cmd.env_remove("DOCKER_HOST");
    cmd.env("DOCKER_CONFIG", cfg);
    common::run(
        cmd,
        stdin.map(|s| s.as_bytes().to_vec()),
        Duration::from_secs(180),
    )
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

/// busybox plus one file `/NAME`, committed as `image`; returns its ID.
fn busybox_with_file(d: &TestDaemon, name: &str, image: &str) -> String {
    let ctr = format!("mk-{name}");
    let script = format!("echo {name} >/{name}");
    d.berth_ok(&["run", "--name", &ctr, "busybox:latest", "sh", "-c", &script]);
    d.berth_ok(&["commit", &ctr, image]).trim().to_string()
}

/// Tags each local image as `repo:tag` and pushes it.
fn push_as_tags(d: &TestDaemon, cfg: &Path, repo: &str, tags: &[(&str, &str)]) {
    for (image, tag) in tags {
        let name = format!("{repo}:{tag}");
        d.berth_ok(&["tag", image, &name]);
        ok(berth_cfg(d, cfg, &["push", &name], None), "push");
    }
}

/// `latest: digest: sha256:… size: N` → the digest.
fn pushed_digest(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in push output:\n{out}"));
    let d = line.split(": digest: ").nth(1).unwrap();
    d.split_whitespace().next().unwrap().to_string()
}

fn repo_digests(d: &TestDaemon, name: &str) -> Vec<String> {
    let v = d.inspect(name);
    v["RepoDigests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_then_pull_into_a_fresh_daemon() {
    let reg = Registry::start(|_| AuthConfig::None);
    let cfg = tempfile::tempdir().unwrap();
    let a = TestDaemon::builder().start();
    let id = common::containers::busybox(&a);
    let name = format!("{}/busybox:latest", reg.host());
    a.berth_ok(&["tag", "busybox:latest", &name]);
    let out = ok(berth_cfg(&a, cfg.path(), &["push", &name], None), "push");
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    assert!(
        repo_digests(&a, &name).contains(&format!("{}/busybox@{digest}", reg.host())),
        "{:?}",
        repo_digests(&a, &name)
    );
    // A second push finds every blob there.
    let out = ok(
        berth_cfg(&a, cfg.path(), &["push", &name], None),
        "second push",
    );
    assert!(out.contains("Layer already exists"), "{out}");
    assert_eq!(pushed_digest(&out), digest);

    let b = TestDaemon::builder().short().start();
    let out = ok(berth_cfg(&b, cfg.path(), &["pull", &name], None), "pull");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    assert_eq!(b.inspect(&name)["Id"].as_str().unwrap(), id);
    assert_eq!(
        repo_digests(&b, &name),
        vec![format!("{}/busybox@{digest}", reg.host())]
    );
    let out = ok(
        berth_cfg(&b, cfg.path(), &["pull", &name], None),
        "pull again",
    );
    assert!(out.contains("Status: Image is up to date for"), "{out}");
    let out = b.berth_ok(&["run", "--rm", &name, "echo", "hello from the registry"]);
    assert_eq!(out.trim(), "hello from the registry");

    // By digest, into a third daemon: `run` pulls what is missing.
    let c = TestDaemon::builder().short().start();
    let by_digest = format!("{}/busybox@{digest}", reg.host());
    let o = berth_cfg(&c, cfg.path(), &["run", "--rm", &by_digest, "true"], None);
    let err = o.stderr.clone();
    ok(o, "run by digest");
    assert!(err.contains("Unable to find image"), "{err}");
    assert_eq!(c.inspect(&by_digest)["Id"].as_str().unwrap(), id);

    // A tag the registry does not have.
    let o = berth_cfg(
        &c,
        cfg.path(),
        &["pull", &format!("{}/busybox:nope", reg.host())],
        None,
    );
    assert!(!o.status.success());
    assert!(
        o.stderr.contains("manifest unknown") && o.stderr.contains("not found"),
        "{}",
        o.stderr
    );
}

#[test]
fn htpasswd_registry_needs_login() {
    let reg = Registry::start(|dir| AuthConfig::Htpasswd(htpasswd(dir)));
    let cfg = tempfile::tempdir().unwrap();
    let d = TestDaemon::builder().start();
    common::containers::busybox(&d);
    let name = format!("{}/alice/busybox:v1", reg.host());
    d.berth_ok(&["tag", "busybox:latest", &name]);
    let o = berth_cfg(&d, cfg.path(), &["push", &name], None);
    assert!(!o.status.success(), "push without login succeeded");
    assert!(
        o.stderr.contains("no basic auth credentials"),
        "{}",
        o.stderr
    );

    let o = berth_cfg(
        &d,
        cfg.path(),
        &["login", "-u", "alice", "-p", "wrong", &reg.host()],
        None,
    );
    o.must_fail(
        "login with a wrong password",
        1,
        &[&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host()
        )],
    );
    let out = ok(
        berth_cfg(
            &d,
            cfg.path(),
            &["login", "-u", "alice", "--password-stdin", &reg.host()],
            Some("s3cret\n"),
        ),
        "login",
    );
    assert!(out.contains("Login Succeeded"), "{out}");
    let conf = std::fs::read_to_string(cfg.path().join("config.json")).unwrap();
    assert!(conf.contains(&reg.host()), "{conf}");
    ok(
        berth_cfg(&d, cfg.path(), &["push", &name], None),
        "push after login",
    );
    d.berth_ok(&["rmi", &name]);
    ok(
        berth_cfg(&d, cfg.path(), &["pull", &name], None),
        "pull after login",
    );
    let out = ok(
        berth_cfg(&d, cfg.path(), &["logout", &reg.host()], None),
        "logout",
    );
    assert!(out.contains("Removing login credentials"), "{out}");
    d.berth_ok(&["rmi", &name]);
    // Refused for want of credentials: the registry's basic-auth challenge
    // went unanswered (not any failure, such as an unknown image).
    let o = berth_cfg(&d, cfg.path(), &["pull", &name], None);
    o.must_fail(
        "pull after logout",
        1,
        &["Error response from daemon: no basic auth credentials"],
    );
}

#[test]
fn token_registry_login_push_pull() {
    let reg = Registry::start(|dir| AuthConfig::Token {
        htpasswd: htpasswd(dir),
        acl: None,
    });
    let cfg = tempfile::tempdir().unwrap();
    let d = TestDaemon::builder().start();
    let id = common::containers::busybox(&d);
    let name = format!("{}/alice/busybox:latest", reg.host());
    d.berth_ok(&["tag", "busybox:latest", &name]);
    let o = berth_cfg(&d, cfg.path(), &["push", &name], None);
    assert!(!o.status.success(), "anonymous push succeeded");
    assert!(o.stderr.contains("unauthorized"), "{}", o.stderr);
    ok(
        berth_cfg(
            &d,
            cfg.path(),
            &["login", "-u", "alice", "-p", "s3cret", &reg.host()],
            None,
        ),
        "login",
    );
    let out = ok(berth_cfg(&d, cfg.path(), &["push", &name], None), "push");
    let digest = pushed_digest(&out);
    let e = TestDaemon::builder().start();
    ok(berth_cfg(&e, cfg.path(), &["pull", &name], None), "pull");
    assert_eq!(e.inspect(&name)["Id"].as_str().unwrap(), id);
    assert_eq!(
        repo_digests(&e, &name),
        vec![format!("{}/alice/busybox@{digest}", reg.host())]
    );
}

#[test]
fn docker_cli_pushes_and_pulls_through_berth() {
    let reg = Registry::start(|_| AuthConfig::None);
    let d = TestDaemon::builder().start();
    let id = common::containers::busybox(&d);
    let name = format!("{}/dockercli/busybox:latest", reg.host());
    d.docker_ok(&["tag", "busybox:latest", &name]);
    let out = d.docker_ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    d.docker_ok(&["rmi", &name]);
    let out = d.docker_ok(&["pull", &name]);
    assert!(
        out.contains("Downloaded newer image") || out.contains("up to date"),
        "{out}"
    );
    assert_eq!(d.inspect(&name)["Id"].as_str().unwrap(), id);
    let (st, _, err) = d.docker(&["pull", &format!("{}/dockercli/busybox:nope", reg.host())]);
    assert!(!st.success());
    assert!(err.contains("manifest unknown"), "{err}");
}

#[test]
fn pull_all_tags_gets_every_tag_through_berth_and_docker() {
    let reg = Registry::start(|_| AuthConfig::None);
    let cfg = tempfile::tempdir().unwrap();
    let a = TestDaemon::builder().start();
    let one = common::containers::busybox(&a);
    let two = busybox_with_file(&a, "two", "two:1");
    assert_ne!(one, two);
    let repo = format!("{}/team/app", reg.host());
    push_as_tags(
        &a,
        cfg.path(),
        &repo,
        &[
            ("busybox:latest", "one"),
            ("two:1", "two"),
            ("busybox:latest", "also-one"),
        ],
    );

    let b = TestDaemon::builder().short().start();
    let out = ok(
        berth_cfg(&b, cfg.path(), &["pull", "-a", &repo], None),
        "pull -a",
    );
    for tag in ["one", "two", "also-one"] {
        assert!(
            out.contains(&format!("{tag}: Pulling from team/app")),
            "{out}"
        );
    }
    assert_eq!(out.matches("Status: ").count(), 1, "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}")),
        "{out}"
    );
    assert_eq!(out.trim_end().lines().last(), Some(repo.as_str()), "{out}");
    for (tag, id) in [("one", &one), ("two", &two), ("also-one", &one)] {
        assert_eq!(
            b.inspect(&format!("{repo}:{tag}"))["Id"].as_str().unwrap(),
            id
        );
    }
    // Only the registry's tags: no `latest` was made up.
    b.berth_must_fail(
        &["image", "inspect", &format!("{repo}:latest")],
        1,
        &[&format!("No such image: {repo}:latest")],
    );
    let out = ok(
        berth_cfg(&b, cfg.path(), &["pull", "-a", &repo], None),
        "pull -a again",
    );
    assert!(
        out.contains(&format!("Status: Image is up to date for {repo}")),
        "{out}"
    );
    let o = berth_cfg(
        &b,
        cfg.path(),
        &["pull", "-a", &format!("{repo}:one")],
        None,
    );
    assert!(!o.status.success());
    assert!(
        o.stderr.contains("tag can't be used with --all-tags/-a"),
        "{o:?}"
    );

    // docker's client sends the bare name without a tag: the same pull.
    let c = TestDaemon::builder().short().start();
    let out = c.docker_ok(&["pull", "-a", &repo]);
    assert!(out.contains("two: Pulling from team/app"), "{out}");
    assert_eq!(
        c.inspect(&format!("{repo}:two"))["Id"].as_str().unwrap(),
        two
    );
    assert_eq!(
        c.inspect(&format!("{repo}:also-one"))["Id"]
            .as_str()
            .unwrap(),
        one
    );
}

#[test]
fn push_to_another_repository_mounts_the_blobs() {
    let reg = Registry::start(|_| AuthConfig::None);
    let cfg = tempfile::tempdir().unwrap();
    let a = TestDaemon::builder().start();
    let id = common::containers::busybox(&a);
    let first = format!("{}/team/base:1", reg.host());
    let second = format!("{}/other/app:1", reg.host());
    a.berth_ok(&["tag", "busybox:latest", &first]);
    a.berth_ok(&["tag", "busybox:latest", &second]);
    let out = ok(berth_cfg(&a, cfg.path(), &["push", &first], None), "push");
    assert!(out.contains("Pushed"), "{out}");
    let out = ok(berth_cfg(&a, cfg.path(), &["push", &second], None), "push");
    assert!(out.contains("Mounted from team/base"), "{out}");
    assert!(!out.contains("Pushed"), "{out}");
    let b = TestDaemon::builder().short().start();
    ok(berth_cfg(&b, cfg.path(), &["pull", &second], None), "pull");
    assert_eq!(b.inspect(&second)["Id"].as_str().unwrap(), id);
}

#[test]
fn push_with_zstd_writes_an_oci_manifest_once_and_pulls_back() {
    let reg = Registry::start(|_| AuthConfig::None);
    let cfg = tempfile::tempdir().unwrap();
    let a = TestDaemon::builder().start();
    let id = common::containers::busybox(&a);
    let name = format!("{}/z/busybox:zstd", reg.host());
    a.berth_ok(&["tag", "busybox:latest", &name]);
    let out = ok(
        berth_cfg(
            &a,
            cfg.path(),
            &["push", "--compression", "zstd", &name],
            None,
        ),
        "push zstd",
    );
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);

    // What the registry holds: an OCI manifest of tar+zstd layers whose
    // blobs are zstd frames.
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is required: apt-get install skopeo"
    );
    let mut cmd = Command::new("/usr/bin/skopeo");
    cmd.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]);
    let raw = ok(
        common::run(cmd, None, Duration::from_secs(60)),
        "skopeo inspect --raw",
    );
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m:#}"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{m:#}"
        );
        let url = format!(
            "http://{}/v2/z/busybox/blobs/{}",
            reg.host(),
            l["digest"].as_str().unwrap()
        );
        let mut curl = Command::new("curl");
        curl.args(["-fsS", "-r", "0-3", "-o", "-", &url]);
        let o = common::run(curl, None, Duration::from_secs(30));
        assert!(o.status.success(), "{o:?}");
        assert_eq!(o.stdout, [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    }

    // Compressed once: the second zstd push finds the kept blobs there.
    let out = ok(
        berth_cfg(
            &a,
            cfg.path(),
            &["push", "--compression", "zstd", &name],
            None,
        ),
        "push zstd again",
    );
    assert!(out.contains("Layer already exists"), "{out}");
    assert_eq!(pushed_digest(&out), digest);

    let b = TestDaemon::builder().short().start();
    ok(berth_cfg(&b, cfg.path(), &["pull", &name], None), "pull");
    assert_eq!(b.inspect(&name)["Id"].as_str().unwrap(), id);
    let out = b.berth_ok(&["run", "--rm", &name, "echo", "unpacked from zstd"]);
    assert_eq!(out.trim(), "unpacked from zstd");

    let (st, _, err) = a.berth(&["push", "--compression", "lz4", &name]);
    assert!(!st.success());
    assert!(err.contains("lz4"), "{err}");
}

#[test]
fn build_from_an_untagged_name_pulls_latest_only() {
    let reg = Registry::start(|_| AuthConfig::None);
    let cfg = tempfile::tempdir().unwrap();
    let a = TestDaemon::builder().start();
    let one = common::containers::busybox(&a);
    busybox_with_file(&a, "x", "other:1");
    let repo = format!("{}/lib/base", reg.host());
    push_as_tags(
        &a,
        cfg.path(),
        &repo,
        &[("busybox:latest", "latest"), ("other:1", "other")],
    );
    let b = TestDaemon::builder().short().start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {repo}\nRUN echo built\n"),
    )
    .unwrap();
    let (st, out, err) = b.berth(&[
        "build",
        "-t",
        "from-untagged",
        &ctx.path().display().to_string(),
    ]);
    assert!(st.success(), "{out}\n{err}");
    assert_eq!(
        b.inspect(&format!("{repo}:latest"))["Id"].as_str().unwrap(),
        one
    );
    // A build's FROM is one image, never the repository's every tag.
    b.berth_must_fail(
        &["image", "inspect", &format!("{repo}:other")],
        1,
        &[&format!("No such image: {repo}:other")],
    );
}

/// Debian's docker-registry on a free port, with temporary storage.
struct DistributionRegistry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl DistributionRegistry {
    fn start() -> DistributionRegistry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            Path::new(bin).exists(),
            "{bin} (distribution 2.8) is required: apt-get install docker-registry"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config.yml");
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        common::containers::wait_until("docker-registry answers", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        DistributionRegistry {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn distribution_registry_round_trip_and_skopeo_agrees() {
    let reg = DistributionRegistry::start();
    let host = format!("127.0.0.1:{}", reg.port);
    let cfg = tempfile::tempdir().unwrap();
    let d = TestDaemon::builder().start();
    let id = common::containers::busybox(&d);
    let name = format!("{host}/busybox:latest");
    d.berth_ok(&["tag", "busybox:latest", &name]);
    let out = ok(berth_cfg(&d, cfg.path(), &["push", &name], None), "push");
    let digest = pushed_digest(&out);

    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is required: apt-get install skopeo"
    );
    let mut cmd = Command::new("/usr/bin/skopeo");
    cmd.args(["inspect", "--tls-verify=false", &format!("docker://{name}")]);
    let o = common::run(cmd, None, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&ok(o, "skopeo inspect")).unwrap();
    assert_eq!(v["Digest"].as_str().unwrap(), digest, "{v:#}");

    let e = TestDaemon::builder().start();
    let out = ok(berth_cfg(&e, cfg.path(), &["pull", &name], None), "pull");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(e.inspect(&name)["Id"].as_str().unwrap(), id);
    assert_eq!(
        repo_digests(&e, &name),
        vec![format!("{host}/busybox@{digest}")]
    );
}

/// The daemon's committed blobs: file name → (inode, mtime in ns). A blob
/// rewritten (compressed again) gets a new inode through the ingest rename.
fn blob_files(d: &TestDaemon) -> std::collections::BTreeMap<String, (u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let dir = d.data_root.join("content/blobs/sha256");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.ino(), mtime),
            )
        })
        .collect()
}

/// `skopeo inspect --raw`: the manifest bytes a registry serves.
fn raw_manifest(image: &str) -> String {
    let mut cmd = Command::new("/usr/bin/skopeo");
    cmd.args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    ok(
        common::run(cmd, None, Duration::from_secs(60)),
        "skopeo inspect --raw",
    )
}

/// A one-layer image of several compression pieces: text that compresses,
/// and noise that does not (stored as is).
fn mixed_layer_tar(path: &Path) {
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < (5 << 20) / 2 {
        text.extend_from_slice(format!("{i:08} a line of a config file, repeated\n").as_bytes());
        i += 1;
    }
    let mut noise = vec![0u8; 3 << 19];
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut t = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [("etc/text.conf", &text), ("var/noise.bin", &noise)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        t.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    t.finish().unwrap();
}

/// A layer is compressed once: the first push keeps the compressed blob in
/// the daemon's content store, a push of the same image to a second
/// registry (another implementation) writes no blob at all, the manifests
/// are byte-identical, the blob survives a daemon restart (it is a GC root
/// while its image exists) and goes with the image. Pulled back, the image
/// has the same ID.
#[test]
fn push_compresses_once_for_every_registry() {
    let ours = Registry::start(|_| AuthConfig::None);
    let theirs = DistributionRegistry::start();
    let cfg = tempfile::tempdir().unwrap();
    let mut a = TestDaemon::builder().start();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("layer.tar");
    mixed_layer_tar(&tar);
    let before = blob_files(&a);
    let id = a.import(&tar, "mixed:1");
    let first = format!("{}/mixed:1", ours.host());
    let second = format!("127.0.0.1:{}/mixed:1", theirs.port);
    a.berth_ok(&["tag", "mixed:1", &first]);
    a.berth_ok(&["tag", "mixed:1", &second]);
    let imported = blob_files(&a);

    let out = ok(berth_cfg(&a, cfg.path(), &["push", &first], None), "push");
    assert!(out.contains("Pushed"), "{out}");
    let digest = pushed_digest(&out);
    let after_first = blob_files(&a);
    let kept: Vec<&String> = after_first
        .keys()
        .filter(|k| !imported.contains_key(*k))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "blobs before {imported:?}, after {after_first:?}"
    );
    let kept = format!("sha256:{}", kept[0]);
    let m1 = raw_manifest(&first);
    let v: serde_json::Value = serde_json::from_str(&m1).unwrap();
    assert_eq!(v["layers"][0]["digest"].as_str().unwrap(), kept, "{v:#}");
    assert_eq!(
        v["layers"][0]["mediaType"].as_str().unwrap(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let noise_and_text = std::fs::metadata(&tar).unwrap().len();
    let compressed = v["layers"][0]["size"].as_u64().unwrap();
    assert!(
        compressed < noise_and_text * 3 / 4,
        "layer of {noise_and_text} B compressed to {compressed} B"
    );

    let out = ok(
        berth_cfg(&a, cfg.path(), &["push", &second], None),
        "push to the second registry",
    );
    assert!(out.contains("Pushed"), "{out}");
    assert_eq!(pushed_digest(&out), digest);
    assert_eq!(
        blob_files(&a),
        after_first,
        "the second push wrote blobs (compressed again?)"
    );
    assert_eq!(raw_manifest(&second), m1);

    a.restart();
    assert_eq!(
        blob_files(&a),
        after_first,
        "a restart collected the kept blob"
    );

    let b = TestDaemon::builder().short().start();
    let out = ok(berth_cfg(&b, cfg.path(), &["pull", &second], None), "pull");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(b.inspect(&second)["Id"].as_str().unwrap(), id);

    a.berth_ok(&["rmi", "mixed:1", &first, &second]);
    let left = blob_files(&a);
    assert!(
        !left.contains_key(kept.trim_start_matches("sha256:")),
        "the kept compressed blob outlived its image: {left:?}"
    );
    assert_eq!(left, before, "blobs of the removed image are left");
}

/// `registry-mirrors`: a daemon whose only source of Docker Hub images is
/// a berth registry holding `library/python:3` builds `FROM python:3`
/// (the base is pulled through the mirror; Docker Hub is never asked).
#[test]
fn from_python3_builds_through_a_registry_mirror() {
    let tar = Path::new(common::PYTHON_ROOTFS);
    assert!(
        tar.is_file(),
        "{} is missing: run scripts/test.sh first",
        tar.display()
    );
    let reg = Registry::start(|_| AuthConfig::None);
    let seed = TestDaemon::builder().short().start();
    seed.berth_ok(&["import", &tar.display().to_string(), "python:3"]);
    let mirrored = format!("{}/library/python:3", reg.host());
    seed.berth_ok(&["tag", "python:3", &mirrored]);
    seed.berth_ok(&["push", &mirrored]);
    let want = seed.image_id("python:3");
    drop(seed);

    let d = TestDaemon::builder()
        .short()
        .config(serde_json::json!({
            "registry-mirrors": [format!("http://{}", reg.host())],
        }))
        .start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM python:3\nRUN python -c 'print(6 * 7)'\n",
    )
    .unwrap();
    let (st, out, err) = d.berth(&[
        "build",
        "-t",
        "via-mirror",
        &ctx.path().display().to_string(),
    ]);
    assert!(st.success(), "{out}\n{err}");
    assert!(out.contains("42"), "{out}");
    assert!(out.contains("Downloaded newer image for python:3"), "{out}");
    assert_eq!(
        d.image_id("python:3"),
        want,
        "the mirror's image, bit for bit"
    );
}
