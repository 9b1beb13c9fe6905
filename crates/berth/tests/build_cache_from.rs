//! `build --cache-from IMAGE`: an image built by berth, saved and loaded
//! into a daemon whose build cache is empty, stands in for the cache —
//! through `berth build` and `DOCKER_BUILDKIT=0 docker build`.

mod common;

use std::fs;

use common::build::{assert_clean, context, path};
use common::containers::{busybox, code};
use common::TestDaemon;

/// Each RUN prints a word its step line does not contain (`tr` upper-cases
/// it), so the word is in the output only if the step ran.
const DOCKERFILE: &str = "FROM busybox\n\
ENV APP=/app\n\
WORKDIR /app\n\
COPY a.txt ./\n\
RUN echo first-run | tr a-z A-Z && echo one > /one\n\
COPY b.txt ./\n\
RUN echo second-run | tr a-z A-Z && cat a.txt b.txt > ab.txt\n\
CMD [\"cat\", \"/app/ab.txt\"]\n";

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.berth_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Builds `app` on a first daemon and moves it (with its base) into a
/// fresh daemon through `save` and `load`; returns the fresh daemon, the
/// context and `app`'s ID.
fn built_elsewhere_and_loaded() -> (TestDaemon, tempfile::TempDir, String) {
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("a.txt", "file a\n"),
        ("b.txt", "file b\n"),
    ]);
    let archive = tempfile::tempdir().unwrap();
    let tar = archive.path().join("app.tar");
    let app_id = {
        let first = TestDaemon::builder().short().start();
        busybox(&first);
        let (st, out, err) = first.berth(&["build", "-t", "app", path(&ctx)]);
        assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
        assert!(
            out.contains("FIRST-RUN") && out.contains("SECOND-RUN"),
            "{out}"
        );
        first.berth_ok(&["save", "-o", tar.to_str().unwrap(), "busybox", "app"]);
        image_id(&first, "app")
    };
    let d = TestDaemon::builder().short().start();
    let loaded = d.berth_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains("app:latest"), "{loaded}");
    assert_eq!(image_id(&d, "app"), app_id);
    (d, ctx, app_id)
}

#[test]
fn cache_from_a_loaded_image_runs_nothing() {
    let (d, ctx, app_id) = built_elsewhere_and_loaded();

    // Without --cache-from the fresh daemon has nothing cached: the steps run.
    let (st, out, err) = d.berth(&["build", "--progress", "plain", "-t", "plain", path(&ctx)]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("Using cache"), "{out}");
    assert!(
        out.contains("FIRST-RUN") && out.contains("SECOND-RUN"),
        "{out}"
    );
    // Forget what that build cached (and the step images only it kept).
    d.berth_ok(&["builder", "prune", "-a", "-f"]);

    // With --cache-from every step after FROM is a hit, nothing runs, and
    // the result is the loaded image itself (the classic builder's rule
    // for a match on the image's last step). A missing source is skipped.
    let (st, out, err) = d.berth(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        "nosuch:image",
        "--cache-from",
        "app",
        "-t",
        "viacache",
        path(&ctx),
    ]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("[Warning] --cache-from: no local image nosuch:image, skipped"),
        "{out}"
    );
    assert_eq!(out.matches(" ---> Using cache").count(), 7, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert!(
        !out.contains("FIRST-RUN") && !out.contains("SECOND-RUN"),
        "{out}"
    );
    assert_eq!(image_id(&d, "viacache"), app_id);
    // The intermediate images made from the source carry its history.
    let hist = d.berth_ok(&["history", "--no-trunc", "-q", "viacache"]);
    assert_eq!(hist.lines().count(), 8, "{hist}");

    // A changed COPY'd file: the steps before it stay cached, that COPY
    // and what follows run again.
    d.berth_ok(&["builder", "prune", "-a", "-f"]);
    fs::write(ctx.path().join("b.txt"), "file b, changed\n").unwrap();
    let (st, out, err) = d.berth(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        "app",
        "-t",
        "changed",
        path(&ctx),
    ]);
    assert_eq!(code(st), 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.matches(" ---> Using cache").count(), 4, "{out}");
    assert!(!out.contains("FIRST-RUN"), "{out}");
    assert!(out.contains("SECOND-RUN"), "{out}");
    let step6 = out.find("Step 6/8 : COPY b.txt").expect("step 6 shown");
    assert!(!out[step6..].contains("Using cache"), "{out}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", "--network", "none", "changed"]),
        "file a\nfile b, changed\n"
    );
    assert_ne!(image_id(&d, "changed"), app_id);
    assert_clean(&d);
}

#[test]
fn docker_cli_legacy_build_cache_from() {
    let (d, ctx, app_id) = built_elsewhere_and_loaded();
    let o = d.docker_out_env(
        &[
            "build",
            "--cache-from",
            "app",
            "-t",
            "viadocker",
            path(&ctx),
        ],
        None,
        &[("DOCKER_BUILDKIT", "0")],
    );
    let out = o.stdout_str();
    assert_eq!(code(o.status), 0, "stdout: {out}\nstderr: {}", o.stderr);
    assert_eq!(out.matches(" ---> Using cache").count(), 7, "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(image_id(&d, "viadocker"), app_id);

    // And without it, on the same daemon after a prune, the steps run.
    d.berth_ok(&["builder", "prune", "-a", "-f"]);
    let o = d.docker_out_env(
        &["build", "-t", "plain", path(&ctx)],
        None,
        &[("DOCKER_BUILDKIT", "0")],
    );
    let out = o.stdout_str();
    assert_eq!(code(o.status), 0, "stdout: {out}\nstderr: {}", o.stderr);
    assert!(
        out.contains("FIRST-RUN") && out.contains("SECOND-RUN"),
        "{out}"
    );
    assert_clean(&d);
}
