//! End-to-end tests of `berth shim start` with real containers. They need
//! root, runc (for `runc spec` and the external-runtime test) and a static
//! busybox at /bin/busybox, and fail loudly without them.
//!
//! Every test builds its own bundle and state dir in a tempdir, uses its own
//! cgroup `/berth-shim-test/<id>`, and its guard kills whatever is left and
//! removes the cgroups even when an assertion fails.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_shim::protocol::StreamType;
use berth_shim::{read_exit_file, spawn_shim, ExecFailureClass, ShimClient, ShimStarted, Status};
use common::*;

#[test]
fn echo_is_logged_and_exit_recorded() {
    let mut fx = Fixture::new("echo", &["echo", "hi"], false);
    let started = fx.start(&fx.args());
    assert!(started.pid > 0 && started.shim_pid > 0);
    let exit = match ShimClient::connect(&fx.state_dir) {
        Ok(c) => c
            .wait()
            .unwrap_or_else(|_| read_exit_file(&fx.state_dir).unwrap().unwrap()),
        // Already finished: the record is on disk.
        Err(_) => read_exit_file(&fx.state_dir).unwrap().unwrap(),
    };
    assert_eq!(exit.exit_code, 0);
    assert!(!exit.oom_killed);
    assert_eq!(exit.signal, None);
    fx.assert_cleaned_up();
    let recorded = read_exit_file(&fx.state_dir).unwrap().expect("exit.json");
    assert_eq!(recorded.exit_code, 0);
    let entries = fx.log_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["log"], "hi\n");
    assert_eq!(entries[0]["stream"], "stdout");
    let time = entries[0]["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(time).is_ok(),
        "{time}"
    );
    let raw = fs::read_to_string(&fx.log_path).unwrap();
    assert!(
        raw.starts_with(r#"{"log":"hi\n","stream":"stdout","time":""#),
        "{raw}"
    );
}

#[test]
fn stderr_and_exit_code() {
    let mut fx = Fixture::new("stderr", &["sh", "-c", "echo err >&2; exit 3"], false);
    fx.start(&fx.args());
    assert!(eventually(Duration::from_secs(10), || read_exit_file(
        &fx.state_dir
    )
    .unwrap()
    .is_some()));
    let exit = read_exit_file(&fx.state_dir).unwrap().unwrap();
    assert_eq!(exit.exit_code, 3);
    let entries = fx.log_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["log"], "err\n");
    assert_eq!(entries[0]["stream"], "stderr");
    fx.assert_cleaned_up();
}

#[test]
fn kill_via_socket_and_wait() {
    let mut fx = Fixture::new("kill", &["sleep", "100"], false);
    // The init of a pid namespace gets no default action for signals from
    // outside (SIGTERM would be ignored by `sleep`, as under Docker): run
    // it in the host pid namespace so SIGTERM kills it.
    fx.edit_spec(|spec| {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
    let started = fx.start(&fx.args());
    let client = fx.client();
    let state = client.state().unwrap();
    assert_eq!(state.status, Status::Running);
    assert_eq!(state.pid, started.pid);
    assert!(
        fx.cgroup_dirs().iter().any(|d| d.exists()),
        "container cgroup exists while running"
    );

    // A waiter connected before the kill is answered after the exit.
    let waiter = {
        let c = client.clone();
        std::thread::spawn(move || c.wait())
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !waiter.is_finished(),
        "wait returned while the container runs"
    );
    client.kill(libc::SIGTERM).unwrap();
    let exit = waiter.join().unwrap();
    let exit = match exit {
        Ok(e) => e,
        Err(e) => panic!("wait: {e}\nshim.log:\n{}", fx.shim_log()),
    };
    assert_eq!(exit.exit_code, 143, "{exit:?}");
    assert_eq!(exit.signal, Some(libc::SIGTERM));
    fx.assert_cleaned_up();
    assert_eq!(
        read_exit_file(&fx.state_dir).unwrap().unwrap().exit_code,
        143
    );
}

#[test]
fn attach_receives_multiplexed_output() {
    let mut fx = Fixture::new(
        "attach",
        &["sh", "-c", "sleep 0.5; echo late; echo oops >&2"],
        false,
    );
    fx.start(&fx.args());
    let mut stream = fx.client().attach_output().unwrap();
    let frames = read_all_frames(&mut stream);
    let stdout: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == StreamType::Stdout)
        .flat_map(|f| f.1.clone())
        .collect();
    let stderr: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == StreamType::Stderr)
        .flat_map(|f| f.1.clone())
        .collect();
    assert_eq!(stdout, b"late\n", "{frames:?}");
    assert_eq!(stderr, b"oops\n", "{frames:?}");
    fx.assert_cleaned_up();
}

#[test]
fn attach_feeds_stdin() {
    let mut fx = Fixture::new("stdin", &["cat"], false);
    let mut args = fx.args();
    args.stdin = true;
    fx.start(&args);
    let mut stream = fx.client().attach().unwrap();
    stream.write_all(b"hello\nworld").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let frames = read_all_frames(&mut stream);
    let out: Vec<u8> = frames.iter().flat_map(|f| f.1.clone()).collect();
    assert_eq!(out, b"hello\nworld");
    assert!(eventually(Duration::from_secs(10), || read_exit_file(
        &fx.state_dir
    )
    .unwrap()
    .is_some()));
    assert_eq!(read_exit_file(&fx.state_dir).unwrap().unwrap().exit_code, 0);
    let logs: Vec<String> = fx
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logs, ["hello\n", "world"]);
    fx.assert_cleaned_up();
}

#[test]
fn tty_output_is_raw_stdout() {
    let mut fx = Fixture::new("tty", &["sh", "-c", "sleep 0.5; tty; echo hi"], true);
    let mut args = fx.args();
    args.tty = true;
    fx.start(&args);
    let client = fx.client();
    client.resize(40, 100).unwrap();
    let mut stream = client.attach_output().unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("/dev/pts/") && text.contains("hi\r\n"),
        "{text:?}"
    );
    let entries = fx.log_entries();
    assert!(
        entries.iter().all(|e| e["stream"] == "stdout"),
        "{entries:?}"
    );
    assert!(entries.iter().any(|e| e["log"] == "hi\r\n"), "{entries:?}");
    fx.assert_cleaned_up();
}

#[test]
fn shim_outlives_its_spawner() {
    let mut fx = Fixture::new("orphan", &["sleep", "100"], false);
    // The "daemon": a shell that starts the shim, then lingers until killed.
    let mut argv = vec!["shim".into(), "start".into()];
    argv.extend(fx.args().to_args());
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg(r#"exe="$1"; shift; "$exe" "$@" || exit 1; exec sleep 100"#)
        .arg("sh")
        .arg(EXE)
        .args(argv)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = daemon.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let started: ShimStarted =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}\n{}", fx.shim_log()));
    fx.started = Some(started);
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(started.shim_pid), "shim died with its spawner");
    assert!(alive(started.pid), "container died with its spawner");
    let stat = fs::read_to_string(format!("/proc/{}/stat", started.shim_pid)).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let (ppid, sid): (i32, i32) = (fields[1].parse().unwrap(), fields[3].parse().unwrap());
    assert_ne!(ppid, daemon.id() as i32);
    // Double fork: the middle process led the new session and exited.
    assert_ne!(
        sid,
        nix::unistd::getsid(None).unwrap().as_raw(),
        "shim left the spawner's session"
    );
    assert_ne!(
        sid, started.shim_pid,
        "shim is not a session leader (cannot get a controlling tty)"
    );
    let client = fx.client();
    assert_eq!(client.state().unwrap().status, Status::Running);
    client.kill(libc::SIGKILL).unwrap();
    let exit = client.wait().unwrap();
    assert_eq!(exit.exit_code, 137);
    fx.assert_cleaned_up();
}

#[test]
fn external_runtime_runs_the_container() {
    let mut fx = Fixture::new("runc", &["sh", "-c", "echo via-runc; exit 5"], false);
    let mut args = fx.args();
    args.runtime = Some(PathBuf::from("/usr/sbin/runc"));
    fx.start(&args);
    assert!(
        eventually(Duration::from_secs(10), || read_exit_file(&fx.state_dir)
            .unwrap()
            .is_some()),
        "{}",
        fx.shim_log()
    );
    assert_eq!(read_exit_file(&fx.state_dir).unwrap().unwrap().exit_code, 5);
    let entries = fx.log_entries();
    assert!(
        entries
            .iter()
            .any(|e| e["log"] == "via-runc\n" && e["stream"] == "stdout"),
        "{entries:?}"
    );
    fx.assert_cleaned_up();
}

#[test]
fn start_errors_are_reported() {
    let fx = Fixture::new("mismatch", &["true"], false);
    let mut args = fx.args();
    args.tty = true;
    let err = spawn_shim(Path::new(EXE), &args).unwrap_err().to_string();
    assert!(err.contains("process.terminal"), "{err}");
    assert!(!fx.state_dir.join("shim.sock").exists());

    let mut bad = fx.args();
    bad.bundle = fx.bundle.join("missing");
    let err = spawn_shim(Path::new(EXE), &bad).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn failed_create_leaves_nothing() {
    let mut fx = Fixture::new("noexec", &["/bin/does-not-exist"], false);
    match spawn_shim(Path::new(EXE), &fx.args()) {
        Err(e) => {
            assert_eq!(
                e.exec_failure().map(|f| f.class),
                Some(ExecFailureClass::NotFound),
                "{e}"
            );
            assert!(!e.to_string().contains("exec-errno"), "{e}");
            assert!(
                !fx.state_dir.join("runtime").join(&fx.id).exists(),
                "runtime state left after {e}"
            );
            for d in fx.cgroup_dirs() {
                assert!(!d.exists(), "cgroup {} left after {e}", d.display());
            }
        }
        // Some runtimes only fail at exec time: then it is an exit code.
        Ok(started) => {
            fx.started = Some(started);
            assert!(eventually(Duration::from_secs(10), || read_exit_file(
                &fx.state_dir
            )
            .unwrap()
            .is_some()));
            assert_ne!(read_exit_file(&fx.state_dir).unwrap().unwrap().exit_code, 0);
            fx.assert_cleaned_up();
        }
    }
}

#[test]
fn pause_resume_and_state() {
    let mut fx = Fixture::new("pause", &["sleep", "100"], false);
    fx.start(&fx.args());
    let client = fx.client();
    client
        .pause()
        .unwrap_or_else(|e| panic!("pause: {e}\n{}", fx.shim_log()));
    assert_eq!(client.state().unwrap().status, Status::Paused);
    client.resume().unwrap();
    assert_eq!(client.state().unwrap().status, Status::Running);
    assert!(client.resize(10, 10).is_err(), "resize without a tty");
    client.kill(libc::SIGKILL).unwrap();
    let exit = client.wait().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(libc::SIGKILL)));
    fx.assert_cleaned_up();
}

#[test]
fn logs_rotate_by_size() {
    let mut fx = Fixture::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
        false,
    );
    let mut args = fx.args();
    args.log_max_size = 2000;
    args.log_max_file = 3;
    fx.start(&args);
    assert!(eventually(Duration::from_secs(10), || read_exit_file(
        &fx.state_dir
    )
    .unwrap()
    .is_some()));
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", fx.log_path.display()));
    assert!(rotated(1).exists() && rotated(2).exists() && !rotated(3).exists());
    for p in [fx.log_path.clone(), rotated(1), rotated(2)] {
        assert!(fs::metadata(&p).unwrap().len() <= 2000, "{}", p.display());
    }
    let last = fx.log_entries().last().cloned().unwrap();
    assert_eq!(last["log"], "line-199\n");
    fx.assert_cleaned_up();
}

#[test]
fn oom_kill_is_reported() {
    let mut fx = Fixture::new(
        "oom",
        &["sh", "-c", "x=a; while true; do x=$x$x; done"],
        false,
    );
    fx.edit_spec(|spec| {
        spec["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    });
    fx.start(&fx.args());
    assert!(
        eventually(Duration::from_secs(30), || read_exit_file(&fx.state_dir)
            .unwrap()
            .is_some()),
        "{}",
        fx.shim_log()
    );
    let exit = read_exit_file(&fx.state_dir).unwrap().unwrap();
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    fx.assert_cleaned_up();
}
