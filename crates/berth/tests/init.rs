//! `--init`: a small init (Docker's docker-init, i.e. tini) runs as PID 1,
//! forwards signals to the command and reaps orphans.

mod common;

use common::containers::{busybox, code};
use common::TestDaemon;

#[test]
fn init_is_pid_one_and_forwards_stop_signals() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "busybox",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(code(st), 0, "{err}");
    assert!(out.starts_with("/sbin/docker-init\0--\0cat\0"), "{out:?}");

    // `sleep` as PID 1 ignores SIGTERM, so stop has to kill it (137); under
    // --init the signal reaches it and it ends by SIGTERM (143).
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "inited",
        "--network",
        "none",
        "--init",
        "busybox",
        "sleep",
        "100",
    ]);
    d.berth_ok(&["stop", "-t", "2", "plain", "inited"]);
    let plain = d.berth_ok(&["inspect", "-f", "{{.State.ExitCode}}", "plain"]);
    let inited = d.berth_ok(&["inspect", "-f", "{{.State.ExitCode}}", "inited"]);
    assert_eq!((plain.trim(), inited.trim()), ("137", "143"));
    let cfg = d.docker_ok(&["inspect", "-f", "{{.HostConfig.Init}}", "inited"]);
    assert_eq!(cfg.trim(), "true");
    d.berth_ok(&["rm", "plain", "inited"]);
}
