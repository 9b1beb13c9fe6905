//! `cp` into and out of containers (`GET/HEAD/PUT /containers/{id}/archive`)
//! and CVE-2018-15664: a container that keeps swapping a directory for a
//! symlink to a host path (and to `/`) must never make the daemon write or
//! read outside its root, and `cp` must leave it running, not frozen.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::containers::{busybox, inspect_f, wait_until};
use common::TestDaemon;

/// Removes a file the test must never see created, also on panic.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Every regular file's content in the tar `bytes`.
fn tar_contents(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().expect("a tar") {
        let mut e = e.expect("a tar entry");
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A static binary that swaps two paths forever with
/// renameat2(RENAME_EXCHANGE); built with the host's gcc.
fn swapper(dir: &Path) -> PathBuf {
    let src = dir.join("swap.c");
    fs::write(
        &src,
        "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <sys/syscall.h>\n#include <unistd.h>\n\
         int main(int argc, char **argv) {\n  if (argc != 3) return 2;\n  for (;;)\n    \
         syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* RENAME_EXCHANGE */);\n}\n",
    )
    .unwrap();
    let bin = dir.join("swap");
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("this test needs gcc (Debian: gcc, libc6-dev) to build its swapper");
    assert!(
        out.status.success(),
        "gcc -static failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
fn cp_never_escapes_a_container_swapping_symlinks() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let host = tempfile::Builder::new()
        .prefix("berth-cp-host-")
        .tempdir_in("/tmp")
        .unwrap();
    let host_dir = host.path().display().to_string();
    let secret = format!("HOST-SECRET-{}", std::process::id());
    fs::write(host.path().join("secret"), &secret).unwrap();
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let scratch = tempfile::tempdir().unwrap();
    let _guards = [
        RemoveOnDrop(Path::new("/").join(&marker)),
        RemoveOnDrop(host.path().join(&marker)),
    ];

    // /race flips between a directory holding "secret" and a symlink to
    // the host directory, /race2 between a directory and a symlink to /:
    // two processes exchange them with renameat2(RENAME_EXCHANGE) in a
    // tight loop (the CVE-2018-15664 proof of concept's technique).
    let swap = swapper(scratch.path());
    let script = format!(
        "mkdir /race /race2 && echo inside > /race/secret && \
         ln -s {host_dir} /race-link && ln -s / /race2-link && \
         (/swap /race /race-link &) && exec /swap /race2 /race2-link"
    );
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "racer",
        "--network",
        "none",
        "-v",
        &format!("{}:/swap:ro", swap.display()),
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let id = inspect_f(&d, "{{.Id}}", "racer");

    let started = Instant::now();
    let tar = common::tarball::build(&[common::tarball::Entry::file(&marker, b"escaped")]);
    let (mut put_ok, mut get_ok) = (0, 0);
    // Each request freezes and thaws the container (libcgroups' v1 freezer
    // polls in 10 ms steps) while two swappers spin on 2 cores: 1000
    // requests take ~45 s. Without the fix (path resolved in userspace,
    // then used by name) a PUT escaped within the first 20 rounds.
    const ROUNDS: usize = 500;
    for i in 0..ROUNDS {
        let dest = if i % 2 == 0 { "/race" } else { "/race2" };
        // A refused PUT may be answered before its body is read: the
        // client then sees EPIPE rather than the status.
        let put = common::http::request(
            &d.socket,
            "PUT",
            &format!("/containers/{id}/archive?path={dest}"),
            Some(&tar),
            &[("Content-Type", "application/x-tar")],
        );
        if put.is_ok_and(|r| r.status == 200) {
            put_ok += 1;
        }
        // HEAD-then-stream: when /race flips between the stat and the
        // tar, the daemon has already sent 200 and cuts the stream (a
        // transport error here), as it did before.
        let get = common::http::request(
            &d.socket,
            "GET",
            &format!("/containers/{id}/archive?path=/race/secret"),
            None,
            &[],
        );
        if let Some(r) = get.ok().filter(|r| r.status == 200) {
            get_ok += 1;
            for (name, data) in tar_contents(&r.body) {
                assert!(
                    !String::from_utf8_lossy(&data).contains(&secret),
                    "GET read the host's file through the swapped symlink ({name})"
                );
            }
        }
        assert!(
            !Path::new("/").join(&marker).exists(),
            "PUT wrote into the host's / (iteration {i})"
        );
        assert!(
            !host.path().join(&marker).exists(),
            "PUT wrote into the host directory {host_dir} (iteration {i})"
        );
    }
    eprintln!(
        "{} racing cp requests in {:?}: {put_ok} PUT and {get_ok} GET succeeded",
        2 * ROUNDS,
        started.elapsed()
    );
    // The race ran: some copies landed while /race was a directory.
    assert!(
        put_ok > 0 && get_ok > 0,
        "no cp ever succeeded: {put_ok} PUT, {get_ok} GET"
    );

    // Not left frozen: the loop still runs and the state says running.
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "racer"), "running");
    assert_eq!(inspect_f(&d, "{{.State.Paused}}", "racer"), "false");
    // An exec joins the container's cgroup: it would hang in a frozen one.
    d.docker_ok(&["exec", "racer", "true"]);
    d.docker_ok(&["rm", "-f", "racer"]);
}

#[test]
fn docker_cp_into_and_out_of_a_running_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("hello.txt");
    fs::write(&src, "hello from the host\n").unwrap();

    d.docker_ok(&["cp", src.to_str().unwrap(), "box:/tmp/"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/hello.txt"]),
        "hello from the host\n"
    );
    // Through a symlink inside the container: /etc/link → /tmp.
    d.docker_ok(&["exec", "box", "ln", "-s", "/tmp", "/etc/link"]);
    d.docker_ok(&["cp", src.to_str().unwrap(), "box:/etc/link/again.txt"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/again.txt"]),
        "hello from the host\n"
    );

    let back = scratch.path().join("back");
    fs::create_dir(&back).unwrap();
    d.docker_ok(&["cp", "box:/tmp/hello.txt", back.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(back.join("hello.txt")).unwrap(),
        "hello from the host\n"
    );
    d.docker_ok(&["cp", "box:/etc/", back.join("etc").to_str().unwrap()]);
    assert!(back.join("etc/passwd").exists());

    // Each copy is an event, as with dockerd; freezing the container for
    // it is not a pause.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let actions = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "container=box",
        "--format",
        "{{.Action}}",
    ]);
    let copies: Vec<&str> = actions
        .lines()
        .filter(|a| !a.starts_with("exec_") && *a != "create" && *a != "start")
        .collect();
    assert_eq!(
        copies,
        [
            "extract-to-dir",
            "extract-to-dir",
            "archive-path",
            "archive-path"
        ],
        "{actions}"
    );

    assert_eq!(inspect_f(&d, "{{.State.Status}}", "box"), "running");
    assert_eq!(inspect_f(&d, "{{.State.Paused}}", "box"), "false");
    let (status, body) = d.api("GET", "/containers/box/archive?path=/nonexistent", None);
    assert_eq!(status, 404, "{body}");

    // A paused container is copied into and stays paused.
    d.docker_ok(&["pause", "box"]);
    d.docker_ok(&["cp", src.to_str().unwrap(), "box:/tmp/paused.txt"]);
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "box"), "paused");
    assert_eq!(inspect_f(&d, "{{.State.Paused}}", "box"), "true");
    d.docker_ok(&["unpause", "box"]);
    wait_until("box running", Duration::from_secs(10), || {
        inspect_f(&d, "{{.State.Status}}", "box") == "running"
    });
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/paused.txt"]),
        "hello from the host\n"
    );

    // A stopped container: its rootfs is mounted for the copy.
    d.docker_ok(&["stop", "-t", "0", "box"]);
    d.docker_ok(&["cp", src.to_str().unwrap(), "box:/tmp/stopped.txt"]);
    let out = scratch.path().join("out");
    fs::create_dir(&out).unwrap();
    d.docker_ok(&["cp", "box:/tmp/stopped.txt", out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(out.join("stopped.txt")).unwrap(),
        "hello from the host\n"
    );
    d.docker_ok(&["rm", "-f", "box"]);
}

#[test]
fn a_new_named_volume_is_seeded_from_the_image_path() {
    // The image's content at the mount point is found through the same
    // resolver (a descriptor handed to `cp -a` as its /proc link).
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seedvol:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.contains("root:"), "{out}");
    let ls = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seedvol:/data",
        "busybox",
        "ls",
        "/data",
    ]);
    assert!(ls.lines().any(|l| l == "passwd"), "{ls}");
    d.docker_ok(&["volume", "rm", "seedvol"]);
}
