//! `berth build` / `POST /build` / `DOCKER_BUILDKIT=0 docker build`: the
//! classic builder run by the engine, checked from outside (the CLIs, image
//! inspect and history, running the built images).

mod common;

use std::fs;
use std::path::Path;

use common::build::{assert_clean, context, path};
use common::containers::{busybox, code};
use common::TestDaemon;

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

#[test]
fn run_copy_cmd_build_runs() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nRUN echo built > /built.txt\nCOPY hello.txt /data/\nCMD [\"cat\", \"/built.txt\", \"/data/hello.txt\"]\n",
        ),
        ("hello.txt", "hello from the context\n"),
    ]);
    let (st, out, err) = d.berth(&["build", "-t", "busybox-x", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("Step 1/4 : FROM busybox\n"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Removing intermediate container "), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(
        out.contains("Successfully tagged busybox-x:latest\n"),
        "{out}"
    );
    let run = d.berth_ok(&["run", "--rm", "--network", "none", "busybox-x"]);
    assert_eq!(run, "built\nhello from the context\n");
    let ls = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox-x",
        "stat",
        "-c",
        "%u:%g %a",
        "/data/hello.txt",
    ]);
    assert_eq!(ls.trim(), "0:0 644");
    assert_clean(&d);
}

#[test]
fn multi_stage_copy_from_and_target() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox AS builder\nRUN mkdir /out && echo artifact > /out/a\n\
         FROM busybox AS unused\nRUN exit 7\n\
         FROM busybox\nCOPY --from=builder /out /app\nCMD [\"cat\", \"/app/a\"]\n",
    )]);
    let (st, out, err) = d.berth(&["build", "-t", "ms", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    // The unused stage is not needed for the target, so it never ran.
    assert!(!out.contains("exit 7"), "{out}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "ms"]),
        "artifact\n"
    );
    // --target stops at a named stage.
    let (st, out, err) = d.berth(&[
        "build",
        "--target",
        "builder",
        "-t",
        "ms-builder",
        path(&ctx),
    ]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "ms-builder",
            "cat",
            "/out/a"
        ]),
        "artifact\n"
    );
    let (st, _, err) = d.berth(&["build", "--target", "nosuch", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("nosuch"), "{err}");
    assert_clean(&d);
}

#[test]
fn cache_hits_and_changed_copy_reruns_from_there() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCMD [\"cat\", \"/copy\"]\n",
        ),
        ("a.txt", "first\n"),
    ]);
    let out1 = d.berth_ok(&["build", "-t", "c", path(&ctx)]);
    let id1 = image_id(&d, "c");
    // Rebuild (after a daemon restart: the cache is on disk): all cached.
    d.restart();
    let out2 = d.berth_ok(&["build", "-t", "c", path(&ctx)]);
    assert_eq!(out2.matches(" ---> Using cache").count(), 4, "{out2}");
    assert!(!out2.contains("Running in"), "{out2}");
    assert_eq!(image_id(&d, "c"), id1);
    // Touching a file (new mtime, same content) still hits.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(ctx.path().join("a.txt"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out3 = d.berth_ok(&["build", "-t", "c", path(&ctx)]);
    assert_eq!(out3.matches(" ---> Using cache").count(), 4, "{out3}");
    // Changing the copied file reruns exactly the steps from that COPY on.
    fs::write(ctx.path().join("a.txt"), "second\n").unwrap();
    let out4 = d.berth_ok(&["build", "-t", "c", path(&ctx)]);
    let steps: Vec<&str> = out4.split("Step ").skip(1).collect();
    assert_eq!(steps.len(), 5, "{out4}");
    assert!(steps[1].contains("Using cache"), "{out4}");
    for s in &steps[2..] {
        assert!(!s.contains("Using cache"), "{out4}");
    }
    assert_ne!(image_id(&d, "c"), id1);
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "c"]),
        "second\n"
    );
    // --no-cache runs everything again.
    let out5 = d.berth_ok(&["build", "--no-cache", "-t", "c", path(&ctx)]);
    assert!(!out5.contains("Using cache"), "{out5}");
    assert!(out1.contains("Running in"));
    assert_clean(&d);
}

#[test]
fn failing_run_reports_docker_message_and_code() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo before && exit 3\n")]);
    let (st, out, err) = d.berth(&["build", "--force-rm", path(&ctx)]);
    assert_eq!(code(st), 3, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("before\n"), "{out}");
    assert!(
        err.contains("The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    // Without --force-rm docker keeps the failed step's container.
    let (st, _, _) = d.berth(&["build", path(&ctx)]);
    assert_eq!(code(st), 3);
    let ps = d.berth_ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    d.berth_ok(&["rm", ps.trim()]);
    // A missing base image is named.
    let ctx2 = context(&[("Dockerfile", "FROM nosuchimage:3\n")]);
    let (st, _, err) = d.berth(&["build", path(&ctx2)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("nosuchimage:3"), "{err}");
    assert_clean(&d);
}

#[test]
fn dockerignore_excludes_files() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        (".dockerignore", "*.log\nsecret/\n!keep.log\n"),
        ("app.txt", "app\n"),
        ("debug.log", "noise\n"),
        ("keep.log", "kept\n"),
        ("secret/key", "k\n"),
    ]);
    d.berth_ok(&["build", "-t", "ign", path(&ctx)]);
    let ls = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "ign",
        "ls",
        "-a",
        "/ctx",
    ]);
    let names: Vec<&str> = ls.lines().collect();
    assert!(names.contains(&"app.txt"), "{ls}");
    assert!(names.contains(&"keep.log"), "{ls}");
    assert!(!names.contains(&"debug.log"), "{ls}");
    assert!(!names.contains(&"secret"), "{ls}");
    // COPY of an excluded file fails as docker words it.
    let ctx2 = context(&[
        ("Dockerfile", "FROM busybox\nCOPY debug.log /\n"),
        (".dockerignore", "*.log\n"),
        ("debug.log", "noise\n"),
    ]);
    let (st, _, err) = d.berth(&["build", path(&ctx2)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("excluded by .dockerignore"), "{err}");
    assert_clean(&d);
}

/// The docker CLI's legacy builder (`DOCKER_BUILDKIT=0`) against berth.
fn docker_build(d: &TestDaemon, args: &[&str]) -> (i32, String, String) {
    let o = d.docker_out_env(args, None, &[("DOCKER_BUILDKIT", "0")]);
    (code(o.status), o.stdout_str(), o.stderr)
}

#[test]
fn docker_cli_legacy_build() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    assert!(
        Path::new(common::DOCKER).exists(),
        "docker CLI 28 is required"
    );
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY f /f\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n",
        ),
        ("f", "via docker\n"),
    ]);
    let iid = ctx.path().join("iid");
    let (c, out, err) = docker_build(
        &d,
        &[
            "build",
            "-t",
            "dk:1",
            "--iidfile",
            iid.to_str().unwrap(),
            path(&ctx),
        ],
    );
    assert_eq!(c, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("Successfully tagged dk:1"), "{out}");
    let id = fs::read_to_string(&iid).unwrap();
    assert_eq!(id.trim(), image_id(&d, "dk:1"));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "dk:1"]),
        "via docker\n"
    );
    // A failing RUN: docker exits with the command's code.
    let bad = context(&[("Dockerfile", "FROM busybox\nRUN exit 5\n")]);
    let (c, _, err) = docker_build(&d, &["build", "--force-rm", path(&bad)]);
    assert_eq!(c, 5, "{err}");
    assert!(
        err.contains("The command '/bin/sh -c exit 5' returned a non-zero code: 5"),
        "{err}"
    );
    // -q prints only the ID.
    let (c, out, err) = docker_build(&d, &["build", "-q", path(&ctx)]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(out.trim(), image_id(&d, "dk:1"));
    assert_clean(&d);
}

#[test]
fn build_args_and_unused_warning() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nARG GREETING=hi\nRUN echo \"greeting=$GREETING\" > /g\nCMD [\"cat\", \"/g\"]\n",
    )]);
    let out = d.berth_ok(&[
        "build",
        "-t",
        "args",
        "--build-arg",
        "GREETING=hello",
        "--build-arg",
        "NOPE=1",
        path(&ctx),
    ]);
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{out}"
    );
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "args"]),
        "greeting=hello\n"
    );
    // The arg is in the RUN's history entry (not in the image's env).
    let h = d.berth_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "args",
    ]);
    assert!(
        h.contains("|1 GREETING=hello /bin/sh -c echo \"greeting=$GREETING\" > /g"),
        "{h}"
    );
    let env = d.berth_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        "args",
    ]);
    assert!(!env.contains("GREETING"), "{env}");
    // Without the build arg, the default.
    let out = d.berth_ok(&["build", "-t", "args2", path(&ctx)]);
    assert!(!out.contains("[Warning]"), "{out}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "args2"]),
        "greeting=hi\n"
    );
    assert_clean(&d);
}

#[test]
fn image_config_and_history_match_the_classic_builder() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nENV APP=/srv/app MODE=prod\nWORKDIR $APP\nEXPOSE 80 53/udp\n\
             LABEL org.example.name=\"demo app\" version=1\nUSER 1000:1000\nVOLUME /data\n\
             STOPSIGNAL SIGINT\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD echo hi\n",
    )]);
    d.berth_ok(&[
        "build",
        "--label",
        "built.by=berth",
        "-t",
        "cfg",
        path(&ctx),
    ]);
    let c = &d.inspect("cfg")["Config"];
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    assert!(env.contains(&"APP=/srv/app".to_string()), "{env:?}");
    assert!(env.contains(&"MODE=prod".to_string()), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(c["Labels"]["version"], "1");
    assert_eq!(c["Labels"]["built.by"], "berth");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    let h = d.berth_ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "cfg"]);
    let lines: Vec<&str> = h.lines().collect();
    let expected = [
        "/bin/sh -c #(nop)  LABEL built.by=berth",
        "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"echo hi\"]",
        "/bin/sh -c #(nop)  ENTRYPOINT [\"/bin/sh\" \"-c\"]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGINT",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  USER 1000:1000",
        "/bin/sh -c #(nop)  LABEL org.example.name=demo app version=1",
        "/bin/sh -c #(nop)  EXPOSE 80 53/udp",
        "/bin/sh -c #(nop) WORKDIR /srv/app",
        "/bin/sh -c #(nop)  ENV APP=/srv/app MODE=prod",
    ];
    assert_eq!(&lines[..expected.len()], &expected[..], "{h}");
    // The WORKDIR exists in the image.
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "pwd",
        "--user",
        "0",
        "cfg",
    ]);
    assert_eq!(out, "/srv/app\n");
    assert_clean(&d);
}

#[test]
fn add_tar_chown_chmod_and_onbuild() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\n\
             RUN echo 'app:x:1234:1234::/:/bin/sh' >> /etc/passwd && echo 'grp:x:555:' >> /etc/group\n\
             ADD bundle.tar /opt/\n\
             COPY --chown=app:grp --chmod=0700 tool.sh /usr/local/bin/\n\
             COPY --chown=42 tool.sh /numeric\n\
             ONBUILD RUN echo triggered > /trig\n",
        ),
        ("tool.sh", "#!/bin/sh\necho tool\n"),
    ]);
    let tar = common::tarball::build(&[
        common::tarball::Entry::dir("pkg"),
        common::tarball::Entry::file("pkg/readme", b"from the tar\n"),
    ]);
    fs::write(ctx.path().join("bundle.tar"), tar).unwrap();
    let (st, out, err) = d.berth(&["build", "-t", "base-ob", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    let run = |args: &[&str]| {
        let mut v = vec!["run", "--rm", "--network", "none"];
        v.extend_from_slice(args);
        d.berth_ok(&v)
    };
    assert_eq!(
        run(&["base-ob", "cat", "/opt/pkg/readme"]),
        "from the tar\n"
    );
    assert_eq!(
        run(&[
            "base-ob",
            "stat",
            "-c",
            "%u:%g %a",
            "/usr/local/bin/tool.sh",
            "/numeric"
        ]),
        "1234:555 700\n42:42 644\n"
    );
    assert_eq!(
        run(&["--user", "app", "base-ob", "sh", "/usr/local/bin/tool.sh"]),
        "tool\n"
    );
    // The trigger did not run in the base, and runs in a child.
    let (st, _, _) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "base-ob",
        "test",
        "-e",
        "/trig",
    ]);
    assert_ne!(code(st), 0);
    let child = context(&[("Dockerfile", "FROM base-ob\nCMD [\"cat\", \"/trig\"]\n")]);
    let out = d.berth_ok(&["build", "-t", "child-ob", path(&child)]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(run(&["child-ob"]), "triggered\n");
    let ob = d.berth_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.OnBuild}}",
        "child-ob",
    ]);
    assert!(!ob.contains("triggered"), "{ob}");
    assert_clean(&d);
}

/// Bad Dockerfiles fail before anything runs, name the file and line, and
/// leave no container, mount, build directory or image behind.
#[test]
fn bad_input_fails_before_running_anything_with_file_and_line() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let images_before = d.image_ids();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown instruction",
            "FROM busybox\nRUN echo ran > /ran\nFROBNICATE x\n",
            "Dockerfile:3",
        ),
        ("missing FROM", "RUN echo ran > /ran\n", "Dockerfile:1"),
        (
            "COPY with one argument",
            "FROM busybox\nRUN echo ran > /ran\nCOPY onlyone\n",
            "Dockerfile:3",
        ),
        (
            "unterminated heredoc",
            "FROM busybox\nRUN echo ran > /ran\nRUN <<EOF\necho hi\n",
            "Dockerfile:3",
        ),
        // A --from that names no stage is an image reference, as in Docker;
        // it is resolved (pulled) before any step runs. A refusing loopback
        // registry keeps the test off the internet.
        (
            "undefined stage",
            "FROM busybox\nRUN echo ran > /ran\nCOPY --from=127.0.0.1:9/nowhere /x /y\n",
            "Dockerfile:3",
        ),
    ];
    for (what, dockerfile, want) in cases {
        let ctx = context(&[("Dockerfile", dockerfile), ("a.txt", "a")]);
        let (st, out, err) = d.berth(&["build", "-t", "bad", path(&ctx)]);
        assert_ne!(code(st), 0, "{what}: built anyway\n{out}");
        let all = format!("{out}{err}");
        assert!(
            all.contains(want),
            "{what}: message does not name {want}:\n{all}"
        );
        assert!(
            !all.contains("Running in"),
            "{what}: a step ran before the error:\n{all}"
        );
        assert_clean(&d);
        assert_eq!(d.image_ids(), images_before, "{what}: an image was left");
    }
    // COPY of a path outside the context: refused, nothing copied from the host.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY ../../../../etc/hostname /h\n",
    )]);
    let (st, out, err) = d.berth(&["build", "-t", "escape", path(&ctx)]);
    assert_ne!(code(st), 0, "{out}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("etc/hostname") || all.contains("outside"),
        "{all}"
    );
    assert_clean(&d);
}
