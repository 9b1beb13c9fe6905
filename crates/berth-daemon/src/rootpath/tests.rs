//! Resolver tests. Every resolution case runs through both resolvers
//! (`openat2` and the fallback walk) and must give the same answer. They
//! need no privileges, except the archive tests at the end (chroot), which
//! assert root instead of skipping.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::archive::{extract_tar, write_tar, ArchiveError};
use super::*;

/// A root with: usr/bin/sh, etc/passwd, bin → usr/bin, abs → /etc,
/// up → ../../../../.., loop1 ⇄ loop2, self → self, magic →
/// /proc/self/root, file-then-dir: a regular file.
fn fixture() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("usr/bin/sh"), "sh").unwrap();
    fs::write(r.join("etc/passwd"), "inside").unwrap();
    fs::write(r.join("file"), "f").unwrap();
    symlink("usr/bin", r.join("bin")).unwrap();
    symlink("/etc", r.join("abs")).unwrap();
    symlink("../../../../..", r.join("up")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    symlink("self", r.join("self")).unwrap();
    symlink("/proc/self/root/etc/passwd", r.join("magic")).unwrap();
    symlink("/nonexistent/dir", r.join("dangling")).unwrap();
    d
}

/// Where each resolver puts `path`, relative to the root; the error kind
/// if it fails. Both must agree.
fn resolve(root: &Root, path: &str, follow: bool) -> Result<PathBuf, String> {
    let kernel = root
        .open_path(path, follow)
        .and_then(|fd| root.relative(fd.as_fd(), path));
    let walked = walk::open_in_root(root.fd(), path, follow)
        .map_err(|e| root.error("resolving", path, e))
        .and_then(|fd| root.relative(fd.as_fd(), path));
    let show = |r: Result<PathBuf, RootPathError>| {
        r.map_err(|e| match e {
            RootPathError::NotFound { .. } => "not found".to_string(),
            RootPathError::Loop { .. } => "loop".to_string(),
            RootPathError::NotADirectory { .. } => "not a directory".to_string(),
            other => other.to_string(),
        })
    };
    let (kernel, walked) = (show(kernel), show(walked));
    assert_eq!(kernel, walked, "openat2 and the walk disagree on {path:?}");
    kernel
}

#[test]
fn relative_and_absolute_symlinks_stay_inside() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/bin/sh", true), Ok("usr/bin/sh".into()));
    assert_eq!(resolve(&root, "bin/sh", true), Ok("usr/bin/sh".into()));
    assert_eq!(resolve(&root, "/abs/passwd", true), Ok("etc/passwd".into()));
    assert_eq!(
        resolve(&root, "/up/etc/passwd", true),
        Ok("etc/passwd".into())
    );
    assert_eq!(resolve(&root, "/abs", true), Ok("etc".into()));
}

#[test]
fn dot_dot_at_the_root_stays_at_the_root() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/../../etc", true), Ok("etc".into()));
    assert_eq!(resolve(&root, "..", true), Ok("".into()));
    assert_eq!(resolve(&root, "/", true), Ok("".into()));
    assert_eq!(resolve(&root, "", true), Ok("".into()));
    assert_eq!(
        resolve(&root, "usr/../../../usr/bin/./sh", true),
        Ok("usr/bin/sh".into())
    );
}

#[test]
fn a_final_symlink_is_kept_unless_followed() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/bin", false), Ok("bin".into()));
    assert_eq!(resolve(&root, "/bin", true), Ok("usr/bin".into()));
    // A trailing `/.` is a component after the link: followed.
    assert_eq!(resolve(&root, "/bin/.", false), Ok("usr/bin".into()));
    let fd = root.open_path("/abs", false).unwrap();
    let st = fstat(fd.as_fd()).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
}

#[test]
fn symlink_loops_are_refused() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/loop1", true), Err("loop".into()));
    assert_eq!(resolve(&root, "/self/x", true), Err("loop".into()));
    assert_eq!(resolve(&root, "/loop1", false), Ok("loop1".into()));
}

#[test]
fn missing_and_non_directory_components() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/nope", true), Err("not found".into()));
    assert_eq!(resolve(&root, "/dangling", true), Err("not found".into()));
    assert_eq!(
        resolve(&root, "/file/x", true),
        Err("not a directory".into())
    );
}

#[test]
fn a_symlink_to_a_proc_magic_link_resolves_inside_the_root() {
    // The text "/proc/self/root/..." is resolved inside the root, where
    // there is no /proc: the host's /etc/passwd is never reached.
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(resolve(&root, "/magic", true), Err("not found".into()));
}

#[test]
fn real_magic_links_are_not_followed() {
    // A root that has procfs magic links in it: /proc/self. `root` and
    // `cwd` there point at the host's / and our cwd. openat2 refuses them
    // (RESOLVE_NO_MAGICLINKS); the walk reads their text ("/", a host
    // path) and resolves it inside the root. Neither reaches the host.
    let root = Root::open(Path::new("/proc/self")).unwrap();
    for path in ["root/etc/passwd", "cwd", "root"] {
        let kernel = root.open_path(path, true);
        assert!(
            matches!(kernel, Err(RootPathError::Loop { .. })),
            "openat2 followed magic link {path}: {kernel:?}"
        );
        match walk::open_in_root(root.fd(), path, true) {
            Err(_) => {}
            Ok(fd) => {
                let at = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
                assert!(
                    at.starts_with("/proc/"),
                    "the walk left the root via {path}: {at:?}"
                );
            }
        }
    }
}

#[test]
fn resolve_path_appends_what_is_missing() {
    let d = fixture();
    let r = d.path();
    let root = Root::open(r).unwrap();
    assert_eq!(
        root.resolve_path("/bin/new", true).unwrap(),
        r.join("usr/bin/new")
    );
    assert_eq!(
        root.resolve_path("/dangling/x", true).unwrap(),
        r.join("nonexistent/dir/x")
    );
    assert_eq!(root.resolve_path("/a/b/../c", true).unwrap(), r.join("a/c"));
    assert_eq!(
        root.resolve_path("/file/x", true).unwrap(),
        r.join("file/x")
    );
    assert_eq!(root.resolve_path("/bin", false).unwrap(), r.join("bin"));
    assert_eq!(resolve_path(r, "/up/etc", true).unwrap(), r.join("etc"));
}

#[test]
fn small_files_are_read_through_the_descriptor() {
    let d = fixture();
    let root = Root::open(d.path()).unwrap();
    assert_eq!(root.read_small_file("/abs/passwd").unwrap(), b"inside");
    // A FIFO would block the daemon: refused, not opened.
    nix::unistd::mkfifo(
        &d.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert!(matches!(
        root.read_small_file("/fifo"),
        Err(RootPathError::NotAFile { .. })
    ));
    assert!(matches!(
        root.read_small_file("/usr"),
        Err(RootPathError::NotAFile { .. })
    ));
}

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the archive tests need root (chroot, chown)"
    );
}

/// A host directory `outside` next to the root, and a root whose `out`
/// is an absolute symlink to it and whose `host` points at `/`.
fn escape_fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    let outside = d.path().join("outside");
    fs::create_dir_all(root.join("dir")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "host secret").unwrap();
    symlink(&outside, root.join("out")).unwrap();
    symlink("/", root.join("host")).unwrap();
    symlink("../../..", root.join("dir/up")).unwrap();
    (d, root, outside)
}

fn one_file_tar(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append_data(&mut h, name, &b"data"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn extracting_through_symlinks_stays_inside() {
    assert_root();
    let (_d, root_dir, outside) = escape_fixture();
    let root = Root::open(&root_dir).unwrap();
    for dest in ["/out", "/host/tmp", "/dir/up"] {
        let name = format!("berth-rootpath-{}", std::process::id());
        let tar = one_file_tar(&name);
        let res = extract_tar(&root, dest, Box::new(std::io::Cursor::new(tar)));
        // Whatever happened, nothing was written outside the root.
        assert!(!outside.join(&name).exists(), "{dest}: wrote outside");
        assert!(
            !Path::new("/tmp").join(&name).exists(),
            "{dest}: wrote to host /tmp"
        );
        assert!(
            !Path::new("/").join(&name).exists(),
            "{dest}: wrote to host /"
        );
        if dest == "/dir/up" {
            res.unwrap();
            assert!(root_dir.join(&name).exists());
        }
    }
    let res = extract_tar(
        &root,
        "/dir/../out",
        Box::new(std::io::Cursor::new(one_file_tar("x"))),
    );
    assert!(
        matches!(res, Err(ArchiveError::Path(RootPathError::NotFound { .. }))),
        "{res:?}"
    );
}

#[test]
fn archiving_through_symlinks_stays_inside() {
    assert_root();
    let (_d, root_dir, _outside) = escape_fixture();
    let root = Root::open(&root_dir).unwrap();
    let mut out = Vec::new();
    let res = write_tar(&root, "/out/secret", true, &mut out);
    assert!(
        matches!(res, Err(ArchiveError::Path(RootPathError::NotFound { .. }))),
        "{res:?}"
    );
    // The directory walk runs confined: "host" inside is a symlink entry.
    let mut out = Vec::new();
    write_tar(&root, "/", true, &mut out).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&out[..]).entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        names.push(name.trim_start_matches("./").to_string());
        assert!(e.header().entry_type() != tar::EntryType::Regular || e.size() == 0);
    }
    assert!(names.contains(&"host".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("secret")), "{names:?}");
}
