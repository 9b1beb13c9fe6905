//! Image store behavior through its public API, on a real file system.

use std::io::Cursor;

use berth_core::{ErrorKind, HasKind, Reference};
use berth_image::{ImageStore, ImportOptions, Removed, SaveFormat};

fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    let data = b"#!/bin/sh\necho hi\n";
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/hello", &data[..]).unwrap();
    b.into_inner().unwrap()
}

fn import(store: &ImageStore, tag: &str, changes: &[&str]) -> berth_core::Digest {
    store
        .import(
            Box::new(Cursor::new(rootfs_tar())),
            ImportOptions {
                tag: Some(Reference::parse_normalized(tag).unwrap()),
                changes: changes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .unwrap()
}

#[test]
fn import_save_load_round_trip_keeps_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import(&store, "busybox", &["CMD [\"/bin/hello\"]"]);
    let info = store.info(&store.resolve("busybox").unwrap()).unwrap();
    assert_eq!(info.id(), &id);
    assert_eq!(
        info.config.config.as_ref().unwrap().cmd.as_ref().unwrap(),
        &vec!["/bin/hello".to_string()]
    );
    assert_eq!(
        info.config.rootfs.diff_ids[0],
        berth_core::Digest::sha256_of(&rootfs_tar())
    );
    assert!(store.layer_dirs(&id).unwrap()[0]
        .join("bin/hello")
        .is_file());

    for format in [SaveFormat::Docker, SaveFormat::Oci] {
        let plan = store.plan_save(&["busybox:latest".to_string()]).unwrap();
        let mut archive = Vec::new();
        store.write_save(&plan, format, &mut archive).unwrap();

        let other = tempfile::tempdir().unwrap();
        let store2 = ImageStore::open(other.path()).unwrap();
        let loaded = store2.load(Box::new(Cursor::new(archive))).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].id, id);
        assert_eq!(loaded[0].tags[0].familiar(), "busybox:latest");
        assert_eq!(store2.resolve("busybox").unwrap(), id);
    }
}

#[test]
fn rmi_untags_then_deletes_and_collects_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let id = import(&store, "a", &[]);
    store
        .tag("a", &Reference::parse_normalized("b:1").unwrap())
        .unwrap();
    let err = store.remove(id.short(), false, &|_| None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        store.remove("b:1", false, &|_| None).unwrap(),
        vec![Removed::Untagged("b:1".into())]
    );
    let r = store.remove("a", false, &|_| None).unwrap();
    assert_eq!(
        r,
        vec![
            Removed::Untagged("a:latest".into()),
            Removed::Deleted(id.clone())
        ]
    );
    assert!(store.content().list().unwrap().is_empty());
    assert!(store.snapshots().list().unwrap().is_empty());
    assert_eq!(store.resolve("a").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn retagging_leaves_a_dangling_image_that_prune_removes() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let first = import(&store, "app", &[]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = import(&store, "app", &[]);
    assert_ne!(first, second);
    let (removed, _) = store.prune(false, &|_| false, &|_| None).unwrap();
    assert_eq!(removed, vec![Removed::Deleted(first)]);
    assert_eq!(store.list().unwrap().len(), 1);
    // The shared layer blob is still there for the remaining image.
    assert_eq!(store.content().list().unwrap().len(), 2);
}

#[test]
fn bad_change_fails_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let err = store
        .import(
            Box::new(Cursor::new(rootfs_tar())),
            ImportOptions {
                changes: vec!["RUN x".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("RUN x"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(store.content().list().unwrap().is_empty());
}
