//! Live restore: containers outlive their daemon. A daemon killed with SIGKILL and started
//! again finds every running container through its shim, serves its logs and stops it;
//! a container whose shim is killed is reported exited, not lost.

mod common;

use std::time::Duration;

use common::containers::{
    busybox, cgroup_dirs, code, container_id, dir_entries, inspect_f, pid_alive, ps_status,
    shim_pids, wait_until,
};
use common::TestDaemon;

#[test]
fn running_containers_survive_daemon_kill9() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    let names = ["lr1", "lr2", "lr3"];
    let mut ids = vec![];
    let mut pids = vec![];
    for n in names {
        let script = format!("echo hello-{n}; exec sleep 1000");
        d.berth_ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            &script,
        ]);
        ids.push(container_id(&d, n));
        pids.push(inspect_f(&d, "{{.State.Pid}}", n).parse::<u32>().unwrap());
    }
    for n in names {
        wait_until("first log line", Duration::from_secs(20), || {
            d.berth_ok(&["logs", n]).contains(&format!("hello-{n}"))
        });
    }

    d.kill9();
    for (n, pid) in names.iter().zip(&pids) {
        assert!(pid_alive(*pid), "{n}'s process {pid} died with the daemon");
    }
    d.restart();

    let ps = d.berth_ok(&["ps", "--format", "{{.Names}}\t{{.Status}}"]);
    for n in names {
        assert!(
            ps.lines().any(|l| l.starts_with(&format!("{n}\tUp"))),
            "{n} not Up after restart:\n{ps}"
        );
    }
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    for n in names {
        assert!(ps.lines().any(|l| l == n), "docker ps after restart:\n{ps}");
    }
    for (n, pid) in names.iter().zip(&pids) {
        assert_eq!(d.berth_ok(&["logs", n]), format!("hello-{n}\n"));
        assert_eq!(
            inspect_f(&d, "{{.State.Status}} {{.State.Pid}}", n),
            format!("running {pid}")
        );
    }

    let out = d.berth_ok(&["stop", "-t", "1", "lr1", "lr2", "lr3"]);
    assert_eq!(out, "lr1\nlr2\nlr3\n");
    for (n, pid) in names.iter().zip(&pids) {
        assert!(
            ps_status(&d, n).is_some_and(|s| s.starts_with("Exited (137)")),
            "{n}: {:?}",
            ps_status(&d, n)
        );
        assert!(!pid_alive(*pid), "{n}'s process {pid} survived stop");
    }
    d.berth_ok(&["rm", "lr1", "lr2", "lr3"]);
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(
        dir_entries(&d.data_root.join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        dir_entries(&d.exec_root.join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        common::mounts_under(&d.data_root),
        Vec::<std::path::PathBuf>::new()
    );
    for id in &ids {
        assert_eq!(
            shim_pids(id),
            Vec::<u32>::new(),
            "shim of {id} still running"
        );
        assert_eq!(
            cgroup_dirs(id),
            Vec::<std::path::PathBuf>::new(),
            "cgroup of {id} left"
        );
    }
}

#[test]
fn exit_while_daemon_is_down_is_recorded() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    // The container exits when the test creates `go` in a directory it shares: only after
    // the daemon is down, so the exit always falls in that window.
    let sync = common::scratch();
    let bind = format!("{}:/sync", sync.path().display());
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo bye; until [ -e /sync/go ]; do sleep 0.05; done; exit 4",
    ]);
    wait_until("first log line", Duration::from_secs(20), || {
        d.berth_ok(&["logs", "short"]).contains("bye")
    });
    let id = container_id(&d, "short");
    let pid: u32 = inspect_f(&d, "{{.State.Pid}}", "short").parse().unwrap();
    d.kill9();
    assert!(
        pid_alive(pid),
        "the container ended before the daemon went down"
    );
    std::fs::write(sync.path().join("go"), "").unwrap();
    wait_until(
        "the container's shim to exit",
        Duration::from_secs(30),
        || shim_pids(&id).is_empty(),
    );
    d.restart();
    assert_eq!(d.berth_ok(&["wait", "short"]).trim(), "4");
    assert_eq!(
        inspect_f(&d, "{{.State.Status}} {{.State.ExitCode}}", "short"),
        "exited 4"
    );
    assert!(ps_status(&d, "short").is_some_and(|s| s.starts_with("Exited (4)")));
    assert_eq!(d.berth_ok(&["logs", "short"]), "bye\n");
    d.berth_ok(&["rm", "short"]);
    assert_eq!(
        common::mounts_under(&d.data_root),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn killed_shim_is_reported_exited() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = container_id(&d, "orphan");
    let pid: u32 = inspect_f(&d, "{{.State.Pid}}", "orphan").parse().unwrap();
    let shims = shim_pids(&id);
    assert_eq!(shims.len(), 1, "shim processes for {id}: {shims:?}");
    // SAFETY: kill(2) on the shim process this test's daemon started.
    let killed = unsafe { libc::kill(shims[0] as libc::pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0);

    wait_until(
        "the container to be reported exited",
        Duration::from_secs(30),
        || inspect_f(&d, "{{.State.Status}}", "orphan") == "exited",
    );
    d.restart();
    assert_eq!(
        inspect_f(&d, "{{.State.Status}} {{.State.Running}}", "orphan"),
        "exited false"
    );
    assert!(
        ps_status(&d, "orphan").is_some_and(|s| s.starts_with("Exited")),
        "{:?}",
        ps_status(&d, "orphan")
    );
    let ps = d.berth_ok(&["ps", "-q"]);
    assert_eq!(
        ps.trim(),
        "",
        "a container with a dead shim is listed as running"
    );
    let (st, _, err) = d.berth(&["rm", "orphan"]);
    assert_eq!(code(st), 0, "{err}");
    assert!(ps_status(&d, "orphan").is_none());
    // Nothing of it runs on: its process and cgroups are gone (the kit checks the rest).
    assert!(!pid_alive(pid), "the container's process {pid} outlived rm");
    assert_eq!(cgroup_dirs(&id), Vec::<std::path::PathBuf>::new());
}

#[test]
fn paused_container_stays_paused_across_daemon_kill9() {
    let mut d = TestDaemon::builder().start();
    busybox(&d);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "pz",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&["pause", "pz"]);
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "pz"), "paused");
    d.kill9();
    d.restart();
    // Not mistaken for a dead container: still paused, then usable again.
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "pz"), "paused");
    d.berth_ok(&["unpause", "pz"]);
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "pz"), "running");
    d.berth_ok(&["rm", "-f", "pz"]);
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}
