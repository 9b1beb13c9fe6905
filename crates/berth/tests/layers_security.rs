//! Malicious layers must be refused: entries that climb out with `..`, absolute paths,
//! writes through a symlink that points outside the layer, and hardlinks to host files
//! (the CVE-2018-15664 / CVE-2019-14271 family of tar path-escape bugs).
//!
//! Each case runs twice, through `berth import` and through `berth load` of a docker-archive
//! whose layer is the malicious tar. The user must see the command fail with the offending
//! entry named, no image created, and nothing outside the daemon's roots touched.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::tarball::{self, Entry};
use common::TestDaemon;

const ORIGINAL: &[u8] = b"original sentinel contents\n";

/// A directory outside every root the daemon uses, holding `file` with known contents.
struct Sentinel {
    dir: tempfile::TempDir,
}

impl Sentinel {
    fn new() -> Sentinel {
        let dir = tempfile::Builder::new()
            .prefix("berth-sentinel-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::write(dir.path().join("file"), ORIGINAL).unwrap();
        Sentinel { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The directory still holds exactly `file`, unchanged, with one link.
    fn assert_untouched(&self, case: &str) {
        let names: Vec<PathBuf> = common::files_under(self.path());
        assert_eq!(
            names,
            vec![PathBuf::from("file")],
            "{case}: sentinel dir changed"
        );
        let f = self.path().join("file");
        let meta = fs::symlink_metadata(&f).unwrap();
        assert!(meta.file_type().is_file(), "{case}: sentinel file replaced");
        assert_eq!(
            meta.nlink(),
            1,
            "{case}: something hardlinked the sentinel file"
        );
        assert_eq!(
            fs::read(&f).unwrap(),
            ORIGINAL,
            "{case}: sentinel file overwritten"
        );
    }
}

/// Facts about a host file that a hardlink attack would change.
fn host_file_fingerprint(p: &str) -> (u64, u64, i64, Vec<u8>) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    (m.ino(), m.nlink(), m.mtime(), fs::read(p).unwrap())
}

/// What a malicious tar looks like and which entry name the error must mention.
struct Case {
    name: &'static str,
    entries: Vec<Entry>,
    offending: String,
}

fn dotdot_case(_s: &Sentinel) -> Case {
    Case {
        name: "dotdot",
        entries: vec![Entry::dir("etc/"), Entry::file("../evil", b"pwned\n")],
        offending: "../evil".into(),
    }
}

fn deep_dotdot_case(s: &Sentinel) -> Case {
    let name = format!("a/../../../../../../../../../..{}/evil", s.path().display());
    Case {
        name: "deep-dotdot",
        entries: vec![Entry::dir("a/"), Entry::file(&name, b"pwned\n")],
        offending: name,
    }
}

fn absolute_case(s: &Sentinel) -> Case {
    let name = format!("{}/evil", s.path().display());
    Case {
        name: "absolute",
        entries: vec![Entry::file(&name, b"pwned\n")],
        offending: name,
    }
}

fn abs_evil_case(_s: &Sentinel) -> Case {
    Case {
        name: "abs-evil",
        entries: vec![Entry::file("/abs/evil", b"pwned\n")],
        offending: "/abs/evil".into(),
    }
}

fn symlink_abs_case(s: &Sentinel) -> Case {
    Case {
        name: "symlink-absolute",
        entries: vec![
            Entry::symlink("link", s.path().to_str().unwrap()),
            Entry::file("link/file", b"pwned through symlink\n"),
        ],
        offending: "link/file".into(),
    }
}

fn symlink_rel_case(s: &Sentinel) -> Case {
    let target = format!("../../../../../../../../../..{}", s.path().display());
    Case {
        name: "symlink-relative",
        entries: vec![
            Entry::dir("d/"),
            Entry::symlink("d/link", &target),
            Entry::file("d/link/new", b"pwned through symlink\n"),
        ],
        offending: "d/link/new".into(),
    }
}

fn hardlink_abs_case(_s: &Sentinel) -> Case {
    Case {
        name: "hardlink-absolute",
        entries: vec![Entry::hardlink("hardlink-x", "/etc/shadow")],
        offending: "hardlink-x".into(),
    }
}

fn hardlink_rel_case(_s: &Sentinel) -> Case {
    Case {
        name: "hardlink-relative",
        entries: vec![
            Entry::dir("a/"),
            Entry::hardlink("a/hardlink-x", "../../../../etc/shadow"),
        ],
        offending: "a/hardlink-x".into(),
    }
}

fn hardlink_sentinel_case(s: &Sentinel) -> Case {
    let target = format!("{}/file", s.path().display());
    Case {
        name: "hardlink-sentinel",
        entries: vec![
            Entry::hardlink("hardlink-x", &target),
            Entry::file("hardlink-x", b"pwned through hardlink\n"),
        ],
        offending: "hardlink-x".into(),
    }
}

enum Via {
    Import,
    Load,
}

fn check(make: fn(&Sentinel) -> Case, via: Via) {
    let d = TestDaemon::builder().start();
    let sentinel = Sentinel::new();
    let case = make(&sentinel);
    let layer = tarball::build(&case.entries);
    let scratch = common::scratch();
    let shadow_before = host_file_fingerprint("/etc/shadow");
    let abs_existed = Path::new("/abs").exists();

    let (label, args): (&str, Vec<String>) = match via {
        Via::Import => {
            let f = scratch.path().join("evil-layer.tar");
            fs::write(&f, &layer).unwrap();
            (
                "import",
                vec![
                    "import".into(),
                    f.display().to_string(),
                    "evil:import".into(),
                ],
            )
        }
        Via::Load => {
            let (archive, _) = tarball::docker_archive(&layer, "evil:load");
            let f = scratch.path().join("evil-archive.tar");
            fs::write(&f, &archive).unwrap();
            (
                "load",
                vec!["load".into(), "-i".into(), f.display().to_string()],
            )
        }
    };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stdout, stderr) = d.berth(&argv);
    let what = format!("{} via {label}", case.name);

    assert!(
        !status.success(),
        "{what}: malicious layer accepted\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains(&case.offending),
        "{what}: error should name the offending entry {:?}; stderr: {stderr}",
        case.offending
    );
    sentinel.assert_untouched(&what);
    assert_eq!(
        host_file_fingerprint("/etc/shadow"),
        shadow_before,
        "{what}: /etc/shadow changed"
    );
    if !abs_existed {
        assert!(
            !Path::new("/abs").exists(),
            "{what}: /abs was created on the host"
        );
    }
    assert!(
        d.image_ids().is_empty(),
        "{what}: an image was created: {:?}",
        d.image_ids()
    );
    let table = d.berth_ok(&["images"]);
    assert!(
        table.lines().skip(1).all(|l| l.trim().is_empty()),
        "{what}: images lists:\n{table}"
    );
    // Nothing named "evil" or written "through" a link lingers anywhere in the data-root.
    let leftovers: Vec<_> = common::files_under(&d.data_root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "evil"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{what}: leftovers in data-root: {leftovers:?}"
    );
    // The daemon is still healthy and can import a good image afterwards.
    d.import(&common::busybox_rootfs(), "busybox:latest");
}

macro_rules! cases {
    ($($name:ident => $make:ident),* $(,)?) => {
        mod import {
            $( #[test] fn $name() { super::check(super::$make, super::Via::Import) } )*
        }
        mod load {
            $( #[test] fn $name() { super::check(super::$make, super::Via::Load) } )*
        }
    };
}

cases! {
    dotdot => dotdot_case,
    deep_dotdot => deep_dotdot_case,
    absolute_path => absolute_case,
    abs_evil => abs_evil_case,
    symlink_absolute_then_write_through => symlink_abs_case,
    symlink_relative_then_write_through => symlink_rel_case,
    hardlink_to_etc_shadow => hardlink_abs_case,
    hardlink_dotdot_to_etc_shadow => hardlink_rel_case,
    hardlink_to_sentinel_then_overwrite => hardlink_sentinel_case,
}

/// A layer that is merely odd but safe (a symlink pointing outside, never written through;
/// a hardlink to an earlier entry) must still be accepted: refusing everything is not safety.
#[test]
fn benign_links_are_accepted() {
    let d = TestDaemon::builder().start();
    let layer = tarball::build(&[
        Entry::dir("etc/"),
        Entry::file("etc/hosts", b"127.0.0.1 localhost\n"),
        Entry::symlink("etc/mtab", "/proc/mounts"),
        Entry::symlink("up", "../../.."),
        Entry::hardlink("etc/hosts.bak", "etc/hosts"),
    ]);
    let scratch = common::scratch();
    let f = scratch.path().join("benign.tar");
    fs::write(&f, &layer).unwrap();
    d.berth_ok(&["import", f.to_str().unwrap(), "benign:latest"]);
    let v = d.inspect("benign:latest");
    assert_eq!(
        v["RootFS"]["Layers"][0],
        format!("sha256:{}", common::sha256_hex(&layer))
    );

    let (archive, id) = tarball::docker_archive(&layer, "benign:loaded");
    let f = scratch.path().join("benign-archive.tar");
    fs::write(&f, &archive).unwrap();
    let out = d.berth_ok(&["load", "-i", f.to_str().unwrap()]);
    assert!(out.contains("Loaded image: benign:loaded"), "{out}");
    assert_eq!(d.image_id("benign:loaded"), id);
}
