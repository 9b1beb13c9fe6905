//! Crash safety: a daemon killed with SIGKILL in the middle of an import must come back
//! with no trace of the half-done work (no image, no partial ingest, no unreferenced blob,
//! no temporary snapshot), and must then be able to do the same import.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{http, TestDaemon};

const IMPORT_PATH: &str = "/v1.47/images/create?fromSrc=-&repo=large&tag=latest";

fn dir_entries(p: &Path) -> Vec<String> {
    match fs::read_dir(p) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => panic!("read {}: {e}", p.display()),
    }
}

/// The on-disk invariants of a data-root with no images.
fn assert_clean_and_empty(d: &TestDaemon) {
    assert!(
        d.image_ids().is_empty(),
        "images after crash: {:?}",
        d.image_ids()
    );
    let table = d.berth_ok(&["images"]);
    assert!(
        table.lines().skip(1).all(|l| l.trim().is_empty()),
        "images lists:\n{table}"
    );
    let ingest = dir_entries(&d.data_root.join("content/ingest"));
    assert!(
        ingest.is_empty(),
        "content/ingest not cleaned after restart: {ingest:?}"
    );
    // With no image, no blob is referenced, so none may remain.
    let blobs = common::files_under(&d.data_root.join("content/blobs"));
    assert!(
        blobs.is_empty(),
        "unreferenced blobs after crash: {blobs:?}"
    );
    let tmp_snapshots: Vec<_> = dir_entries(&d.data_root.join("snapshots"))
        .into_iter()
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(
        tmp_snapshots.is_empty(),
        "temporary snapshots left: {tmp_snapshots:?}"
    );
    // Nor may the interrupted body linger anywhere else (spool files, staging dirs): apart
    // from the metadata database, an empty data-root holds next to nothing.
    let leftovers: Vec<_> = common::files_under(&d.data_root)
        .into_iter()
        .filter(|p| !p.starts_with("meta.db") && !p.to_string_lossy().starts_with("meta.db"))
        .filter_map(|p| Some((fs::symlink_metadata(d.data_root.join(&p)).ok()?.len(), p)))
        .filter(|(len, _)| *len > 64 * 1024)
        .collect();
    assert!(
        leftovers.is_empty(),
        "large files left in the data-root after crash: {leftovers:?}"
    );
    let mounts = common::mounts_under(&d.data_root);
    assert!(
        mounts.is_empty(),
        "mounts left under the data-root: {mounts:?}"
    );
}

fn bytes_under(dir: &Path) -> u64 {
    common::files_under(dir)
        .iter()
        .filter_map(|p| fs::symlink_metadata(dir.join(p)).ok())
        .map(|m| m.len())
        .sum()
}

/// What an interrupted operation has on disk right now (for the test log).
fn partial_state(d: &TestDaemon) -> Vec<String> {
    let mut v = dir_entries(&d.data_root.join("content/ingest"));
    v.extend(
        dir_entries(&d.data_root.join("snapshots"))
            .into_iter()
            .map(|s| format!("snapshots/{s}")),
    );
    // `load` stages the archive's content under tmp/ first.
    v.extend(
        dir_entries(&d.data_root.join("tmp"))
            .into_iter()
            .map(|s| format!("tmp/{s}")),
    );
    v
}

/// Stream `file` as an import body, stopping after `limit` bytes (None: the whole file).
/// The request stays open: dropping the upload ends it.
fn send_import(d: &TestDaemon, file: &Path, limit: Option<u64>) -> http::Upload {
    let mut up = http::Upload::start(&d.socket, "POST", IMPORT_PATH, "application/x-tar")
        .expect("connect for import");
    let mut f = fs::File::open(file).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if limit.is_some_and(|l| up.sent >= l) {
            return up;
        }
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return up;
        }
        up.send(&buf[..n]).unwrap_or_else(|e| {
            panic!(
                "daemon stopped reading the import body after {} bytes: {e}\n{}",
                up.sent,
                d.log()
            )
        });
    }
}

/// Waits until an interrupted operation has something on disk (partial ingest or a
/// temporary snapshot): the proof that a kill now lands in its middle.
fn wait_for_partial_state(d: &TestDaemon, what: &str) {
    common::containers::wait_until(
        &format!("{what} to have partial state on disk (else the kill would miss the window)"),
        Duration::from_secs(60),
        || !partial_state(d).is_empty(),
    );
}

#[test]
fn kill9_during_import_leaves_nothing_behind() {
    let large = common::large_rootfs();
    let size = fs::metadata(&large).unwrap().len();
    let mut d = TestDaemon::builder().start();

    // Send half of the body; the socket buffers are a few hundred KiB at most, so by the
    // time write() returns for 256 MiB the daemon has consumed (hashed, stored or unpacked)
    // most of it. Then pull the plug.
    let half = size / 2;
    let started = Instant::now();
    // The request stays open until after the kill: the daemon is mid-import, not cleaning
    // up after a client that went away.
    assert_eq!(partial_state(&d), Vec::<String>::new(), "before the import");
    let up = send_import(&d, &large, Some(half));
    assert!(
        d.is_running(),
        "daemon died during the import:\n{}",
        d.log()
    );
    wait_for_partial_state(&d, "the import");
    eprintln!(
        "sent {half} bytes in {:?}; killing the daemon; data-root holds {} bytes in {:?}",
        started.elapsed(),
        bytes_under(&d.data_root),
        partial_state(&d),
    );
    d.kill9();
    drop(up);

    d.restart();
    assert_clean_and_empty(&d);

    // The same import now succeeds.
    let r = send_import(&d, &large, None)
        .finish()
        .expect("import response");
    assert_eq!(r.status, 200, "import after restart: {}", r.body_str());
    let body = r.body_str();
    assert!(
        !body.contains("\"error"),
        "import reported an error: {body}"
    );
    let v = d.inspect("large:latest");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!([format!("sha256:{}", common::sha256_file(&large))]),
        "{v:#}"
    );
    assert!(
        v["Size"].as_u64().unwrap_or(0) > size / 2,
        "size {} for a {size}-byte tar",
        v["Size"]
    );
    let ingest = dir_entries(&d.data_root.join("content/ingest"));
    assert!(
        ingest.is_empty(),
        "content/ingest not empty after a finished import: {ingest:?}"
    );
}

#[test]
fn kill9_during_load_leaves_nothing_behind() {
    let large = common::large_rootfs();
    let mut d = TestDaemon::builder().start();
    // A docker-archive stream whose only layer is the large tar: write the archive to disk
    // by streaming through the tar crate so the whole thing never sits in memory.
    let scratch = common::scratch();
    let archive = scratch.path().join("large-archive.tar");
    {
        let layer_hex = common::sha256_file(&large);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": common::tarball::go_arch(), "os": "linux",
            "created": "2024-01-01T00:00:00Z", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        }))
        .unwrap();
        let config_hex = common::sha256_hex(&config);
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{config_hex}.json"), "RepoTags": ["large:loaded"],
            "Layers": [format!("{layer_hex}/layer.tar")],
        }]))
        .unwrap();
        let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
        // Layer first, so the kill lands while the layer streams in.
        b.append_path_with_name(&large, format!("{layer_hex}/layer.tar"))
            .unwrap();
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add(&format!("{config_hex}.json"), &config);
        add("manifest.json", &manifest);
        b.into_inner().unwrap();
    }
    let size = fs::metadata(&archive).unwrap().len();
    assert_eq!(partial_state(&d), Vec::<String>::new(), "before the load");
    let mut up = http::Upload::start(
        &d.socket,
        "POST",
        "/v1.47/images/load?quiet=1",
        "application/x-tar",
    )
    .expect("connect for load");
    let mut f = fs::File::open(&archive).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while up.sent < size / 2 {
        let n = f.read(&mut buf).unwrap();
        up.send(&buf[..n])
            .unwrap_or_else(|e| panic!("load body refused after {} bytes: {e}", up.sent));
    }
    assert!(d.is_running(), "daemon died during load:\n{}", d.log());
    wait_for_partial_state(&d, "the load");
    eprintln!(
        "sent {} bytes of the load; data-root holds {} bytes in {:?}",
        up.sent,
        bytes_under(&d.data_root),
        partial_state(&d)
    );
    d.kill9();
    drop(up);
    d.restart();
    assert_clean_and_empty(&d);

    let out = d.berth_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: large:loaded"), "{out}");
}

#[test]
fn images_survive_kill9_and_restart() {
    let mut d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    d.berth_ok(&["tag", "busybox:latest", "busybox:second"]);
    d.kill9();
    d.restart();
    assert_eq!(d.image_id("busybox:latest"), id);
    assert_eq!(d.image_id("busybox:second"), id);
    assert_eq!(d.image_ids(), vec![id.clone()]);
    let ingest = dir_entries(&d.data_root.join("content/ingest"));
    assert!(ingest.is_empty(), "{ingest:?}");
    // And the content is whole: save and load it back.
    let saved = d.berth_out(&["save", "busybox:latest"], None);
    assert!(saved.status.success(), "{}", saved.stderr);
    d.berth_ok(&["rmi", "-f", &id]);
    let o = d.berth_out(&["load"], Some(saved.stdout));
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(d.image_id("busybox:latest"), id);
}

#[test]
fn restart_after_clean_shutdown_keeps_images() {
    let mut d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    d.restart();
    assert_eq!(d.image_id("busybox:latest"), id);
    // Still up after answering: a request after the restart is served.
    assert_eq!(d.api("GET", "/_ping", None), (200, "OK".to_string()));
    assert!(d.is_running());
}

/// A build whose context sits on the build's own tmpfs (the berth CLI
/// announces its size), its daemon killed mid-step: the next start unmounts
/// that tmpfs and clears the build dir instead of failing on it.
#[test]
fn kill9_during_a_build_leaves_no_tmpfs_behind() {
    let mut d = TestDaemon::builder().start();
    d.import(&common::busybox_rootfs(), "busybox:latest");
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY a /a\nRUN sleep 20\n",
    )
    .unwrap();
    fs::write(ctx.path().join("a"), "a").unwrap();
    let mut build = std::process::Command::new(common::BERTH)
        .arg("-H")
        .arg(d.host())
        .args(["build", "--network", "none", "-t", "held"])
        .arg(ctx.path())
        .env_remove("DOCKER_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = d.data_root.join("tmp");
    common::containers::wait_until(
        &format!("the build's tmpfs under {}", tmp.display()),
        Duration::from_secs(30),
        || {
            common::mounts_under(&tmp)
                .iter()
                .any(|m| m.ends_with("mem"))
        },
    );
    d.kill9();
    let _ = build.wait();
    d.restart();
    assert!(d.is_running(), "{}", d.log());
    assert_eq!(common::mounts_under(&tmp), Vec::<std::path::PathBuf>::new());
    assert_eq!(dir_entries(&tmp), Vec::<String>::new());
    // The step's container outlived the daemon; remove it.
    for id in d.berth_ok(&["ps", "-aq"]).split_whitespace() {
        d.berth_ok(&["rm", "-f", id]);
    }
}
