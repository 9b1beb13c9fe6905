//! End-to-end tests of the shim's `exec`: processes joined to a running
//! busybox container, their streams, exit codes and ttys. Same needs as
//! `shim.rs` (root, runc for `runc spec`, /bin/busybox).

mod common;

use std::fs::Permissions;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_shim::protocol::StreamType;
use berth_shim::{read_exec_record, ExecFailureClass, ExecRequest, ShimClient};
use common::*;

fn req(id: &str, args: &[&str]) -> ExecRequest {
    ExecRequest {
        id: id.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        additional_gids: vec![],
        tty: false,
        stdin: false,
        privileged: false,
        console_size: None,
    }
}

fn running(name: &str) -> Fixture {
    let mut fx = Fixture::new(name, &["sleep", "100"], false);
    fx.start(&fx.args());
    fx
}

fn output(frames: &[(StreamType, Vec<u8>)], stream: StreamType) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == stream)
        .flat_map(|f| f.1.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The exit code once the shim has recorded it.
fn exit_code(client: &ShimClient, id: &str) -> i32 {
    let mut code = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = client.exec_state(id).unwrap();
            code = s.exit_code;
            !s.running
        }),
        "exec {id} still running"
    );
    code.expect("an exit code once not running")
}

fn stop(fx: &Fixture, client: &ShimClient) {
    client.kill(libc::SIGKILL).unwrap();
    client.wait().unwrap();
    fx.assert_cleaned_up();
}

#[test]
fn exec_echo_into_running_container() {
    let fx = running("xecho");
    let client = fx.client();
    let (pid, mut stream) = client
        .exec(&req("e1", &["sh", "-c", "echo hi; echo err >&2"]))
        .unwrap_or_else(|e| panic!("exec: {e}\n{}", fx.shim_log()));
    assert!(pid > 0);
    let frames = read_all_frames(&mut stream);
    assert_eq!(output(&frames, StreamType::Stdout), "hi\n", "{frames:?}");
    assert_eq!(output(&frames, StreamType::Stderr), "err\n", "{frames:?}");
    assert_eq!(exit_code(&client, "e1"), 0);
    let s = client.exec_state("e1").unwrap();
    assert_eq!(s.pid, pid as i32);
    // The exec's output is not the container's log.
    assert!(fx.log_entries().is_empty(), "{:?}", fx.log_entries());
    assert_eq!(client.state().unwrap().status, berth_shim::Status::Running);
    let err = client.exec_state("nope").unwrap_err();
    assert_eq!(
        berth_core::HasKind::kind(&err),
        berth_core::ErrorKind::NotFound
    );
    let dup = client.exec(&req("e1", &["true"])).unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    stop(&fx, &client);
}

#[test]
fn exec_exit_code_user_env_and_cwd() {
    let fx = running("xcode");
    let client = fx.client();
    let (_, mut stream) = client.exec(&req("five", &["sh", "-c", "exit 5"])).unwrap();
    assert!(read_all_frames(&mut stream).is_empty());
    assert_eq!(exit_code(&client, "five"), 5);

    let mut r = req(
        "who",
        &[
            "sh",
            "-c",
            "echo $A; pwd; busybox id -u; busybox id -g; busybox id -G",
        ],
    );
    r.env.push("A=b".into());
    r.cwd = "/tmp".into();
    r.user = "65534:65533".into();
    r.additional_gids = vec![65533, 4242];
    let (_, mut stream) = client.exec(&r).unwrap();
    let frames = read_all_frames(&mut stream);
    assert_eq!(
        output(&frames, StreamType::Stdout),
        "b\n/tmp\n65534\n65533\n65533 4242\n",
        "{frames:?}"
    );
    assert_eq!(exit_code(&client, "who"), 0);
    stop(&fx, &client);
}

#[test]
fn exec_feeds_stdin() {
    let fx = running("xstdin");
    let client = fx.client();
    let mut r = req("cat", &["cat"]);
    r.stdin = true;
    let (_, mut stream) = client.exec(&r).unwrap();
    stream.write_all(b"hello\nworld").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let frames = read_all_frames(&mut stream);
    assert_eq!(output(&frames, StreamType::Stdout), "hello\nworld");
    assert_eq!(exit_code(&client, "cat"), 0);
    stop(&fx, &client);
}

#[test]
fn exec_with_tty_is_raw_and_resizable() {
    let fx = running("xtty");
    let client = fx.client();
    let mut r = req(
        "tty",
        &[
            "sh",
            "-c",
            "tty; busybox stty size; sleep 1; busybox stty size",
        ],
    );
    r.tty = true;
    r.console_size = Some([30, 90]);
    let (_, mut stream) = client.exec(&r).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    client.exec_resize("tty", 40, 100).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    // The resize reaches the running process. The initial size is set on
    // the pty master once libcontainer hands it over, which races with the
    // process's first read (libcontainer 0.7 ignores process.consoleSize),
    // so only the size after the resize is certain.
    assert!(text.contains("40 100\r\n"), "{text:?}");
    assert_eq!(exit_code(&client, "tty"), 0);
    let err = client.exec_resize("tty", 1, 1).unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    stop(&fx, &client);
}

#[test]
fn exec_kill_and_failures() {
    let fx = running("xkill");
    let client = fx.client();
    let (_, stream) = client.exec(&req("sleeper", &["sleep", "100"])).unwrap();
    assert!(client.exec_state("sleeper").unwrap().running);
    client.exec_kill("sleeper", libc::SIGKILL).unwrap();
    assert_eq!(exit_code(&client, "sleeper"), 137);
    drop(stream);

    let err = client
        .exec(&req("missing", &["/bin/does-not-exist"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does-not-exist"), "{err}");
    assert!(!err.contains("exec-errno"), "marker taken out: {err}");
    assert!(client.exec_state("missing").is_err());
    // Why it failed is typed, decided from the errno in the container: at
    // the lookup before the start, or (for a user without the execute
    // permission) by execve itself.
    let etc = fx.bundle.join("rootfs/etc");
    std::fs::write(etc.join("data"), "x").unwrap();
    std::fs::write(etc.join("root-only"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(etc.join("root-only"), Permissions::from_mode(0o700)).unwrap();
    let failure_as = |user: &str, args: &[&str]| {
        let mut r = req("typed", args);
        r.user = user.into();
        client.exec(&r).unwrap_err().exec_failure().map(|f| f.class)
    };
    let failure = |args: &[&str]| failure_as("", args);
    assert_eq!(
        failure(&["/bin/does-not-exist"]),
        Some(ExecFailureClass::NotFound)
    );
    assert_eq!(
        failure(&["no-such-command"]),
        Some(ExecFailureClass::NotFound)
    );
    assert_eq!(
        failure(&["/etc/data"]),
        Some(ExecFailureClass::NotExecutable)
    );
    assert_eq!(failure(&["/etc"]), Some(ExecFailureClass::NotExecutable));
    assert_eq!(
        failure_as("65534:65534", &["/etc/root-only"]),
        Some(ExecFailureClass::NotExecutable)
    );

    client.pause().unwrap();
    let err = client
        .exec(&req("paused", &["true"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("paused"), "{err}");
    client.resume().unwrap();

    // An exec still running when the container ends is killed with it; the
    // record outlives the shim in execs.json.
    let (_, mut stream) = client.exec(&req("orphan", &["sleep", "100"])).unwrap();
    stop(&fx, &client);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let rec = read_exec_record(&fx.state_dir, "orphan").expect("execs.json record");
    assert!(!rec.running);
    assert_eq!(rec.exit_code, Some(137));
    assert_eq!(client.exec_state("orphan").unwrap().exit_code, Some(137));

    let err = client
        .exec(&req("late", &["true"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unreachable"), "{err}");
}
