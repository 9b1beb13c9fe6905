//! Tests for layer apply and diff. They run as root (mknod, chown and
//! `trusted.*` xattrs need it) and assert that instead of skipping.

use super::*;
use crate::write_layer_from_dir;
use berth_core::{ErrorKind, HasKind};
use filetime::FileTime;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tar::{Builder, Header};

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (mknod, chown, trusted.* xattrs)"
    );
}

/// Appends an entry with raw name bytes, so tests can build archives the
/// tar crate's own path checks would refuse.
fn raw(b: &mut Builder<Vec<u8>>, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(build: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

/// A scratch area: `dest` to apply into and a sentinel dir `outside` next
/// to it, plus a fingerprint of everything outside `dest`.
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        assert_root();
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("dest")).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/sentinel"), "untouched").unwrap();
        fs::write(tmp.path().join("outside/passwd"), "root:x:0:0").unwrap();
        Scratch { tmp }
    }
    fn dest(&self) -> PathBuf {
        self.tmp.path().join("dest")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    /// Everything in the scratch dir except `dest`, with contents.
    fn fingerprint(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(base).unwrap().to_owned();
                if rel == Path::new("dest") {
                    continue;
                }
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    out.insert(rel, b"<dir>".to_vec());
                    walk(&p, base, out);
                } else {
                    let mut v = fs::read(&p).unwrap_or_default();
                    v.extend(format!(" mode={:o} nlink={}", m.mode(), m.nlink()).into_bytes());
                    out.insert(rel, v);
                }
            }
        }
        walk(self.tmp.path(), self.tmp.path(), &mut out);
        out
    }

    /// Applies `tar`, expects a refusal mentioning `entry`, and checks that
    /// nothing outside `dest` changed.
    fn expect_refused(&self, tar: &[u8], entry: &str) -> LayerError {
        let before = self.fingerprint();
        let err = apply_layer(Cursor::new(tar), &self.dest()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("\"{entry}\"")),
            "error {msg:?} does not name {entry:?}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{msg}");
        assert_eq!(before, self.fingerprint(), "something outside dest changed");
        err
    }
}

#[test]
fn refuses_parent_dir_entry() {
    let s = Scratch::new();
    let tar = tar_of(|b| raw(b, b"../x", EntryType::Regular, b"", b"evil"));
    let err = s.expect_refused(&tar, "../x");
    assert_eq!(
        err.to_string(),
        r#"layer entry "../x" escapes the layer root (contains "..")"#
    );
    let tar = tar_of(|b| raw(b, b"a/../../x", EntryType::Regular, b"", b"evil"));
    s.expect_refused(&tar, "a/../../x");
}

#[test]
fn refuses_absolute_entry() {
    let s = Scratch::new();
    let name = format!("/etc/berth-escape-test-{}", std::process::id());
    let tar = tar_of(|b| raw(b, name.as_bytes(), EntryType::Regular, b"", b"evil"));
    let err = s.expect_refused(&tar, &name);
    assert!(err.to_string().contains("is absolute"), "{err}");
    assert!(!Path::new(&name).exists());
}

#[test]
fn refuses_write_through_absolute_symlink() {
    let s = Scratch::new();
    let probe = format!("berth-escape-test-{}", std::process::id());
    let tar = tar_of(|b| {
        raw(b, b"a", EntryType::Symlink, b"/etc", b"");
        raw(
            b,
            format!("a/{probe}").as_bytes(),
            EntryType::Regular,
            b"",
            b"evil",
        );
    });
    let err = s.expect_refused(&tar, &format!("a/{probe}"));
    assert!(
        err.to_string().contains(r#"passes through symlink "a""#),
        "{err}"
    );
    assert!(!Path::new("/etc").join(&probe).exists());

    // The same through a symlink to the sentinel dir, overwriting a file.
    let s = Scratch::new();
    let outside = s.outside();
    let tar = tar_of(|b| {
        raw(b, b"etc", EntryType::Directory, b"", b"");
        raw(
            b,
            b"etc/a",
            EntryType::Symlink,
            outside.as_os_str().as_bytes(),
            b"",
        );
        raw(b, b"etc/a/passwd", EntryType::Regular, b"", b"evil");
    });
    s.expect_refused(&tar, "etc/a/passwd");
}

#[test]
fn refuses_write_through_relative_symlink() {
    let s = Scratch::new();
    let tar = tar_of(|b| {
        raw(b, b"a", EntryType::Symlink, b"..", b"");
        raw(b, b"a/x", EntryType::Regular, b"", b"evil");
    });
    s.expect_refused(&tar, "a/x");
    // Also for directories, and when the symlink replaced a directory.
    let s = Scratch::new();
    let tar = tar_of(|b| {
        raw(b, b"d", EntryType::Directory, b"", b"");
        raw(b, b"d/keep", EntryType::Regular, b"", b"");
        raw(b, b"d", EntryType::Symlink, b"../outside", b"");
        raw(b, b"d/newdir", EntryType::Directory, b"", b"");
    });
    s.expect_refused(&tar, "d/newdir");
}

#[test]
fn refuses_escaping_hardlinks() {
    let s = Scratch::new();
    let tar = tar_of(|b| raw(b, b"x", EntryType::Link, b"/etc/shadow", b""));
    let err = s.expect_refused(&tar, "x");
    assert!(
        err.to_string()
            .contains(r#"hardlink target "/etc/shadow" is absolute"#),
        "{err}"
    );

    let tar = tar_of(|b| raw(b, b"x", EntryType::Link, b"../../etc/shadow", b""));
    let err = s.expect_refused(&tar, "x");
    assert!(err.to_string().contains(r#"contains "..""#), "{err}");

    let outside = s.outside();
    let tar = tar_of(|b| {
        raw(
            b,
            b"o",
            EntryType::Symlink,
            outside.as_os_str().as_bytes(),
            b"",
        );
        raw(b, b"x", EntryType::Link, b"o/passwd", b"");
    });
    let err = s.expect_refused(&tar, "x");
    assert!(err.to_string().contains("passes through symlink"), "{err}");

    let tar = tar_of(|b| raw(b, b"x", EntryType::Link, b"missing", b""));
    let err = s.expect_refused(&tar, "x");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!s.dest().join("x").exists());
}

#[test]
fn file_replaces_symlink_instead_of_following_it() {
    let s = Scratch::new();
    let sentinel = s.outside().join("sentinel");
    let tar = tar_of(|b| {
        raw(
            b,
            b"link",
            EntryType::Symlink,
            sentinel.as_os_str().as_bytes(),
            b"",
        );
        raw(b, b"link", EntryType::Regular, b"", b"replaced");
        raw(
            b,
            b"dirlink",
            EntryType::Symlink,
            s.outside().as_os_str().as_bytes(),
            b"",
        );
        raw(b, b"dirlink", EntryType::Directory, b"", b"");
        raw(b, b"dirlink/sentinel", EntryType::Regular, b"", b"inside");
    });
    let before = s.fingerprint();
    apply_layer(Cursor::new(tar), &s.dest()).unwrap();
    assert_eq!(before, s.fingerprint());
    let link = s.dest().join("link");
    assert!(fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(fs::read(link).unwrap(), b"replaced");
    assert!(fs::symlink_metadata(s.dest().join("dirlink"))
        .unwrap()
        .is_dir());
    assert_eq!(
        fs::read(s.dest().join("dirlink/sentinel")).unwrap(),
        b"inside"
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    let s = Scratch::new();
    let tar = tar_of(|b| {
        raw(b, b"d", EntryType::Directory, b"", b"");
        raw(b, b"d/child", EntryType::Regular, b"", b"1");
        raw(b, b"d", EntryType::Directory, b"", b""); // kept, with its child
        raw(b, b"e", EntryType::Directory, b"", b"");
        raw(b, b"e/child", EntryType::Regular, b"", b"1");
        raw(b, b"e", EntryType::Regular, b"", b"now a file");
        raw(b, b"f", EntryType::Regular, b"", b"file");
        raw(b, b"f", EntryType::Directory, b"", b"");
        raw(b, b"g", EntryType::Regular, b"", b"old");
        raw(b, b"g", EntryType::Regular, b"", b"new");
    });
    let stats = apply_layer(Cursor::new(tar), &s.dest()).unwrap();
    assert_eq!(stats.entries, 10);
    let d = s.dest();
    assert_eq!(fs::read(d.join("d/child")).unwrap(), b"1");
    assert_eq!(fs::read(d.join("e")).unwrap(), b"now a file");
    assert!(d.join("f").is_dir());
    assert_eq!(fs::read(d.join("g")).unwrap(), b"new");
}

#[test]
fn refuses_unsupported_entry_types() {
    let s = Scratch::new();
    let tar = tar_of(|b| raw(b, b"vol", EntryType::new(b'V'), b"", b""));
    let err = s.expect_refused(&tar, "vol");
    assert!(err.to_string().contains("unsupported type"), "{err}");
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let s = Scratch::new();
    let tar = tar_of(|b| {
        raw(b, b"a", EntryType::Directory, b"", b"");
        raw(b, b"a/b", EntryType::Regular, b"", b"same layer");
        raw(b, b"a/.wh.b", EntryType::Regular, b"", b"");
        raw(b, b"a/.wh.c", EntryType::Regular, b"", b"");
        raw(b, b"x/.wh..wh..opq", EntryType::Regular, b"", b"");
        raw(b, b".wh..wh.plnk", EntryType::Directory, b"", b"");
    });
    apply_layer(Cursor::new(tar), &s.dest()).unwrap();
    let d = s.dest();
    for wh in ["a/b", "a/c"] {
        let m = fs::symlink_metadata(d.join(wh)).unwrap();
        assert!(m.file_type().is_char_device(), "{wh}");
        assert_eq!(m.rdev(), 0, "{wh}");
    }
    assert_eq!(
        xattr::get(d.join("x"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let mut names: Vec<_> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "x"]);
    assert!(!d.join("a/.wh.b").exists());
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    let s = Scratch::new();
    let mut b = Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Directory);
    h.set_path("forged/").unwrap();
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    let body = crate::diff::pax_body(&[
        (
            b"SCHILY.xattr.trusted.overlay.opaque".to_vec(),
            b"y".to_vec(),
        ),
        (
            b"SCHILY.xattr.trusted.overlay.redirect".to_vec(),
            b"/etc".to_vec(),
        ),
        (b"SCHILY.xattr.user.kept".to_vec(), b"v".to_vec()),
    ]);
    let mut pax = Header::new_ustar();
    pax.set_entry_type(EntryType::XHeader);
    pax.set_size(body.len() as u64);
    pax.set_cksum();
    b.append(&pax, &body[..]).unwrap();
    b.append(&h, io::empty()).unwrap();
    let tar = b.into_inner().unwrap();
    apply_layer(Cursor::new(tar), &s.dest()).unwrap();
    let dir = s.dest().join("forged");
    assert_eq!(xattr::get(&dir, OVERLAY_OPAQUE_XATTR).unwrap(), None);
    assert_eq!(xattr::get(&dir, "trusted.overlay.redirect").unwrap(), None);
    assert_eq!(
        xattr::get(&dir, "user.kept").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// Reads through `inner` while hashing every byte handed out.
struct Tee<R> {
    inner: R,
    hash: Sha256,
}
impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[test]
fn drains_stream_to_eof() {
    let s = Scratch::new();
    let mut tar = tar_of(|b| {
        raw(b, b"f", EntryType::Regular, b"", &[7u8; 3000]);
        raw(b, b"d", EntryType::Directory, b"", b"");
    });
    // Blocking padding as GNU tar writes it (records of 10240 bytes), and
    // then some.
    tar.resize(tar.len().div_ceil(10240) * 10240 + 4096, 0);
    let mut tee = Tee {
        inner: Cursor::new(tar.clone()),
        hash: Sha256::new(),
    };
    let stats = apply_layer(&mut tee, &s.dest()).unwrap();
    assert_eq!(
        stats,
        ApplyStats {
            entries: 2,
            size: 3000
        }
    );
    assert_eq!(tee.inner.position() as usize, tar.len());
    assert_eq!(tee.hash.finalize(), Sha256::digest(&tar));
}

#[test]
fn applies_gzip_and_zstd_layers() {
    let tar = tar_of(|b| raw(b, b"hello", EntryType::Regular, b"", b"world"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for blob in [gz, zst, tar.clone()] {
        let s = Scratch::new();
        let reader = crate::decompressed(Cursor::new(blob)).unwrap();
        apply_layer(reader, &s.dest()).unwrap();
        assert_eq!(fs::read(s.dest().join("hello")).unwrap(), b"world");
    }
}

// ---- diff and round trip ----

#[derive(Debug, PartialEq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    content: Vec<u8>,
    rdev: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// Everything about a tree that a layer must preserve, plus hardlink groups.
fn describe(root: &Path) -> (BTreeMap<PathBuf, Node>, BTreeSet<Vec<PathBuf>>) {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    fn walk(
        dir: &Path,
        root: &Path,
        nodes: &mut BTreeMap<PathBuf, Node>,
        inodes: &mut BTreeMap<u64, Vec<PathBuf>>,
    ) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let (kind, content) = if ft.is_dir() {
                ("dir", Vec::new())
            } else if ft.is_file() {
                ("file", fs::read(&p).unwrap())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    fs::read_link(&p).unwrap().into_os_string().into_vec(),
                )
            } else if ft.is_char_device() {
                ("char", Vec::new())
            } else if ft.is_block_device() {
                ("block", Vec::new())
            } else {
                ("fifo", Vec::new())
            };
            let xattrs = xattr::list(&p)
                .unwrap()
                .map(|n| {
                    (
                        n.to_string_lossy().into_owned(),
                        xattr::get(&p, &n).unwrap().unwrap(),
                    )
                })
                .collect();
            if !ft.is_dir() {
                inodes.entry(m.ino()).or_default().push(rel.clone());
            }
            nodes.insert(
                rel,
                Node {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    // Symlink mtimes are not compared: the fixture cannot
                    // easily give every link a fixed time and tar keeps
                    // whole seconds only.
                    mtime: if ft.is_symlink() { 0 } else { m.mtime() },
                    content,
                    rdev: m.rdev(),
                    xattrs,
                },
            );
            if ft.is_dir() {
                walk(&p, root, nodes, inodes);
            }
        }
    }
    walk(root, root, &mut nodes, &mut inodes);
    let groups = inodes.into_values().filter(|g| g.len() > 1).map(|mut g| {
        g.sort();
        g
    });
    (nodes, groups.collect())
}

use std::os::unix::ffi::OsStringExt;

fn set_time(p: &Path, secs: i64) {
    filetime::set_symlink_file_times(
        p,
        FileTime::from_unix_time(secs, 0),
        FileTime::from_unix_time(secs, 0),
    )
    .unwrap();
}

/// A rootfs with one of everything.
fn fixture(root: &Path) {
    use std::os::unix::fs::{lchown, symlink, PermissionsExt};
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    for d in ["bin", "etc", "home/user", "tmp", "dev", "shared", "run"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/empty"), "").unwrap();
    fs::write(root.join("bin/busybox"), vec![0xABu8; 200_000]).unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("bin/ls")).unwrap();
    fs::hard_link(root.join("bin/busybox"), root.join("etc/ls-too")).unwrap();
    symlink("busybox", root.join("bin/sh")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    let long_target = format!("../{}", "t".repeat(150));
    symlink(&long_target, root.join("bin/long-link")).unwrap();
    fs::write(root.join("bin/su"), "su").unwrap();
    mode(&root.join("bin/su"), 0o4755);
    fs::write(root.join("home/user/.profile"), "export PS1").unwrap();
    lchown(root.join("home/user/.profile"), Some(1000), Some(1001)).unwrap();
    lchown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
    lchown(root.join("bin/sh"), Some(5), Some(6)).unwrap();
    mode(&root.join("home/user"), 0o700);
    mode(&root.join("tmp"), 0o1777);
    mode(&root.join("shared"), 0o2775);
    nix::sys::stat::mknod(
        &root.join("dev/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &root.join("dev/loop0"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        makedev(7, 0),
    )
    .unwrap();
    nix::unistd::mkfifo(&root.join("run/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    mode(&root.join("dev/null"), 0o666);
    mode(&root.join("run/fifo"), 0o600);
    xattr::set(root.join("etc/passwd"), "user.checksum", b"\x00binary\xff").unwrap();
    xattr::set(root.join("shared"), "user.dir", b"yes").unwrap();
    xattr::set(root.join("bin/su"), "security.capability", &cap_net_raw()).unwrap();
    let deep = root.join("deep").join("n".repeat(90)).join("m".repeat(90));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("f".repeat(120)), "long").unwrap();
    // Times last, deepest first, since creating children touches parents.
    let mut all = Vec::new();
    fn collect(p: &Path, all: &mut Vec<PathBuf>) {
        for e in fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                collect(&p, all);
            }
            all.push(p);
        }
    }
    collect(root, &mut all);
    for (i, p) in all.iter().enumerate() {
        set_time(p, 1_500_000_000 + i as i64 * 1000);
    }
}

/// A VFS_CAP_REVISION_2 `security.capability` value granting cap_net_raw.
fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(0x0200_0001u32.to_le_bytes()); // revision 2, effective
    v.extend((1u32 << 13).to_le_bytes()); // permitted lo: CAP_NET_RAW
    v.extend(0u32.to_le_bytes()); // inheritable lo
    v.extend(0u32.to_le_bytes()); // permitted hi
    v.extend(0u32.to_le_bytes()); // inheritable hi
    v
}

#[test]
fn round_trip_preserves_tree() {
    assert_root();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dst).unwrap();
    fixture(&src);
    let tar = write_layer_from_dir(&src, Vec::new()).unwrap();
    // Deterministic.
    assert_eq!(tar, write_layer_from_dir(&src, Vec::new()).unwrap());
    let stats = apply_layer(Cursor::new(&tar), &dst).unwrap();
    assert_eq!(stats.size, 30 + 200_000 + 2 + 10 + 4);

    let (want, want_links) = describe(&src);
    let (got, got_links) = describe(&dst);
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, node) in &want {
        assert_eq!(Some(node), got.get(path), "{}", path.display());
    }
    assert_eq!(want_links.len(), 1);
    assert_eq!(want_links, got_links);

    // And the tar entries come parents first, in sorted order.
    let mut archive = tar::Archive::new(Cursor::new(&tar));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} missing: {names:?}"))
    };
    assert_eq!(pos("abs-link"), 0);
    assert!(pos("bin/") < pos("bin/busybox"));
    assert!(pos("bin/busybox") < pos("bin/ls"));
    assert!(pos("bin/ls") < pos("bin/sh"));
}

#[test]
fn diff_writes_oci_whiteouts_and_round_trips_them() {
    assert_root();
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("opq")).unwrap();
    fs::write(upper.join("opq/new"), "n").unwrap();
    nix::sys::stat::mknod(
        &upper.join("gone"),
        SFlag::S_IFCHR,
        Mode::empty(),
        makedev(0, 0),
    )
    .unwrap();
    xattr::set(upper.join("opq"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    xattr::set(upper.join("opq"), "trusted.overlay.origin", b"x").unwrap();

    let tar = write_layer_from_dir(&upper, Vec::new()).unwrap();
    let mut archive = tar::Archive::new(Cursor::new(&tar));
    let mut names = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        names.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
        if let Some(records) = e.pax_extensions().unwrap() {
            for r in records {
                assert!(
                    !r.unwrap().key().unwrap().contains("overlay"),
                    "overlay xattr leaked into tar"
                );
            }
        }
        if names.last().unwrap().contains(".wh.") {
            assert_eq!(e.header().entry_type(), EntryType::Regular);
            assert_eq!(e.size(), 0);
        }
    }
    assert_eq!(names, [".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/new"]);

    let dst = tmp.path().join("dst");
    fs::create_dir(&dst).unwrap();
    apply_layer(Cursor::new(&tar), &dst).unwrap();
    let m = fs::symlink_metadata(dst.join("gone")).unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    assert_eq!(
        xattr::get(dst.join("opq"), OVERLAY_OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr::get(dst.join("opq"), "trusted.overlay.origin").unwrap(),
        None
    );
    assert_eq!(fs::read(dst.join("opq/new")).unwrap(), b"n");
}

#[test]
fn errors_map_to_kinds() {
    let err = LayerError::Escape {
        path: "x".into(),
        reason: "is absolute".into(),
    };
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = LayerError::Io {
        op: "creating file",
        path: "/a".into(),
        source: io::Error::other("x"),
    };
    assert_eq!(err.kind(), ErrorKind::Internal);
    // The cause is part of the message: the API shows only the message.
    assert_eq!(err.to_string(), r#"creating file "/a": x"#);
}

#[test]
fn parses_pax_times() {
    assert_eq!(parse_pax_time("12"), Some(FileTime::from_unix_time(12, 0)));
    assert_eq!(
        parse_pax_time("12.5"),
        Some(FileTime::from_unix_time(12, 500_000_000))
    );
    assert_eq!(
        parse_pax_time("-1.5"),
        Some(FileTime::from_unix_time(-2, 500_000_000))
    );
    assert_eq!(parse_pax_time("x"), None);
}
