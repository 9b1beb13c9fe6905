//! Container lifecycle through the berth CLI and the stock docker CLI: run, exit codes,
//! detached containers, logs, wait, rename, rm, prune and inspect. Networking is `none`
//! (bridge networking does not exist yet).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::containers::{busybox, code, container_id, inspect_f, ps_status, wait_until};
use common::TestDaemon;

#[test]
fn run_rm_echo_prints_and_exits_zero() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let before = common::containers::dir_entries(&d.data_root.join("containers"));
    let (st, out, err) = d.berth(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(code(st), 0, "stderr: {err}");
    assert_eq!(out, "hi\n");
    // --rm: nothing is left listed.
    let ps = d.berth_ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.trim(), "", "{ps}");
    assert_eq!(
        common::containers::dir_entries(&d.data_root.join("containers")),
        before
    );

    let (st, out, err) = d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(code(st), 0, "stderr: {err}");
    assert_eq!(out, "hi\n");
}

#[test]
fn run_exit_code_is_propagated() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, _, err) = d.berth(&["run", "--network", "none", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(st), 3, "stderr: {err}");
    let (st, _, err) = d.docker(&["run", "--network", "none", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code(st), 3, "stderr: {err}");
    let out = d.berth_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Exited (3)")).count(),
        2,
        "{out}"
    );
}

#[test]
fn run_missing_image_exits_125_naming_it() {
    let d = TestDaemon::builder().short().start();
    let (st, _, err) = d.berth(&["run", "--rm", "--network", "none", "nosuchimage:1", "true"]);
    assert_eq!(code(st), 125, "stderr: {err}");
    assert!(err.contains("nosuchimage:1"), "{err}");
    let (st, _, err) = d.docker(&["run", "--rm", "--network", "none", "nosuchimage:1", "true"]);
    assert_eq!(code(st), 125, "stderr: {err}");
    assert!(err.contains("nosuchimage:1"), "{err}");
}

/// `run -d httpd` → Up → logs → stop (httpd as PID 1 ignores SIGTERM: killed after 1 s) →
/// `Exited (137)` → rm → gone. `prog` is "berth" or "docker".
fn detached_web_lifecycle(d: &TestDaemon, prog: &str) {
    let cli = |args: &[&str]| match prog {
        "berth" => d.berth_ok(args),
        _ => d.docker_ok(args),
    };
    let out = cli(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
    ]);
    let id = out.trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {out:?}");

    let ps = cli(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.ends_with("web"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains(" Up "), "{ps}");
    assert!(row.contains("\"httpd -f -p 8080\""), "{ps}");

    cli(&["logs", "web"]);

    let out = cli(&["stop", "-t", "1", "web"]);
    assert_eq!(out.trim(), "web");
    assert_eq!(
        ps_status(d, "web")
            .as_deref()
            .map(|s| s.starts_with("Exited (137)")),
        Some(true)
    );
    let ps = cli(&["ps"]);
    assert!(!ps.contains("web"), "stopped container listed by ps: {ps}");
    let ps = cli(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.ends_with("web") && l.contains("Exited (137)")),
        "{ps}"
    );

    let out = cli(&["rm", "web"]);
    assert_eq!(out.trim(), "web");
    let ps = cli(&["ps", "-a", "-q"]);
    assert_eq!(ps.trim(), "", "{ps}");
    assert!(!d.data_root.join("containers").join(&id).exists());
}

#[test]
fn detached_web_lifecycle_berth() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    detached_web_lifecycle(&d, "berth");
}

#[test]
fn detached_web_lifecycle_docker() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    detached_web_lifecycle(&d, "docker");
}

#[test]
fn logs_separate_streams_tail_and_timestamps() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // stdout and stderr are copied to the log apart, so the order across
    // them is fixed by writing each next line only once the test has seen
    // the one before in the log (it creates `a`, then `b`).
    let sync = common::scratch();
    let bind = format!("{}:/sync", sync.path().display());
    let script = "echo out1; echo err1 >&2; until [ -e /sync/a ]; do sleep 0.05; done; \
                  echo out2; until [ -e /sync/b ]; do sleep 0.05; done; echo err2 >&2";
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let logged = |line: &str| {
        let (_, out, err) = d.berth(&["logs", "lg"]);
        out.lines().chain(err.lines()).any(|l| l == line)
    };
    wait_until("out1 and err1 in the log", Duration::from_secs(20), || {
        logged("out1") && logged("err1")
    });
    std::fs::write(sync.path().join("a"), "").unwrap();
    wait_until("out2 in the log", Duration::from_secs(20), || {
        logged("out2")
    });
    std::fs::write(sync.path().join("b"), "").unwrap();
    assert_eq!(d.berth_ok(&["wait", "lg"]).trim(), "0");

    for prog in ["berth", "docker"] {
        let (st, out, err) = match prog {
            "berth" => d.berth(&["logs", "lg"]),
            _ => d.docker(&["logs", "lg"]),
        };
        assert_eq!(code(st), 0, "{prog} logs: {err}");
        assert_eq!(out, "out1\nout2\n", "{prog} logs stdout");
        assert_eq!(err, "err1\nerr2\n", "{prog} logs stderr");
    }

    // The last line written is err2 (on stderr).
    let (st, out, err) = d.berth(&["logs", "--tail", "1", "lg"]);
    assert_eq!(code(st), 0);
    assert_eq!(out, "");
    assert_eq!(err, "err2\n");
    let (_, out, err) = d.docker(&["logs", "--tail", "2", "lg"]);
    assert_eq!(out, "out2\n");
    assert_eq!(err, "err2\n");

    let (st, out, err) = d.berth(&["logs", "-t", "lg"]);
    assert_eq!(code(st), 0);
    for (line, text) in out
        .lines()
        .zip(["out1", "out2"])
        .chain(err.lines().zip(["err1", "err2"]))
    {
        let (ts, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(rest, text, "{line:?}");
        assert!(is_rfc3339_utc(ts), "timestamp {ts:?} in {line:?}");
    }
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(err.lines().count(), 2, "{err}");
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)))
}

#[test]
fn logs_since_skips_earlier_lines() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // `late` is written only once the test has taken its --since time (it creates `go`).
    let sync = common::scratch();
    let bind = format!("{}:/sync", sync.path().display());
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "sn",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo early; until [ -e /sync/go ]; do sleep 0.05; done; echo late",
    ]);
    wait_until("the first log line", Duration::from_secs(20), || {
        d.berth_ok(&["logs", "sn"]).contains("early")
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
    std::fs::write(sync.path().join("go"), "").unwrap();
    assert_eq!(d.berth_ok(&["wait", "sn"]).trim(), "0");

    assert_eq!(d.berth_ok(&["logs", "sn"]), "early\nlate\n");
    assert_eq!(d.berth_ok(&["logs", "--since", &since, "sn"]), "late\n");
    assert_eq!(d.docker_ok(&["logs", "--since", &since, "sn"]), "late\n");
    assert_eq!(
        d.berth_ok(&["logs", "--since", "2099-01-01T00:00:00Z", "sn"]),
        ""
    );
    assert_eq!(
        d.berth_ok(&["logs", "--since", "1h", "sn"]),
        "early\nlate\n"
    );
}

#[test]
fn wait_returns_exit_code() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // Each container exits when the test creates its file in the bound
    // directory, while a `wait` is under way.
    let sync = common::scratch();
    let bind = format!("{}:/sync", sync.path().display());
    let exit_on = |file: &str, code: u8| {
        format!("until [ -e /sync/{file} ]; do sleep 0.05; done; exit {code}")
    };
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "w7",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        &exit_on("go7", 7),
    ]);
    let waited = |prog: &str, name: &str, file: &str| {
        std::thread::scope(|s| {
            let waiter = s.spawn(|| match prog {
                "berth" => d.berth(&["wait", name]),
                _ => d.docker(&["wait", name]),
            });
            assert_eq!(inspect_f(&d, "{{.State.Status}}", name), "running");
            std::fs::write(sync.path().join(file), "").unwrap();
            let (st, out, err) = waiter.join().unwrap();
            assert_eq!(code(st), 0, "{prog} wait {name}: {err}");
            out.trim().to_string()
        })
    };
    assert_eq!(waited("berth", "w7", "go7"), "7");
    // Waiting on an exited container returns at once with the same code.
    assert_eq!(d.berth_ok(&["wait", "w7"]).trim(), "7");
    assert_eq!(d.docker_ok(&["wait", "w7"]).trim(), "7");
    assert_eq!(inspect_f(&d, "{{.State.ExitCode}}", "w7"), "7");

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "w0",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        &exit_on("go0", 0),
    ]);
    assert_eq!(waited("docker", "w0", "go0"), "0");
}

#[test]
fn rename_keeps_the_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "old",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    d.berth_ok(&["rename", "old", "new"]);
    assert_eq!(inspect_f(&d, "{{.Name}}", "new"), "/new");
    assert_eq!(container_id(&d, "new"), id);
    let (st, _, err) = d.berth(&["inspect", "old"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("No such"), "{err}");
    assert!(ps_status(&d, "new").is_some_and(|s| s.starts_with("Up")));
    assert!(ps_status(&d, "old").is_none());
    d.docker_ok(&["rename", "new", "newer"]);
    assert_eq!(inspect_f(&d, "{{.Name}}", id), "/newer");
    // The old name is free again.
    d.berth_ok(&[
        "create",
        "--name",
        "new",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    d.berth_ok(&["rm", "-f", "newer", "new"]);
}

#[test]
fn rm_running_needs_force() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id.trim().to_string();
    for prog in ["berth", "docker"] {
        let (st, _, err) = match prog {
            "berth" => d.berth(&["rm", "busy"]),
            _ => d.docker(&["rm", "busy"]),
        };
        assert_ne!(code(st), 0, "{prog} rm of a running container succeeded");
        assert!(
            err.contains(
                "container is running: stop the container before removing or force remove"
            ),
            "{prog}: {err}"
        );
        assert!(
            ps_status(&d, "busy").is_some_and(|s| s.starts_with("Up")),
            "{prog} rm stopped it"
        );
    }
    assert_eq!(d.berth_ok(&["rm", "-f", "busy"]).trim(), "busy");
    assert!(ps_status(&d, "busy").is_none());
    assert!(!d.data_root.join("containers").join(&id).exists());
    assert!(
        common::containers::shim_pids(&id).is_empty(),
        "shim outlived rm -f"
    );

    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "busy2",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(d.docker_ok(&["rm", "-f", "busy2"]).trim(), "busy2");
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn container_prune_removes_only_stopped() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&[
        "run",
        "--name",
        "done1",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    d.berth_ok(&[
        "create",
        "--name",
        "created1",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let (st, _, _) = d.berth(&[
        "run",
        "--name",
        "failed1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(code(st), 1);
    let keep = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "up1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ids: Vec<String> = ["done1", "created1", "failed1"]
        .iter()
        .map(|n| container_id(&d, n))
        .collect();

    let out = d.berth_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    for id in &ids {
        assert!(out.contains(id.as_str()), "{id} not in {out}");
        assert!(!d.data_root.join("containers").join(id).exists());
    }
    assert!(!out.contains(keep.trim()), "{out}");
    let left = d.berth_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.trim(), "up1");

    d.berth_ok(&["stop", "-t", "1", "up1"]);
    let out = d.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains(keep.trim()), "{out}");
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn inspect_reports_state_and_config() {
    let d = TestDaemon::builder().short().start();
    let image = busybox(&d);
    let (st, _, _) = d.berth(&[
        "run",
        "--name",
        "ins",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(code(st), 5);
    let out = d.berth_ok(&["inspect", "ins"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let c = &v[0];
    assert_eq!(c["Name"], "/ins");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["Running"], false);
    assert_eq!(c["State"]["ExitCode"], 5);
    assert_eq!(
        c["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "exit 5"])
    );
    assert_eq!(c["Config"]["Image"], "busybox");
    assert_eq!(c["Image"], image.as_str());
    assert_eq!(c["HostConfig"]["AutoRemove"], false);
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(c["Id"].as_str().map(str::len), Some(64));

    let f = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{json .Config.Cmd}}",
        "ins",
    ]);
    assert_eq!(f.trim(), r#"exited 5 /ins ["sh","-c","exit 5"]"#);

    d.berth_ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "auto",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        inspect_f(
            &d,
            "{{.State.Status}} {{.State.Running}} {{.HostConfig.AutoRemove}}",
            "auto"
        ),
        "running true true"
    );
    let pid: u32 = inspect_f(&d, "{{.State.Pid}}", "auto").parse().unwrap();
    assert!(
        pid > 1 && common::containers::pid_alive(pid),
        "State.Pid {pid} is not a live process"
    );

    d.berth_ok(&[
        "create",
        "--name",
        "fresh",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect_f(&d, "{{.State.Status}} {{.State.ExitCode}}", "fresh"),
        "created 0"
    );

    // --rm: stopping removes it.
    d.berth_ok(&["kill", "auto"]);
    wait_until("auto-removal", Duration::from_secs(20), || {
        ps_status(&d, "auto").is_none()
    });
}

#[test]
fn start_failures_exit_like_docker() {
    // The normal kit (a long exec-root) must work: the shim socket path fits sun_path.
    let d = TestDaemon::builder().start();
    busybox(&d);
    let (st, _, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "nonexistent-cmd",
    ]);
    assert_eq!(code(st), 127, "stderr: {err}");
    assert!(err.contains("executable file not found"), "{err}");
    let (st, _, err) = d.docker(&["run", "--rm", "--network", "none", "busybox", "/no/such"]);
    assert_eq!(code(st), 127, "stderr: {err}");
    assert!(
        err.contains("stat /no/such: no such file or directory"),
        "{err}"
    );
    let (st, _, err) = d.docker(&["run", "--rm", "--network", "none", "busybox", "/etc/passwd"]);
    assert_eq!(code(st), 126, "stderr: {err}");
    assert!(err.contains("permission denied"), "{err}");
    // Without --rm the container keeps the exit code and the error.
    let (st, _, err) = d.docker(&[
        "run",
        "--name",
        "dir",
        "--network",
        "none",
        "busybox",
        "/etc",
    ]);
    assert_eq!(code(st), 126, "stderr: {err}");
    assert!(err.contains("is a directory: permission denied"), "{err}");
    let state = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.Error}}",
        "dir",
    ]);
    assert!(
        state.starts_with("126 ") && state.contains("permission denied"),
        "{state}"
    );
    d.docker_ok(&["rm", "dir"]);
    // --rm removed the other failed containers.
    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
}

/// An image of 100 layers (more than one mount(2) option page can list
/// with snapshot paths) runs, sees every layer with the topmost winning,
/// and builds on: a RUN step mounts the same stack plus its own layer.
#[test]
fn an_image_of_a_hundred_layers_runs_and_builds() {
    use common::tarball::{build, docker_archive_layers, Entry};
    let d = TestDaemon::builder().short().start();
    let base = std::fs::read(common::busybox_rootfs()).expect("busybox rootfs tar");
    let mut layers = vec![base];
    for i in 1..100 {
        layers.push(build(&[
            Entry::dir("layers/"),
            Entry::file(&format!("layers/{i}"), format!("{i}\n").as_bytes()),
            Entry::file("top", format!("{i}\n").as_bytes()),
        ]));
    }
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let (archive, id) = docker_archive_layers(&refs, "many:latest");
    let o = d.berth_out(&["load"], Some(archive));
    assert_eq!(code(o.status), 0, "{}", o.stderr);
    assert_eq!(
        d.berth_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{len .RootFS.Layers}}",
            "many"
        ]),
        format!("{id} 100\n")
    );
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "many",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /top; cat /layers/1 /layers/99",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["99", "99", "1", "99"]
    );

    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM many\nRUN cat /top /layers/50 > /seen\n",
    )
    .unwrap();
    d.berth_ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "many:built",
        ctx.path().to_str().unwrap(),
    ]);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "many:built",
        "cat",
        "/seen",
    ]);
    assert_eq!(out, "99\n50\n");
}
