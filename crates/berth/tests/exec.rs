//! `exec` end to end: the stock docker CLI, the berth CLI and raw Engine API
//! requests against a busybox container (network `none`).

mod common;

use std::time::Duration;

use common::containers::{busybox, code, container_id, wait_until};
use common::TestDaemon;

/// A daemon with busybox and a running `web` container.
fn daemon_with_web() -> (TestDaemon, String) {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = container_id(&d, "web");
    (d, id)
}

#[test]
fn docker_exec_output_exit_codes_stdin_user_env_cwd() {
    let (d, _) = daemon_with_web();
    let out = d.docker_ok(&["exec", "web", "ls", "/"]);
    assert!(
        out.lines().any(|l| l == "bin") && out.lines().any(|l| l == "etc"),
        "{out}"
    );

    let (st, _, err) = d.docker(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(code(st), 5, "{err}");

    let o = d.docker_out(&["exec", "-i", "web", "cat"], Some(b"hi\nthere".to_vec()));
    assert_eq!(code(o.status), 0, "{}", o.stderr);
    assert_eq!(o.stdout, b"hi\nthere");

    let out = d.docker_ok(&[
        "exec",
        "-e",
        "A=b",
        "-w",
        "/tmp",
        "-u",
        "65534",
        "web",
        "sh",
        "-c",
        "echo $A; pwd; id -u; id -g",
    ]);
    assert_eq!(out, "b\n/tmp\n65534\n65534\n");

    let (st, out, err) = d.docker(&["exec", "web", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(code(st), 0, "{err}");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));

    // Like dockerd: the start failure is reported in runc's words and the
    // exit code is 127 for no such executable, 126 for one that cannot be
    // executed.
    let (st, out, err) = d.docker(&["exec", "web", "no-such-binary"]);
    assert_eq!(code(st), 127, "{out} {err}");
    // (The docker CLI prints an exec's start error on stdout.)
    let said = format!("{out}{err}");
    assert!(
        said.contains("exec: \"no-such-binary\": executable file not found in $PATH"),
        "{said}"
    );
    let (st, out, err) = d.docker(&["exec", "web", "/etc/passwd"]);
    assert_eq!(code(st), 126, "{out} {err}");
    assert!(
        format!("{out}{err}").contains("permission denied"),
        "{out} {err}"
    );
    // An executable on a noexec mount passes the lookup; execve refuses it.
    d.docker_ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "printf '#!/bin/sh\\n' > /dev/shm/run && chmod 755 /dev/shm/run",
    ]);
    let (st, out, err) = d.docker(&["exec", "web", "/dev/shm/run"]);
    assert_eq!(code(st), 126, "{out} {err}");
    assert!(
        format!("{out}{err}").contains("permission denied"),
        "{out} {err}"
    );
    d.berth_ok(&["rm", "-f", "web"]);
}

#[test]
fn docker_exec_detached_and_tty() {
    let (d, _) = daemon_with_web();
    d.docker_ok(&[
        "exec",
        "-d",
        "web",
        "sh",
        "-c",
        "echo done > /tmp/marker; sleep 2",
    ]);
    wait_until(
        "the detached exec to write its marker",
        Duration::from_secs(10),
        || d.docker(&["exec", "web", "cat", "/tmp/marker"]).1 == "done\n",
    );

    // A tty without -i: raw output (CRLF), TERM set, the pty is the exec's own.
    let (st, out, err) = d.docker(&["exec", "-t", "web", "sh", "-c", "tty; echo $TERM; exit 3"]);
    assert_eq!(code(st), 3, "{err}");
    assert!(
        out.starts_with("/dev/pts/") && out.ends_with("\r\nxterm\r\n"),
        "{out:?}"
    );
    d.berth_ok(&["rm", "-f", "web"]);
}

#[test]
fn berth_cli_exec() {
    let (d, _) = daemon_with_web();
    let (st, out, err) = d.berth(&["exec", "web", "sh", "-c", "echo from-berth; exit 7"]);
    assert_eq!(code(st), 7, "{err}");
    assert_eq!(out, "from-berth\n");
    let o = d.berth_out(&["exec", "-i", "web", "cat"], Some(b"piped\n".to_vec()));
    assert_eq!(code(o.status), 0, "{}", o.stderr);
    assert_eq!(o.stdout, b"piped\n");
    d.berth_ok(&["rm", "-f", "web"]);
}

#[test]
fn api_exec_create_start_inspect_and_errors() {
    let (d, id) = daemon_with_web();
    let body = br#"{"Cmd":["sh","-c","echo x; echo y >&2; exit 2"],"AttachStdout":true,"AttachStderr":true}"#;
    let r = d.api_full(
        "POST",
        "/v1.47/containers/web/exec",
        Some(body),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let exec_id = created["Id"].as_str().unwrap().to_string();
    assert_eq!(exec_id.len(), 64);

    let v = d.api_json(&format!("/v1.47/exec/{exec_id}/json"));
    assert_eq!(v["Running"], false);
    assert!(v["ExitCode"].is_null(), "{v}");
    assert_eq!(v["ContainerID"], id.as_str());
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert_eq!(
        v["ProcessConfig"]["arguments"],
        serde_json::json!(["-c", "echo x; echo y >&2; exit 2"])
    );

    // Without an upgrade the output is the response body, multiplexed.
    let r = d.api_full(
        "POST",
        &format!("/v1.47/exec/{exec_id}/start"),
        Some(br#"{"Detach":false}"#),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        b"\x01\0\0\0\0\0\0\x02x\n\x02\0\0\0\0\0\0\x02y\n".to_vec()
    );
    wait_until("the exit code", Duration::from_secs(10), || {
        d.api_json(&format!("/v1.47/exec/{exec_id}/json"))["ExitCode"] == 2
    });
    let v = d.api_json(&format!("/v1.47/exec/{exec_id}/json"));
    assert!(v["Pid"].as_i64().unwrap() > 0, "{v}");

    let (status, body) = d.api("POST", &format!("/v1.47/exec/{exec_id}/start"), Some(b"{}"));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("has already run"), "{body}");
    let (status, body) = d.api("GET", "/v1.47/exec/nope/json", None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No such exec instance: nope"), "{body}");

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=web",
    ]);
    assert!(
        events.contains("exec_create: sh -c echo x; echo y >&2; exit 2"),
        "{events}"
    );
    assert!(
        events.contains(&format!("exec_die {id} (execID={exec_id}, exitCode=2")),
        "{events}"
    );

    // Not running: 409 with Docker's message; exec records go with the container.
    d.docker_ok(&["kill", "web"]);
    wait_until("web to exit", Duration::from_secs(10), || {
        common::containers::ps_status(&d, "web").is_some_and(|s| s.starts_with("Exited"))
    });
    let (status, body) = d.api(
        "POST",
        "/v1.47/containers/web/exec",
        Some(br#"{"Cmd":["true"]}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains(&format!("Container {id} is not running")),
        "{body}"
    );
    d.docker_ok(&["rm", "web"]);
    let (status, _) = d.api("GET", &format!("/v1.47/exec/{exec_id}/json"), None);
    assert_eq!(status, 404);
}

/// The `Seccomp:`, `NoNewPrivs:` and capability lines of a process's
/// /proc/PID/status, as the process itself reads them.
fn security_lines(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| {
            [
                "Seccomp:",
                "NoNewPrivs:",
                "CapInh:",
                "CapPrm:",
                "CapEff:",
                "CapBnd:",
                "CapAmb:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// An exec'd process is confined exactly like the container's own process:
/// the container's seccomp filter (as runc applies it to `docker exec`), the
/// same capability sets, and for another user no effective capabilities.
#[test]
fn exec_gets_the_containers_seccomp_filter_and_capabilities() {
    let (d, _) = daemon_with_web();
    let init = d.docker_ok(&["exec", "web", "cat", "/proc/1/status"]);
    let own = d.docker_ok(&["exec", "web", "cat", "/proc/self/status"]);
    let init_lines = security_lines(&init);
    assert!(init_lines.contains(&"Seccomp: 2".to_string()), "{init}");
    assert_eq!(
        security_lines(&own),
        init_lines,
        "exec vs the container's process 1"
    );
    // Docker's default set: no CAP_SYS_ADMIN (bit 21) anywhere.
    for l in &init_lines {
        if let Some(hex) = l.strip_prefix("CapBnd: ") {
            let mask = u64::from_str_radix(hex, 16).unwrap();
            assert_eq!(
                mask & (1 << 21),
                0,
                "CAP_SYS_ADMIN in the bounding set: {l}"
            );
        }
    }
    // The filter is the container's: a syscall only it denies is refused.
    let (st, _, err) = d.docker(&["exec", "web", "unshare", "-U", "true"]);
    assert_ne!(
        code(st),
        0,
        "unshare of a user namespace allowed in exec: {err}"
    );

    let user = d.docker_ok(&["exec", "-u", "65534", "web", "cat", "/proc/self/status"]);
    let user_lines = security_lines(&user);
    assert!(user_lines.contains(&"Seccomp: 2".to_string()), "{user}");
    assert!(
        user_lines.contains(&"CapEff: 0000000000000000".to_string()),
        "{user}"
    );

    // no-new-privileges: the filter loads without privilege, the flag shows.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "nnp",
        "--network",
        "none",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sleep",
        "1000",
    ]);
    let nnp = security_lines(&d.docker_ok(&["exec", "nnp", "cat", "/proc/self/status"]));
    assert!(nnp.contains(&"Seccomp: 2".to_string()), "{nnp:?}");
    assert!(nnp.contains(&"NoNewPrivs: 1".to_string()), "{nnp:?}");

    // seccomp=unconfined: no filter for the container, none for its execs.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "free",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "sleep",
        "1000",
    ]);
    let free = security_lines(&d.docker_ok(&["exec", "free", "cat", "/proc/self/status"]));
    assert!(free.contains(&"Seccomp: 0".to_string()), "{free:?}");
    for name in ["web", "nnp", "free"] {
        d.docker_ok(&["rm", "-f", name]);
    }
}

/// `exec -t` with a console size: the program sees that size from its
/// first instruction (the size is set on the terminal inside the new
/// process before `execve`, not by a resize that races with it). Twenty
/// tries, since a race would show only sometimes.
#[test]
fn exec_tty_has_its_console_size_from_the_start() {
    let (d, _) = daemon_with_web();
    for i in 0..20u16 {
        let (rows, cols) = (20 + i, 100 + i);
        let body = format!(
            r#"{{"Cmd":["stty","size"],"Tty":true,"AttachStdout":true,"ConsoleSize":[{rows},{cols}]}}"#
        );
        let r = d.api_full(
            "POST",
            "/v1.47/containers/web/exec",
            Some(body.as_bytes()),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let created: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let exec_id = created["Id"].as_str().unwrap().to_string();
        let r = d.api_full(
            "POST",
            &format!("/v1.47/exec/{exec_id}/start"),
            Some(
                format!(r#"{{"Detach":false,"Tty":true,"ConsoleSize":[{rows},{cols}]}}"#)
                    .as_bytes(),
            ),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            format!("{rows} {cols}\r\n"),
            "try {i}"
        );
    }
    d.berth_ok(&["rm", "-f", "web"]);
}
