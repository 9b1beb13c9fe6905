//! Issue #5's acceptance checks for the builder, each as a user would make
//! them: a Dockerfile using every instruction of the reference, inspected
//! and listed with `image inspect` and `history`; a multi-stage build whose
//! first stage compiles a static binary with gcc and whose last is
//! `FROM scratch`; independent stages running at the same time.

mod common;

use std::fs;
use std::path::Path;

use common::build::{assert_clean, context, path};
use common::containers::{busybox, code};
use common::TestDaemon;

fn run(d: &TestDaemon, args: &[&str]) -> String {
    let mut v = vec!["run", "--rm", "--network", "none"];
    v.extend_from_slice(args);
    d.berth_ok(&v)
}

/// Every instruction of the Dockerfile reference in one file.
const EVERY_INSTRUCTION: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS base
ARG BASE
ARG FLAVOR=plain
LABEL org.opencontainers.image.title="every instruction" base=$BASE
ENV APP_HOME=/srv/app \
    GREETING="hello world"
RUN echo "shell $FLAVOR" > /shell.txt
RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]
RUN <<EOF
echo heredoc one > /heredoc.txt
echo heredoc two >> /heredoc.txt
EOF
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group
WORKDIR $APP_HOME
ADD bundle.tar ./vendor/
COPY --chown=app:app --chmod=0750 run.sh bin/
COPY <<EOF conf/app.conf
greeting=${GREETING}
EOF
EXPOSE 8080 9090/udp
VOLUME ["/data", "/cache"]
USER app
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child > /tmp/onbuild.txt
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=5s --start-period=2s --retries=4 CMD test -f /srv/app/conf/app.conf
ENTRYPOINT ["/srv/app/bin/run.sh"]
CMD ["--port", "8080"]
"#;

#[test]
fn every_instruction_builds_and_inspects_as_the_reference_says() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        ("Dockerfile", EVERY_INSTRUCTION),
        (
            "run.sh",
            "#!/bin/sh\necho \"run.sh $* as $(id -un) in $(pwd)\"\ncat conf/app.conf vendor/pkg/readme\n",
        ),
    ]);
    let tar = common::tarball::build(&[
        common::tarball::Entry::dir("pkg"),
        common::tarball::Entry::file("pkg/readme", b"from the tar\n"),
    ]);
    fs::write(ctx.path().join("bundle.tar"), tar).unwrap();

    let (st, out, err) = d.berth(&[
        "build",
        "--build-arg",
        "FLAVOR=tasty",
        "-t",
        "every",
        path(&ctx),
    ]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    // 23 instructions, ARG before FROM counted, as the classic builder numbers them.
    assert!(out.contains("Step 1/23 : ARG BASE=busybox\n"), "{out}");
    assert!(out.contains("Step 2/23 : FROM ${BASE} AS base\n"), "{out}");
    assert!(
        out.contains("Step 23/23 : CMD [\"--port\", \"8080\"]\n"),
        "{out}"
    );
    assert!(!out.contains("[Warning]"), "{out}");

    // The image config, field by field, as the reference describes it.
    let c = &d.inspect("every")["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/srv/app/bin/run.sh"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--port", "8080"]));
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert!(env.contains(&"APP_HOME=/srv/app".to_string()), "{env:?}");
    assert!(env.contains(&"GREETING=hello world".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    // Build args are not in the image's environment.
    assert!(!env.iter().any(|e| e.starts_with("FLAVOR=")), "{env:?}");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "9090/udp": {}})
    );
    assert_eq!(c["User"], "app");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}, "/cache": {}}));
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"],
        "every instruction"
    );
    assert_eq!(c["Labels"]["base"], "busybox");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD-SHELL", "test -f /srv/app/conf/app.conf"],
            "Interval": 30_000_000_000i64,
            "Timeout": 5_000_000_000i64,
            "StartPeriod": 2_000_000_000i64,
            "Retries": 4,
        })
    );
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo child > /tmp/onbuild.txt"])
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));

    // History: one entry per step after FROM, newest first, as the legacy
    // builder writes `CreatedBy`; COPY/ADD name the content hash.
    // (Through the API: a heredoc's entry spans lines.)
    let hist = d.api_json("/images/every/history");
    let lines: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["CreatedBy"].as_str().unwrap())
        .collect();
    let h = lines.join("\n");
    let want: &[&str] = &[
        r#"/bin/sh -ec #(nop)  CMD ["--port" "8080"]"#,
        r#"/bin/sh -ec #(nop)  ENTRYPOINT ["/srv/app/bin/run.sh"]"#,
        r#"/bin/sh -ec #(nop)  HEALTHCHECK &{["CMD-SHELL" "test -f /srv/app/conf/app.conf"] "30s" "5s" "2s" "0s" '\x04'}"#,
        "/bin/sh -ec #(nop)  STOPSIGNAL SIGQUIT",
        "/bin/sh -ec #(nop)  ONBUILD RUN echo child > /tmp/onbuild.txt",
        // The new shell already writes its own entry, as `%v` of the slice.
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        "/bin/sh -c #(nop)  USER app",
        "/bin/sh -c #(nop)  VOLUME [/data /cache]",
        "/bin/sh -c #(nop)  EXPOSE 8080 9090/udp",
    ];
    assert_eq!(&lines[..want.len()], want, "{h}");
    let copy_heredoc = lines[want.len()];
    assert!(
        copy_heredoc.starts_with("/bin/sh -c #(nop) COPY ")
            && copy_heredoc.ends_with(" in conf/app.conf "),
        "{h}"
    );
    let copy = lines[want.len() + 1];
    assert!(
        copy.starts_with("/bin/sh -c #(nop) COPY file:") && copy.ends_with(" in bin/ "),
        "{h}"
    );
    let add = lines[want.len() + 2];
    assert!(
        add.starts_with("/bin/sh -c #(nop) ADD file:") && add.ends_with(" in ./vendor/ "),
        "{h}"
    );
    let rest: &[&str] = &[
        "/bin/sh -c #(nop) WORKDIR /srv/app",
        "|2 BASE=busybox FLAVOR=tasty /bin/sh -c echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group",
    ];
    assert_eq!(&lines[want.len() + 3..want.len() + 5], rest, "{h}");
    let heredoc = lines[want.len() + 5];
    assert!(
        heredoc
            == "|2 BASE=busybox FLAVOR=tasty /bin/sh -c echo heredoc one > /heredoc.txt\necho heredoc two >> /heredoc.txt\n",
        "{h}"
    );
    let rest: &[&str] = &[
        "|2 BASE=busybox FLAVOR=tasty /bin/sh -c echo exec > /exec.txt",
        "|2 BASE=busybox FLAVOR=tasty /bin/sh -c echo \"shell $FLAVOR\" > /shell.txt",
        "/bin/sh -c #(nop)  ENV APP_HOME=/srv/app GREETING=hello world",
        "/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=every instruction base=busybox",
        "/bin/sh -c #(nop)  ARG FLAVOR=plain",
        "/bin/sh -c #(nop)  ARG BASE",
    ];
    assert_eq!(&lines[want.len() + 6..want.len() + 12], rest, "{h}");
    // Below the build's steps, busybox's own history.
    assert_eq!(lines.len(), want.len() + 12 + 1, "{h}");

    // The image does what the file says.
    assert_eq!(
        run(
            &d,
            &[
                "--entrypoint",
                "stat",
                "every",
                "-c",
                "%U:%G %a %n",
                "/srv",
                ".",
                "bin",
                "bin/run.sh"
            ]
        ),
        "root:root 755 /srv\nroot:root 755 .\napp:app 755 bin\napp:app 750 bin/run.sh\n"
    );
    assert_eq!(
        run(&d, &["every"]),
        "run.sh --port 8080 as app in /srv/app\ngreeting=hello world\nfrom the tar\n"
    );
    assert_eq!(
        run(
            &d,
            &[
                "--entrypoint",
                "cat",
                "every",
                "/shell.txt",
                "/exec.txt",
                "/heredoc.txt"
            ]
        ),
        "shell tasty\nexec\nheredoc one\nheredoc two\n"
    );
    assert_eq!(
        run(
            &d,
            &[
                "--entrypoint",
                "stat",
                "every",
                "-c",
                "%U:%G %a",
                "bin/run.sh"
            ]
        ),
        "app:app 750\n"
    );
    // The ONBUILD trigger runs in a child build, not in this image.
    let (st, _, _) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "test",
        "every",
        "-e",
        "/tmp/onbuild.txt",
    ]);
    assert_ne!(code(st), 0);
    let child = context(&[("Dockerfile", "FROM every\nUSER root\n")]);
    let out = d.berth_ok(&["build", "-t", "every-child", path(&child)]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(
        run(
            &d,
            &["--entrypoint", "cat", "every-child", "/tmp/onbuild.txt"]
        ),
        "child\n"
    );
    // The trigger ran as the base's USER with its SHELL (`-ec`), and is consumed.
    let ob = d.inspect("every-child")["Config"]["OnBuild"].clone();
    assert!(ob.is_null() || ob == serde_json::json!([]), "{ob}");
    assert_clean(&d);
}

/// The python:3 image made from Debian packages with gcc and libc6-dev
/// (scripts/make-python-image.sh, run by scripts/test.sh).
pub fn python_tar() -> std::path::PathBuf {
    let p = Path::new(common::PYTHON_ROOTFS);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/test.sh (it runs scripts/make-python-image.sh --tar-only)",
        p.display()
    );
    p.to_path_buf()
}

const HELLO_C: &str = r#"#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello from a static binary, %d args\n", argc - 1);
    return 0;
}
"#;

/// A stage compiles a static binary with gcc (python:3 carries it, as the
/// official image does); the final stage is `FROM scratch` with only that
/// binary; `--target` leaves out a later stage that would fail.
#[test]
fn multi_stage_static_binary_from_gcc_onto_scratch() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.import(&python_tar(), "python:3");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM python:3 AS build\n\
             WORKDIR /src\n\
             COPY hello.c .\n\
             RUN gcc -static -O2 -o /hello hello.c && /hello compiled\n\
             FROM scratch AS final\n\
             COPY --from=build /hello /hello\n\
             ENTRYPOINT [\"/hello\"]\n\
             FROM busybox AS broken\n\
             RUN echo broken stage ran && exit 1\n",
        ),
        ("hello.c", HELLO_C),
    ]);
    let (st, out, err) = d.berth(&["build", "--target", "final", "-t", "hello", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("hello from a static binary, 1 args\n"),
        "{out}"
    );
    // The stage after the target is not needed: never built.
    assert!(!out.contains("broken stage ran"), "{out}");
    assert!(!out.contains("Step 9/9"), "{out}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "hello", "a", "b"]),
        "hello from a static binary, 2 args\n"
    );
    // Only the binary: one layer, no shell, no libc.
    let img = d.inspect("hello");
    assert_eq!(
        img["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{img}"
    );
    assert_eq!(img["Config"]["Entrypoint"], serde_json::json!(["/hello"]));
    let (st, _, _) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        "hello",
    ]);
    assert_ne!(code(st), 0, "the scratch image has a shell");
    // Without --target the last stage is built, and it does fail.
    let (st, out, err) = d.berth(&["build", "--force-rm", "-t", "broken", path(&ctx)]);
    assert_eq!(code(st), 1, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("broken stage ran"), "{out}");
    assert_clean(&d);
}

/// A tiny HTTP server on the host that answers nobody until `want`
/// clients are connected at once (then "together" to each), or "alone"
/// after `patience`: proof of concurrency that does not depend on timing.
fn rendezvous(want: usize, patience: std::time::Duration) -> (u16, std::thread::JoinHandle<usize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut held = Vec::new();
        while held.len() < want && start.elapsed() < patience {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                        .unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    held.push(s);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        let n = held.len();
        let body = if n == want { "together\n" } else { "alone\n" };
        for mut s in held {
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        n
    });
    (port, h)
}

/// Stages that do not depend on each other build at the same time: each
/// of two RUN steps waits for the other to be running too.
#[test]
fn independent_stages_build_in_parallel() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (port, server) = rendezvous(2, std::time::Duration::from_secs(60));
    let gw = d.bip.split('/').next().unwrap().to_string();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS a\nARG RV\nRUN wget -q -O /met \"$RV/a\" && echo \"a met: $(cat /met)\"\n\
         FROM busybox AS b\nARG RV\nRUN wget -q -O /met \"$RV/b\" && echo \"b met: $(cat /met)\"\n\
         FROM busybox\nCOPY --from=a /met /a\nCOPY --from=b /met /b\nCMD [\"cat\", \"/a\", \"/b\"]\n",
    )]);
    let rv = format!("RV=http://{gw}:{port}");
    let (st, out, err) = d.berth(&["build", "--build-arg", &rv, "-t", "par", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        server.join().unwrap(),
        2,
        "the two RUN steps never waited together:\n{out}"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "par"]),
        "together\ntogether\n"
    );
    // Readable: every line is whole and names its stage.
    assert!(out.contains("[a] a met: together\n"), "{out}");
    assert!(out.contains("[b] b met: together\n"), "{out}");
    assert!(out.contains("[a] Step 1/10 : FROM busybox AS a\n"), "{out}");
    assert!(
        out.contains("[2] Step 10/10 : CMD [\"cat\", \"/a\", \"/b\"]\n"),
        "{out}"
    );
    for l in out.lines() {
        assert!(
            ["[a] ", "[b] ", "[2] "].iter().any(|p| l.starts_with(p))
                || l.starts_with("Successfully "),
            "line without its stage: {l:?}\n{out}"
        );
    }
    assert_clean(&d);

    // A failing stage stops the build: its error and exit code, no later
    // stage, nothing left behind.
    let bad = context(&[(
        "Dockerfile",
        "FROM busybox AS a\nRUN sleep 1 && exit 9\nRUN echo after the failure\n\
         FROM busybox AS b\nRUN sleep 3\nRUN echo b goes on\n\
         FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n",
    )]);
    let images = d.image_ids();
    let (st, out, err) = d.berth(&["build", "--force-rm", "-t", "parbad", path(&bad)]);
    assert_eq!(code(st), 9, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(
            "Dockerfile:2: stage a: The command '/bin/sh -c sleep 1 && exit 9' returned a non-zero code: 9"
        ),
        "{err}"
    );
    assert!(!out.contains("after the failure"), "{out}");
    assert!(!out.contains("[2] "), "{out}");
    assert!(!err.contains("another stage"), "{err}");
    let (st, _, _) = d.berth(&["image", "inspect", "parbad"]);
    assert_ne!(code(st), 0);
    // Images of steps that finished stay as cache; none tagged, none half made.
    let after = d.image_ids();
    assert!(after.len() >= images.len(), "{after:?}");
    assert_clean(&d);
}

/// `--progress`: the live view when asked for (or on a terminal with the
/// default `auto`), the builder's plain text otherwise.
#[test]
fn progress_view_tty_auto_and_plain() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /a\nRUN for i in 1 2 3 4 5 6 7; do echo line $i; done\nCMD [\"cat\", \"/a\"]\n",
        ),
        ("a.txt", "a\n"),
    ]);
    let out = d.berth_ok(&["build", "--progress", "tty", "-t", "pv", path(&ctx)]);
    assert!(out.contains("[+] Building "), "{out}");
    assert!(out.contains("\x1b[J"), "not redrawn in place: {out:?}");
    assert!(out.contains("(4/4 steps, 0 cached) FINISHED"), "{out}");
    assert!(
        out.contains("    | line 7"),
        "the running step's lines: {out}"
    );
    assert!(out.ends_with("Successfully tagged pv:latest\n"), "{out}");
    let out = d.berth_ok(&["build", "--progress", "tty", "-t", "pv", path(&ctx)]);
    assert!(out.contains("(4/4 steps, 3 cached) FINISHED"), "{out}");
    assert!(out.contains(" => CACHED Step 3/4 : RUN for i in"), "{out}");
    // plain (and auto without a terminal): the classic builder's text.
    for mode in ["plain", "auto"] {
        let out = d.berth_ok(&["build", "--progress", mode, "-t", "pv", path(&ctx)]);
        assert!(
            out.starts_with("Step 1/4 : FROM busybox\n"),
            "{mode}: {out}"
        );
        assert!(!out.contains("\x1b["), "{mode}: {out:?}");
    }
    // auto on a terminal: the live view.
    let cmd = format!(
        "{} -H {} build -t pv {}",
        common::BERTH,
        d.host(),
        path(&ctx)
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux) runs the CLI on a pseudo-terminal");
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains("[+] Building "), "{tty}");
    // A bad value is named.
    let (st, _, err) = d.berth(&["build", "--progress", "fancy", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("fancy"), "{err}");
    assert_clean(&d);
}
