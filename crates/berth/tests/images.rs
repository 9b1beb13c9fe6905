//! Image commands through the berth CLI: import, images, inspect, save/load, tag/rmi,
//! history, import changes, prune, system df.

mod common;

use common::{images_row, is_image_id, sha256_file, short_id, TestDaemon};

#[test]
fn import_lists_busybox_latest() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    let out = d.berth_ok(&["import", rootfs.to_str().unwrap(), "busybox:latest"]);
    let printed = out.trim();
    assert!(
        is_image_id(printed),
        "import should print the new image ID, printed {out:?}"
    );

    let table = d.berth_ok(&["images"]);
    let header = table.lines().next().unwrap_or_default();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "images header lacks {col}: {table}");
    }
    let row = images_row(&table, "busybox", "latest")
        .unwrap_or_else(|| panic!("no busybox/latest row in:\n{table}"));
    assert_eq!(
        row[2].len(),
        12,
        "IMAGE ID column should be 12 hex digits: {row:?}"
    );
    assert!(row[2].bytes().all(|c| c.is_ascii_hexdigit()), "{row:?}");
    assert_eq!(
        row[2],
        short_id(printed),
        "images shows a different ID than import printed"
    );
    assert_eq!(d.image_id("busybox:latest"), printed);
}

#[test]
fn inspect_shows_one_layer_whose_diff_id_is_the_tar_digest() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    d.import(&rootfs, "busybox:latest");
    let v = d.inspect("busybox:latest");
    assert_eq!(v["RootFS"]["Type"], "layers", "{v:#}");
    let layers = v["RootFS"]["Layers"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(layers.len(), 1, "{v:#}");
    assert_eq!(layers[0], format!("sha256:{}", sha256_file(&rootfs)));
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], common::tarball::go_arch());
    let tags = v["RepoTags"].as_array().unwrap();
    assert_eq!(tags, &vec![serde_json::json!("busybox:latest")]);
    assert!(
        v["Size"].as_u64().unwrap_or(0) > 1_000_000,
        "busybox is ~2 MB: {}",
        v["Size"]
    );
    // By ID and by short ID too.
    let id = v["Id"].as_str().unwrap();
    assert_eq!(d.image_id(id), id);
    assert_eq!(d.image_id(short_id(id)), id);
}

#[test]
fn save_load_round_trips_to_the_same_id() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");

    // save to stdout | load from stdin, image still present
    let saved = d.berth_out(&["save", "busybox:latest"], None);
    assert!(saved.status.success(), "save: {}", saved.stderr);
    assert!(
        saved.stdout.len() > 1_000_000,
        "saved archive is only {} bytes",
        saved.stdout.len()
    );
    let names = common::tarball::entry_names(&saved.stdout);
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "manifest.json"),
        "{names:?}"
    );
    let loaded = d.berth_out(&["load"], Some(saved.stdout.clone()));
    assert!(loaded.status.success(), "load: {}", loaded.stderr);
    assert!(
        loaded.stdout_str().contains("Loaded image: busybox:latest"),
        "{}",
        loaded.stdout_str()
    );
    assert_eq!(d.image_id("busybox:latest"), id);

    // save -o, rmi, load -i
    let scratch = common::scratch();
    let file = scratch.path().join("busybox.tar");
    d.berth_ok(&["save", "-o", file.to_str().unwrap(), "busybox:latest"]);
    assert_eq!(std::fs::read(&file).unwrap().len(), saved.stdout.len());
    d.berth_ok(&["rmi", "busybox:latest"]);
    assert!(
        d.image_ids().is_empty(),
        "rmi left images behind: {:?}",
        d.image_ids()
    );
    let out = d.berth_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(d.image_id("busybox:latest"), id);
    assert_eq!(d.image_ids(), vec![id]);
}

#[test]
fn tag_then_rmi_untags_and_deletes() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");

    d.berth_ok(&["tag", "busybox:latest", "example.com/team/bb:v1"]);
    let table = d.berth_ok(&["images"]);
    let a = images_row(&table, "busybox", "latest").unwrap_or_else(|| panic!("{table}"));
    let b = images_row(&table, "example.com/team/bb", "v1").unwrap_or_else(|| panic!("{table}"));
    assert_eq!(a[2], b[2], "both tags name the same image:\n{table}");
    assert_eq!(d.image_id("example.com/team/bb:v1"), id);

    // rmi of one tag of two only untags.
    let out = d.berth_ok(&["rmi", "example.com/team/bb:v1"]);
    assert!(out.contains("Untagged: example.com/team/bb:v1"), "{out}");
    assert!(
        !out.contains("Deleted:"),
        "untagging one of two tags must not delete: {out}"
    );
    assert_eq!(d.image_id("busybox:latest"), id);
    let (st, _, err) = d.berth(&["image", "inspect", "example.com/team/bb:v1"]);
    assert!(!st.success(), "untagged reference still resolves");
    assert!(err.contains("example.com/team/bb:v1"), "{err}");

    // rmi by ID while two tags point at it needs -f.
    d.berth_ok(&["tag", "busybox:latest", "busybox:other"]);
    let (st, out, err) = d.berth(&["rmi", short_id(&id)]);
    assert!(
        !st.success(),
        "rmi of a multiply-tagged ID without -f must fail: {out}"
    );
    let lower = err.to_lowercase();
    assert!(
        lower.contains("conflict") || lower.contains("must be forced"),
        "expected a conflict message, got: {err}"
    );
    assert_eq!(d.image_id("busybox:other"), id);

    let out = d.berth_ok(&["rmi", "-f", short_id(&id)]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains("Untagged: busybox:other"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(d.image_ids().is_empty());
    assert!(images_row(&d.berth_ok(&["images"]), "busybox", "latest").is_none());
}

#[test]
fn rmi_of_last_tag_deletes_the_image() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    let out = d.berth_ok(&["rmi", "busybox:latest"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    let (st, _, err) = d.berth(&["rmi", "busybox:latest"]);
    assert!(!st.success());
    assert!(
        err.contains("busybox:latest") || err.contains("busybox"),
        "{err}"
    );
}

#[test]
fn history_shows_the_imported_layer() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    let out = d.berth_ok(&["history", "busybox:latest"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for col in ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"] {
        assert!(header.contains(col), "history header lacks {col}: {out}");
    }
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        rows.len(),
        1,
        "an imported image has one history entry: {out}"
    );
    assert!(rows[0].starts_with(short_id(&id)), "{out}");
    assert!(
        rows[0].contains("MB") || rows[0].contains("kB"),
        "size column missing: {out}"
    );

    let (st, _, err) = d.berth(&["history", "nope:nope"]);
    assert!(!st.success());
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn import_with_changes_sets_config() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    d.berth_ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        "-c",
        "ENV A=b",
        "-m",
        "from the tests",
        rootfs.to_str().unwrap(),
        "busybox:changes",
    ]);
    let v = d.inspect("busybox:changes");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/sh"]), "{v:#}");
    let env = v["Config"]["Env"]
        .as_array()
        .unwrap_or_else(|| panic!("no Env: {v:#}"));
    assert!(env.contains(&serde_json::json!("A=b")), "{env:?}");
    assert_eq!(v["Comment"], "from the tests", "{v:#}");
}

#[test]
fn import_from_stdin() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    let data = std::fs::read(&rootfs).unwrap();
    let o = d.berth_out(&["import", "-", "busybox:stdin"], Some(data));
    assert!(o.status.success(), "{}", o.stderr);
    let v = d.inspect("busybox:stdin");
    assert_eq!(
        v["RootFS"]["Layers"][0],
        format!("sha256:{}", sha256_file(&rootfs))
    );
}

#[test]
fn image_prune_removes_dangling_images() {
    let d = TestDaemon::builder().start();
    let rootfs = common::busybox_rootfs();
    let old = d.import(&rootfs, "busybox:latest");
    // A second import with a different config takes the tag; the first becomes dangling.
    d.berth_ok(&[
        "import",
        "-c",
        "ENV GENERATION=2",
        rootfs.to_str().unwrap(),
        "busybox:latest",
    ]);
    let new = d.image_id("busybox:latest");
    assert_ne!(old, new);
    let table = d.berth_ok(&["images"]);
    let dangling = images_row(&table, "<none>", "<none>").unwrap_or_else(|| panic!("{table}"));
    assert_eq!(dangling[2], short_id(&old));

    let out = d.berth_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(out.contains(&format!("deleted: {old}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(d.image_ids(), vec![new.clone()]);
    // Gone: inspect runs and finds no such image.
    d.berth_must_fail(
        &["image", "inspect", &old],
        1,
        &[&format!("No such image: {old}")],
    );

    // Nothing left to prune: still succeeds, tagged image kept.
    let out = d.berth_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(d.image_id("busybox:latest"), new);
}

#[test]
fn system_df_counts_images() {
    let d = TestDaemon::builder().start();
    let images_total = |d: &TestDaemon| -> String {
        let out = d.berth_ok(&["system", "df"]);
        let row = out
            .lines()
            .find(|l| l.starts_with("Images"))
            .unwrap_or_else(|| panic!("no Images row in system df:\n{out}"));
        row.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(images_total(&d), "0");
    let rootfs = common::busybox_rootfs();
    d.import(&rootfs, "busybox:latest");
    assert_eq!(images_total(&d), "1");
    d.berth_ok(&["tag", "busybox:latest", "busybox:again"]);
    assert_eq!(images_total(&d), "1", "a second tag is not a second image");
    d.berth_ok(&[
        "import",
        "-c",
        "ENV X=1",
        rootfs.to_str().unwrap(),
        "other:latest",
    ]);
    assert_eq!(images_total(&d), "2");
}

#[test]
fn unknown_image_errors_name_the_reference() {
    let d = TestDaemon::builder().start();
    let scratch = common::scratch();
    let out = scratch.path().join("out.tar");
    for args in [
        vec!["image", "inspect", "nope:missing"],
        vec!["rmi", "nope:missing"],
        vec!["tag", "nope:missing", "x:y"],
        vec!["history", "nope:missing"],
        vec!["save", "-o", out.to_str().unwrap(), "nope:missing"],
    ] {
        let (st, out, err) = d.berth(&args);
        assert!(!st.success(), "{args:?} succeeded: {out}");
        assert!(
            err.contains("nope"),
            "{args:?}: error should name the image: {err}"
        );
    }
}
