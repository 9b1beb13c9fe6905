//! Namespace modes as dockerd has them — `--pid`, `--ipc`, `--uts`,
//! `--cgroupns`, `--userns` — through the berth CLI, the docker CLI and the
//! API; and HostConfig fields berth cannot honour refused with a 400 that
//! names them. Namespaces are compared by inode (`readlink
//! /proc/self/ns/<type>` inside against the host's or another container's).

mod common;

use std::time::Duration;

use common::containers::{busybox, code, inspect_f, wait_until};
use common::TestDaemon;

/// The host's (this test process's) namespace link, e.g. `ipc:[4026531839]`.
fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/self/ns/{kind}: {e}"))
        .display()
        .to_string()
}

/// `berth run --rm --network none OPTS busybox CMD`, asserting exit 0.
fn run_ok(d: &TestDaemon, opts: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.push("busybox");
    args.extend_from_slice(cmd);
    let (st, out, err) = d.berth(&args);
    assert_eq!(
        code(st),
        0,
        "berth {args:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    );
    out
}

/// The container's namespace links for `kinds`, one per line, with a
/// marker line proving the command itself ran.
fn ns_inside(d: &TestDaemon, opts: &[&str], kinds: &[&str]) -> Vec<String> {
    let script: String = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}; "))
        .collect::<String>()
        + "echo ran-inside";
    let out = run_ok(d, opts, &["sh", "-c", &script]);
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("ran-inside"),
        "{out}"
    );
    lines[..lines.len() - 1].to_vec()
}

fn start_sleeper(d: &TestDaemon, name: &str, opts: &[&str], script: &str) -> u32 {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.berth_ok(&args);
    let pid: u32 = inspect_f(d, "{{.State.Pid}}", name)
        .parse()
        .expect("State.Pid");
    assert!(pid > 0, "{name} has no pid");
    pid
}

#[test]
fn default_namespaces_are_private_and_inspect_shows_dockers_defaults() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let kinds = ["pid", "ipc", "uts"];
    let inside = ns_inside(&d, &[], &kinds);
    for (k, got) in kinds.iter().zip(&inside) {
        assert_ne!(got, &host_ns(k), "default {k} namespace is the host's");
    }
    d.berth_ok(&["create", "--name", "plain", "busybox", "true"]);
    let modes = inspect_f(
        &d,
        "{{.HostConfig.PidMode}}|{{.HostConfig.IpcMode}}|{{.HostConfig.UTSMode}}|{{.HostConfig.CgroupnsMode}}|{{.HostConfig.UsernsMode}}",
        "plain",
    );
    let cgroupns = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "private"
    } else {
        "host"
    };
    assert_eq!(modes, format!("|private||{cgroupns}|"));
}

#[test]
fn host_modes_share_the_hosts_namespaces() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    for (flag, kind) in [("--pid", "pid"), ("--ipc", "ipc"), ("--uts", "uts")] {
        let inside = ns_inside(&d, &[flag, "host"], &[kind]);
        assert_eq!(inside, [host_ns(kind)], "{flag} host");
    }
    // All at once, and the cgroup namespace both ways.
    let inside = ns_inside(
        &d,
        &[
            "--pid",
            "host",
            "--ipc",
            "host",
            "--uts",
            "host",
            "--cgroupns",
            "host",
        ],
        &["pid", "ipc", "uts", "cgroup"],
    );
    assert_eq!(
        inside,
        ["pid", "ipc", "uts", "cgroup"].map(host_ns).to_vec()
    );
    let inside = ns_inside(&d, &["--cgroupns", "private"], &["cgroup"]);
    assert_ne!(inside, [host_ns("cgroup")], "--cgroupns private");
    // --uts host: the host's name, not the container's.
    let name = run_ok(&d, &["--uts", "host"], &["hostname"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(name.trim(), host.trim());
}

#[test]
fn pid_host_lists_the_hosts_processes() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let out = run_ok(&d, &["--pid", "host"], &["ps", "-o", "pid,comm"]);
    let pids: Vec<u32> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(pids.contains(&1), "host's PID 1 missing:\n{out}");
    assert!(
        pids.contains(&std::process::id()),
        "the test's own pid {} missing:\n{out}",
        std::process::id()
    );
    assert!(
        pids.contains(&d.pid()),
        "the daemon's pid {} missing",
        d.pid()
    );
}

#[test]
fn pid_container_sees_the_other_containers_processes() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let pid = start_sleeper(&d, "target", &[], "exec sleep 300");
    let out = run_ok(
        &d,
        &["--pid", "container:target"],
        &["sh", "-c", "ps -o pid,comm; readlink /proc/self/ns/pid"],
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]),
        "target's sleep is not PID 1 here:\n{out}"
    );
    let target_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(
        out.lines().last(),
        Some(target_ns.to_str().unwrap()),
        "{out}"
    );
    // By id prefix too, through the docker CLI.
    let id = inspect_f(&d, "{{.Id}}", "target");
    let o = d.docker_out(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pid",
            &format!("container:{}", &id[..12]),
            "busybox",
            "readlink",
            "/proc/self/ns/pid",
        ],
        None,
    );
    assert!(o.status.success(), "docker run: {}", o.stderr);
    assert_eq!(o.stdout_str().trim(), target_ns.to_str().unwrap());
    d.berth_ok(&["rm", "-f", "target"]);
}

#[test]
fn joining_a_container_that_is_not_running_is_refused() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&["create", "--name", "idle", "busybox", "true"]);
    for flag in ["--pid", "--ipc"] {
        let (st, out, err) = d.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            flag,
            "container:idle",
            "busybox",
            "echo",
            "should-not-run",
        ]);
        assert_eq!(code(st), 125, "{flag}: {out}{err}");
        assert!(!out.contains("should-not-run"));
        assert!(err.contains("is not running"), "{flag}: {err}");
    }
}

#[test]
fn ipc_container_shares_the_donors_namespace_and_dev_shm() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let pid = start_sleeper(
        &d,
        "donor",
        &["--ipc", "shareable"],
        "echo from-donor > /dev/shm/marker; exec sleep 300",
    );
    wait_until("the donor's marker", Duration::from_secs(10), || {
        d.berth(&["exec", "donor", "cat", "/dev/shm/marker"])
            .1
            .contains("from-donor")
    });
    let out = run_ok(
        &d,
        &["--ipc", "container:donor"],
        &[
            "sh",
            "-c",
            "cat /dev/shm/marker; readlink /proc/self/ns/ipc",
        ],
    );
    let donor_ns = std::fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["from-donor", donor_ns.to_str().unwrap()]
    );
    assert_ne!(donor_ns.to_str().unwrap(), host_ns("ipc"));
    assert_eq!(
        inspect_f(&d, "{{.HostConfig.IpcMode}}", "donor"),
        "shareable"
    );

    // A private donor cannot be joined (dockerd's hint names shareable).
    start_sleeper(&d, "private", &[], "exec sleep 300");
    let (st, _, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ipc",
        "container:private",
        "busybox",
        "true",
    ]);
    assert_eq!(code(st), 125, "{err}");
    assert!(err.contains("non-shareable IPC"), "{err}");

    // The shareable tmpfs goes away with the donor.
    let dir = d
        .data_root
        .join("containers")
        .join(inspect_f(&d, "{{.Id}}", "donor"))
        .join("mounts/shm");
    assert!(
        common::mounts_under(&dir).contains(&dir),
        "{} not mounted",
        dir.display()
    );
    d.berth_ok(&["rm", "-f", "donor", "private"]);
    assert!(
        common::mounts_under(&dir).is_empty(),
        "{} still mounted",
        dir.display()
    );
}

#[test]
fn ipc_none_has_no_dev_shm_and_host_binds_the_hosts() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let out = run_ok(
        &d,
        &["--ipc", "none"],
        &[
            "sh",
            "-c",
            "grep -c ' /dev/shm ' /proc/self/mountinfo; echo ran",
        ],
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", "ran"]);
    let marker = format!("/dev/shm/berth-test-{}", std::process::id());
    std::fs::write(&marker, "host-shm").unwrap();
    let out = run_ok(&d, &["--ipc", "host"], &["cat", &marker]);
    let _ = std::fs::remove_file(&marker);
    assert_eq!(out, "host-shm");
}

#[test]
fn uts_host_with_a_hostname_is_refused_as_docker_does() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, out, err) = d.berth(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "--hostname",
        "h1",
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(code(st), 125, "{out}{err}");
    assert!(
        err.contains("conflicting options: hostname and the UTS mode"),
        "{err}"
    );
    let o = d.docker_out(
        &[
            "run", "--rm", "--uts", "host", "-h", "h1", "busybox", "true",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(125), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("conflicting options: hostname and the UTS mode"),
        "{}",
        o.stderr
    );
}

#[test]
fn docker_cli_namespace_flags_reach_the_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let o = d.docker_out(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pid",
            "host",
            "--ipc",
            "host",
            "--uts",
            "host",
            "--userns",
            "host",
            "busybox",
            "sh",
            "-c",
            "for k in pid ipc uts; do readlink /proc/self/ns/$k; done",
        ],
        None,
    );
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(
        o.stdout_str().lines().collect::<Vec<_>>(),
        [host_ns("pid"), host_ns("ipc"), host_ns("uts")]
    );
}

#[test]
fn api_create_keeps_modes_and_refuses_what_berth_cannot_do() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let create = |host: serde_json::Value| {
        let body = serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host});
        d.api(
            "POST",
            "/containers/create",
            Some(body.to_string().as_bytes()),
        )
    };
    let (st, body) = create(serde_json::json!({
        "PidMode": "host", "IpcMode": "shareable", "UTSMode": "host",
        "CgroupnsMode": "private", "UsernsMode": "host", "NetworkMode": "none"
    }));
    assert_eq!(st, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let h = &d.api_json(&format!("/containers/{id}/json"))["HostConfig"];
    assert_eq!(
        [
            &h["PidMode"],
            &h["IpcMode"],
            &h["UTSMode"],
            &h["CgroupnsMode"],
            &h["UsernsMode"]
        ],
        ["host", "shareable", "host", "private", "host"]
    );
    let (st, body) = d.api("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(st, 204, "{body}");
    let (st, body) = d.api("POST", &format!("/containers/{id}/wait"), None);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"StatusCode\":0"), "{body}");

    for (host, needle) in [
        (serde_json::json!({"UsernsMode": "private"}), "UsernsMode"),
        (
            serde_json::json!({"PidMode": "bogus"}),
            "invalid PID mode: bogus",
        ),
        (
            serde_json::json!({"IpcMode": "container:"}),
            "HostConfig.IpcMode",
        ),
        (
            serde_json::json!({"BlkioWeight": 500}),
            "HostConfig.BlkioWeight is not supported by berth",
        ),
        (
            serde_json::json!({"CgroupParent": "/x"}),
            "HostConfig.CgroupParent",
        ),
        (serde_json::json!({"IOMaximumIOps": 3}), "maximum IOPs"),
    ] {
        let (st, body) = create(host.clone());
        assert_eq!(st, 400, "{host}: {body}");
        assert!(body.contains(needle), "{host}: {body}");
    }
    // Ignored fields are accepted, with dockerd's reason as a warning.
    let (st, body) = create(serde_json::json!({"CpuCount": 2, "NetworkMode": "none"}));
    assert_eq!(st, 201, "{body}");
    assert!(body.contains("HostConfig.CpuCount is ignored"), "{body}");
}

#[test]
fn cli_flags_berth_cannot_honour_fail_loudly() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, out, err) = d.berth(&[
        "run", "--rm", "--userns", "private", "busybox", "echo", "ran",
    ]);
    assert_eq!(code(st), 125, "{out}{err}");
    assert!(err.contains("UsernsMode"), "{err}");
    let o = d.docker_out(
        &["run", "--rm", "--blkio-weight", "500", "busybox", "true"],
        None,
    );
    assert_eq!(o.status.code(), Some(125), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("HostConfig.BlkioWeight is not supported by berth"),
        "{}",
        o.stderr
    );
    d.berth_ok(&["create", "--name", "upd", "busybox", "true"]);
    let (st, _, err) = d.berth(&["update", "--cpuset-cpus", "0", "upd"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("HostConfig.CpusetCpus"), "{err}");
}

#[test]
fn volumes_from_mounts_the_other_containers_volumes() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    start_sleeper(
        &d,
        "src",
        &["-v", "/data"],
        "echo shared > /data/f; exec sleep 300",
    );
    wait_until("src's file", Duration::from_secs(10), || {
        d.berth(&["exec", "src", "cat", "/data/f"])
            .1
            .contains("shared")
    });
    let out = run_ok(&d, &["--volumes-from", "src"], &["cat", "/data/f"]);
    assert_eq!(out, "shared\n");
    let (st, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert_ne!(
        code(st),
        0,
        "wrote through a read-only --volumes-from: {out}{err}"
    );
    d.berth_ok(&["rm", "-f", "src"]);
}
