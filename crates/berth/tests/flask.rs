//! The seed's walkthrough end to end: the python:3 base image made from
//! Debian packages (scripts/make-python-image.sh, cached by
//! scripts/test.sh), `build -t flask-hello examples/flask`, `run --rm -d -p
//! 0.0.0.0:PORT:5000`, and http://localhost:PORT/ answers "Hello, World!";
//! stopping removes the container and its port forward. Then the same with
//! the docker CLI pointed at berth.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::containers::{code, wait_until};
use common::{free_port, TestDaemon};

fn python_tar() -> PathBuf {
    let p = Path::new(common::PYTHON_ROOTFS);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh (it runs scripts/make-python-image.sh --tar-only)",
        p.display()
    );
    p.to_path_buf()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/flask")
        .display()
        .to_string()
}

fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut b = String::new();
    s.read_to_string(&mut b).ok()?;
    b.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[test]
fn flask_example_builds_runs_and_answers_hello_world() {
    let d = TestDaemon::builder().short().start();
    let tar = python_tar();
    let (st, _, err) = d.berth(&[
        "import",
        "-c",
        "CMD [\"python3\"]",
        "-c",
        "ENV LANG=C.UTF-8",
        &tar.display().to_string(),
        "python:3",
    ]);
    assert_eq!(code(st), 0, "{err}");

    let (st, out, err) = d.berth(&["build", "-t", "flask-hello", &example()]);
    assert_eq!(code(st), 0, "{out}\n{err}");
    assert!(
        out.contains("Successfully tagged flask-hello:latest"),
        "{out}"
    );
    let cfg = d.berth_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}}",
        "flask-hello",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["python","./main.py"] /usr/src/app {"5000/tcp":{}}"#
    );

    let port = free_port();
    d.berth_ok(&[
        "run",
        "--rm",
        "-d",
        "--name",
        "hello",
        "-p",
        &format!("0.0.0.0:{port}:5000"),
        "flask-hello",
    ]);
    let mut answer = None;
    wait_until("flask answers", Duration::from_secs(20), || {
        answer = get(port);
        answer.is_some()
    });
    assert_eq!(answer.as_deref(), Some("Hello, World!"));
    // Flask logs each request on stderr.
    let (_, out, logs) = d.berth(&["logs", "hello"]);
    assert!(out.contains("Serving Flask app 'main'"), "{out}");
    assert!(logs.contains("\"GET / HTTP/1.0\" 200"), "{logs}");
    d.berth_ok(&["stop", "hello"]);
    wait_until("--rm removed it", Duration::from_secs(10), || {
        d.berth_ok(&["ps", "-a", "-q"]).trim().is_empty()
    });
    assert_eq!(get(port), None);

    // The docker CLI through berth, with the classic builder.
    let out = d.docker_out_env(
        &["build", "-t", "flask-hello2", &example()],
        None,
        &[("DOCKER_BUILDKIT", "0")],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let port = free_port();
    d.docker_ok(&[
        "run",
        "--rm",
        "-d",
        "--name",
        "hello2",
        "-p",
        &format!("0.0.0.0:{port}:5000"),
        "flask-hello2",
    ]);
    let mut answer = None;
    wait_until(
        "flask answers (docker CLI)",
        Duration::from_secs(20),
        || {
            answer = get(port);
            answer.is_some()
        },
    );
    assert_eq!(answer.as_deref(), Some("Hello, World!"));
    d.docker_ok(&["stop", "hello2"]);
}

/// Builds behind a TLS-intercepting proxy (this project's CI machines):
/// without `--trust-host-ca` pip cannot verify PyPI's re-signed
/// certificate; with it the step succeeds, and the CA bundle is in no layer
/// and not in the image config.
#[test]
fn trust_host_ca_lets_run_steps_verify_through_the_hosts_ca() {
    let d = TestDaemon::builder().short().start();
    let tar = python_tar();
    d.berth_ok(&["import", &tar.display().to_string(), "python:3"]);
    let ctx = common::scratch();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM python:3\nRUN pip download --no-deps --no-cache-dir -d /tmp/dl six && ls /tmp/dl\n",
    )
    .unwrap();
    let dir = ctx.path().display().to_string();
    let (st, out, err) = d.berth(&["build", "--no-cache", "-t", "noca", &dir]);
    assert_ne!(
        code(st),
        0,
        "expected a certificate failure without --trust-host-ca:\n{out}"
    );
    assert!(
        format!("{out}{err}").contains("CERTIFICATE_VERIFY_FAILED"),
        "{out}\n{err}"
    );

    let (st, out, err) = d.berth(&["build", "--trust-host-ca", "-t", "withca", &dir]);
    assert_eq!(code(st), 0, "{out}\n{err}");
    assert!(out.contains("six-"), "{out}");
    let (_, ls, _) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "withca",
        "sh",
        "-c",
        "ls /etc/ssl/certs/berth-host-ca.pem 2>&1; env",
    ]);
    assert!(ls.contains("No such file"), "{ls}");
    assert!(
        !ls.contains("SSL_CERT_FILE") && !ls.contains("PIP_CERT"),
        "{ls}"
    );
    let saved = d.berth_out(&["save", "withca"], None);
    assert!(saved.status.success());
    let needle = b"berth-host-ca";
    assert!(
        !saved.stdout.windows(needle.len()).any(|w| w == needle),
        "the CA bundle's mount point reached a layer"
    );
}
