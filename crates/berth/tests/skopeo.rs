//! Interoperability of `berth save`/`berth load` with skopeo (containers/image), an
//! independent reader and writer of docker-archive and oci-archive files.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{sha256_hex, TestDaemon};

fn skopeo(args: &[&str]) -> common::Output {
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is required for this test; run `apt-get install skopeo`"
    );
    let mut cmd = Command::new("/usr/bin/skopeo");
    // No registries or policy lookups against the network: archives only.
    cmd.arg("--insecure-policy").args(args);
    common::run(cmd, None, Duration::from_secs(180))
}

fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let o = skopeo(args);
    assert!(
        o.status.success(),
        "skopeo {} failed: {}\n{}",
        args.join(" "),
        o.status,
        o.stderr
    );
    o.stdout
}

/// sha256 of the raw config blob skopeo reads from `transport_ref`: the image ID.
fn config_digest(transport_ref: &str) -> String {
    let raw = skopeo_ok(&["inspect", "--config", "--raw", transport_ref]);
    format!("sha256:{}", sha256_hex(&raw))
}

fn inspect(transport_ref: &str) -> serde_json::Value {
    let out = skopeo_ok(&["inspect", transport_ref]);
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("skopeo inspect: bad JSON {e}"))
}

fn setup() -> (TestDaemon, String, tempfile::TempDir) {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    (d, id, common::scratch())
}

#[test]
fn skopeo_reads_docker_archive_from_save() {
    let (d, id, dir) = setup();
    let file = dir.path().join("saved.tar");
    d.berth_ok(&["save", "-o", file.to_str().unwrap(), "busybox:latest"]);
    let r = format!("docker-archive:{}", file.display());
    let v = inspect(&r);
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(v["Os"], "linux", "{v:#}");
    assert_eq!(v["Architecture"], common::tarball::go_arch(), "{v:#}");
    assert_eq!(
        config_digest(&r),
        id,
        "config blob in the archive is not the image config"
    );
    let tagged = format!("docker-archive:{}:busybox:latest", file.display());
    assert_eq!(
        config_digest(&tagged),
        id,
        "archive does not carry the busybox:latest tag"
    );
}

#[test]
fn skopeo_reads_oci_archive_from_save_format_oci() {
    let (d, id, dir) = setup();
    let file = dir.path().join("saved-oci.tar");
    d.berth_ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        file.to_str().unwrap(),
        "busybox:latest",
    ]);
    let data = std::fs::read(&file).unwrap();
    let names = common::tarball::entry_names(&data);
    for required in ["oci-layout", "index.json"] {
        assert!(
            names.iter().any(|n| n.trim_start_matches("./") == required),
            "OCI archive lacks {required}: {names:?}"
        );
    }
    let r = format!("oci-archive:{}", file.display());
    let v = inspect(&r);
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(v["Os"], "linux", "{v:#}");
    assert_eq!(config_digest(&r), id);
}

#[test]
fn skopeo_copy_to_docker_archive_loads_as_the_same_image() {
    let (d, id, dir) = setup();
    let saved = dir.path().join("saved.tar");
    let out = dir.path().join("out.tar");
    d.berth_ok(&["save", "-o", saved.to_str().unwrap(), "busybox:latest"]);
    skopeo_ok(&[
        "copy",
        &format!("docker-archive:{}", saved.display()),
        &format!("docker-archive:{}:busybox:copied", out.display()),
    ]);
    d.berth_ok(&["rmi", "busybox:latest"]);
    assert!(d.image_ids().is_empty());
    let o = d.berth_ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(o.contains("Loaded image: busybox:copied"), "{o}");
    assert_eq!(d.image_id("busybox:copied"), id);
}

#[test]
fn skopeo_copy_to_oci_archive_loads_as_the_same_image() {
    let (d, id, dir) = setup();
    let saved = dir.path().join("saved.tar");
    let out = dir.path().join("out-oci.tar");
    d.berth_ok(&["save", "-o", saved.to_str().unwrap(), "busybox:latest"]);
    skopeo_ok(&[
        "copy",
        &format!("docker-archive:{}", saved.display()),
        &format!("oci-archive:{}:busybox:copied2", out.display()),
    ]);
    d.berth_ok(&["rmi", "busybox:latest"]);
    assert!(d.image_ids().is_empty());
    let o = d.berth_ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(o.contains("Loaded image"), "{o}");
    // The config digest survives the docker → OCI conversion only because berth writes its
    // configs in the OCI image-spec shape: containers/image re-serializes the config through
    // Go's `imgspecv1.Image` when it converts a schema2 manifest to OCI, which drops Docker-only
    // keys (container_config, docker_version, top-level comment), drops empty fields and
    // reorders keys to created, author, architecture, os, config, rootfs, history. A config
    // already in that shape comes out byte-identical; any other one gets a new ID.
    assert_eq!(d.image_ids(), vec![id.clone()], "load output: {o}");
    assert_eq!(d.image_id(&id), id);
}

#[test]
fn berth_loads_its_own_oci_archive() {
    let (d, id, dir) = setup();
    let file = dir.path().join("saved-oci.tar");
    d.berth_ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        file.to_str().unwrap(),
        "busybox:latest",
    ]);
    d.berth_ok(&["rmi", "busybox:latest"]);
    let o = d.berth_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(o.contains("Loaded image"), "{o}");
    assert_eq!(d.image_ids(), vec![id]);
}
