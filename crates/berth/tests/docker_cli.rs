//! The stock docker CLI (28.x) driving berth through `DOCKER_HOST`: the Engine API contract
//! as a real client exercises it (version negotiation, JSON progress streams, tar bodies).

mod common;

use common::{images_row, is_image_id, sha256_file, short_id, TestDaemon};

#[test]
fn docker_version_reports_server() {
    let d = TestDaemon::builder().start();
    let out = d.docker_ok(&["version"]);
    assert!(out.contains("Server:"), "{out}");
    let server = out.split("Server:").nth(1).unwrap();
    assert!(server.contains("API version:"), "{out}");
    assert!(server.contains("minimum version 1.24"), "{out}");
    let api = d.api_full("GET", "/_ping", None, &[]);
    let v = api.header("api-version").expect("Api-Version header");
    assert!(
        server.contains(v),
        "server API version {v} not shown: {out}"
    );

    let fmt = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(fmt.trim(), v);
}

#[test]
fn docker_info_counts_images() {
    let d = TestDaemon::builder().start();
    let out = d.docker_ok(&["info"]);
    assert!(out.contains("Server:"), "{out}");
    assert!(out.contains("Images: 0"), "{out}");
    d.import(&common::busybox_rootfs(), "busybox:latest");
    let out = d.docker_ok(&["info", "--format", "{{.Images}}"]);
    assert_eq!(out.trim(), "1");
    let root = d.docker_ok(&["info", "--format", "{{.DockerRootDir}}"]);
    assert_eq!(root.trim(), d.data_root.to_str().unwrap());
}

#[test]
fn docker_import_images_inspect_history() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    let out = d.docker_ok(&["import", rootfs.to_str().unwrap(), "busybox:latest"]);
    let id = out.trim().to_string();
    assert!(
        is_image_id(&id),
        "docker import prints the image ID: {out:?}"
    );

    let table = d.docker_ok(&["images"]);
    let row = images_row(&table, "busybox", "latest").unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row[2], short_id(&id));

    let out = d.docker_ok(&["image", "inspect", "busybox:latest"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(
        v[0]["RootFS"]["Layers"][0],
        format!("sha256:{}", sha256_file(&rootfs))
    );
    let f = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        &id,
    ]);
    assert_eq!(f.trim(), format!("linux/{}", common::tarball::go_arch()));

    let out = d.docker_ok(&["history", "busybox:latest"]);
    assert!(
        out.lines()
            .next()
            .unwrap_or_default()
            .contains("CREATED BY"),
        "{out}"
    );
    assert!(out.contains(short_id(&id)), "{out}");
    let q = d.docker_ok(&["images", "-q"]);
    assert_eq!(q.trim(), short_id(&id));
}

#[test]
fn docker_import_from_stdin_with_changes() {
    let d = TestDaemon::builder().start();
    let data = std::fs::read(common::busybox_rootfs()).unwrap();
    let o = d.docker_out(
        &[
            "import",
            "-c",
            "ENV A=b",
            "-c",
            r#"CMD ["/bin/sh"]"#,
            "-",
            "busybox:stdin",
        ],
        Some(data),
    );
    assert!(o.status.success(), "{}", o.stderr);
    let v = d.inspect("busybox:stdin");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("A=b")));
}

#[test]
fn docker_tag_and_rmi() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    d.docker_ok(&["tag", "busybox:latest", "localhost:5000/bb:1"]);
    let table = d.docker_ok(&["images"]);
    let row = images_row(&table, "localhost:5000/bb", "1").unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row[2], short_id(&id));
    // What the berth CLI sees agrees.
    assert_eq!(d.image_id("localhost:5000/bb:1"), id);

    let out = d.docker_ok(&["rmi", "localhost:5000/bb:1"]);
    assert!(out.contains("Untagged: localhost:5000/bb:1"), "{out}");
    let (st, _, err) = d.docker(&["rmi", "localhost:5000/bb:1"]);
    assert!(!st.success());
    assert!(err.contains("localhost:5000/bb:1"), "{err}");

    d.docker_ok(&["tag", "busybox:latest", "busybox:two"]);
    let (st, _, err) = d.docker(&["rmi", short_id(&id)]);
    assert!(
        !st.success(),
        "rmi of a doubly tagged ID without -f must fail"
    );
    assert!(
        err.contains("conflict") || err.contains("must be forced"),
        "{err}"
    );
    let out = d.docker_ok(&["rmi", "-f", &id]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(d.docker_ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn docker_save_and_load() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    let dir = common::scratch();
    let file = dir.path().join("bb.tar");
    d.docker_ok(&["save", "-o", file.to_str().unwrap(), "busybox:latest"]);
    let data = std::fs::read(&file).unwrap();
    let names = common::tarball::entry_names(&data);
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "manifest.json"),
        "{names:?}"
    );

    d.docker_ok(&["rmi", "busybox:latest"]);
    let out = d.docker_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(d.image_id("busybox:latest"), id);

    // save to stdout, load from stdin.
    let saved = d.docker_out(&["save", "busybox:latest"], None);
    assert!(saved.status.success(), "{}", saved.stderr);
    d.docker_ok(&["rmi", "busybox:latest"]);
    let o = d.docker_out(&["load"], Some(saved.stdout));
    assert!(o.status.success(), "{}", o.stderr);
    assert!(
        o.stdout_str().contains("Loaded image: busybox:latest"),
        "{}",
        o.stdout_str()
    );
    assert_eq!(d.image_id("busybox:latest"), id);
}

#[test]
fn docker_errors_for_missing_image() {
    let d = TestDaemon::builder().start();
    let (st, _, err) = d.docker(&["image", "inspect", "nope:missing"]);
    assert!(!st.success());
    assert!(err.contains("nope:missing"), "{err}");
    let (st, _, err) = d.docker(&["history", "nope:missing"]);
    assert!(!st.success());
    assert!(err.contains("nope"), "{err}");
}
