//! `--device` and `--privileged` device nodes: the node appears in the
//! container with the host's type and numbers, and the device cgroup
//! enforces the permissions given.

mod common;

use common::containers::{busybox, code, run_must_fail};
use common::TestDaemon;

#[test]
fn device_is_added_with_its_numbers_and_permissions() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/zero:/dev/myzero",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/myzero && head -c 3 /dev/myzero | od -An -tx1",
    ]);
    assert_eq!(code(st), 0, "{err}");
    assert!(out.starts_with("crw"), "{out}");
    assert!(out.contains("1,   5") || out.contains("1, 5"), "{out}");
    assert!(out.contains("00 00 00"), "{out}");

    // The device cgroup enforces the permissions: /dev/kmsg (c 1:11) is not
    // in the default allow list, so `:r` refuses opening it for writing
    // and `:rw` allows it.
    run_must_fail(
        &d,
        &["--network", "none", "--device", "/dev/kmsg:/dev/k:r"],
        "exec 3>/dev/k && echo OPENED",
        "Operation not permitted",
    );
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/kmsg:/dev/k:rw",
        "busybox",
        "sh",
        "-c",
        "exec 3>/dev/k && echo OPENED",
    ]);
    assert!(out.contains("OPENED"), "{out} {err}");

    // Not a device: a clear error naming it, before anything runs.
    let (st, _, err) = d.berth(&[
        "run",
        "--rm",
        "--device",
        "/etc/hostname",
        "busybox",
        "true",
    ]);
    assert_ne!(code(st), 0);
    assert!(
        err.contains("/etc/hostname") && err.contains("not a device"),
        "{err}"
    );

    // Without --device the node does not exist; --privileged sees the host's nodes.
    let out = d.berth_ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/dev"]);
    assert!(
        out.contains("null") && !out.contains("loop-control"),
        "{out}"
    );
    if std::path::Path::new("/dev/loop-control").exists() {
        let out = d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--privileged",
            "busybox",
            "ls",
            "/dev",
        ]);
        assert!(out.contains("loop-control"), "{out}");
    }
}
