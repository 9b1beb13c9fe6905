//! `RUN --mount` (cache, bind, tmpfs, secret), `RUN --network`, `berth
//! build --secret`, `ADD <url>` and `builder prune`, checked from outside:
//! what the built images hold (run, `berth save`), what reruns, errors.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::build::{context, path};
use common::containers::{busybox, code, wait_until};
use common::TestDaemon;

fn build_ok(d: &TestDaemon, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let (st, out, err) = d.berth(&all);
    assert_eq!(code(st), 0, "build {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

fn run_in(d: &TestDaemon, image: &str, script: &str) -> String {
    d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])
}

/// `berth save IMAGE`: the raw archive and the names of every entry of
/// every layer tar inside it.
fn saved(d: &TestDaemon, image: &str) -> (Vec<u8>, Vec<String>) {
    let o = d.berth_out(&["save", image], None);
    assert!(o.status.success(), "save {image}: {}", o.stderr);
    let raw = o.stdout.clone();
    let mut names = Vec::new();
    let mut outer = tar::Archive::new(&raw[..]);
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if data.len() < 512 {
            continue;
        }
        let mut inner = tar::Archive::new(&data[..]);
        let Ok(entries) = inner.entries() else {
            continue;
        };
        for ie in entries {
            let Ok(ie) = ie else { break };
            if let Ok(p) = ie.path() {
                names.push(p.display().to_string());
            }
        }
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("bin/") || n.starts_with("./bin/")),
        "no layer entries read from the saved image"
    );
    (raw, names)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn using_cache(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

#[test]
fn cache_bind_and_tmpfs_mounts() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    let df = "FROM busybox AS stage1\n\
        RUN mkdir /out && echo staged > /out/s.txt && cp /out/s.txt /s.txt\n\
        FROM busybox\n\
        RUN --mount=type=cache,target=/var/cache/app,id=counter sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /count'\n\
        RUN --mount=type=bind,target=/ctx cat /ctx/hello.txt > /copied\n\
        RUN --mount=type=bind,target=/ctx,rw sh -c 'echo changed > /ctx/hello.txt'\n\
        RUN --mount=type=bind,source=hello.txt,target=/ctx2/h.txt cat /ctx2/h.txt > /again\n\
        RUN --mount=type=bind,target=/ro sh -c 'if touch /ro/x 2>/dev/null; then echo writable; else echo ro; fi > /ro-check'\n\
        RUN --mount=type=bind,from=stage1,source=/s.txt,target=/in/s.txt cat /in/s.txt > /from-stage\n\
        RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'grep \" /scratch tmpfs \" /proc/mounts > /tmpfs-line && echo x > /scratch/f'\n\
        RUN --mount=type=cache,target=/root/.cache/tool,mode=0700,uid=7,gid=8 stat -c '%a %u %g' /root/.cache/tool > /cache-perm\n\
        RUN --mount=type=cache,id=seeded,target=/seed,from=stage1,source=/out cat /seed/s.txt > /seeded\n";
    let ctx = context(&[("Dockerfile", df), ("hello.txt", "hello\n")]);
    build_ok(&d, &["-t", "m1", path(&ctx)]);
    assert_eq!(run_in(&d, "m1", "cat /count"), "1\n");
    assert_eq!(run_in(&d, "m1", "cat /copied /again"), "hello\nhello\n");
    assert_eq!(run_in(&d, "m1", "cat /ro-check"), "ro\n");
    assert_eq!(run_in(&d, "m1", "cat /from-stage"), "staged\n");
    assert!(run_in(&d, "m1", "cat /tmpfs-line").contains("size=1024k"));
    assert_eq!(run_in(&d, "m1", "cat /cache-perm"), "700 7 8\n");
    // A new cache mount starts as a copy of from=/source.
    assert_eq!(run_in(&d, "m1", "cat /seeded"), "staged\n");
    // The rw bind wrote to a copy: the context is untouched.
    assert_eq!(
        fs::read_to_string(ctx.path().join("hello.txt")).unwrap(),
        "hello\n"
    );
    // No mount point reached the image: not the targets, not their parents
    // made for them, not a trace in any layer.
    let gone = run_in(
        &d,
        "m1",
        "for p in /var/cache/app /ctx /ctx2 /ro /in /scratch /root/.cache /seed; do [ -e $p ] && echo $p; done; true",
    );
    assert_eq!(gone, "", "mount points left in the image");
    // Entry names the built layers add to the base's (a copied-up /root
    // would show as a second `root/`).
    let count = |names: &[String], prefix: &str| {
        names
            .iter()
            .filter(|n| n.trim_start_matches("./").starts_with(prefix))
            .count()
    };
    let (_, base) = saved(&d, "busybox");
    let (_, names) = saved(&d, "m1");
    for bad in ["var/cache", "ctx", "ro/", "in/", "scratch", "root/", "var/"] {
        assert_eq!(
            count(&names, bad),
            count(&base, bad),
            "a layer has entries under {bad} from a mount: {names:?}"
        );
    }
    // Cached as a whole; the cache mount kept its content for --no-cache.
    let out = build_ok(&d, &["-t", "m1", path(&ctx)]);
    assert_eq!(using_cache(&out), 10, "{out}");
    build_ok(&d, &["--no-cache", "-t", "m2", path(&ctx)]);
    assert_eq!(run_in(&d, "m2", "cat /count"), "2\n");
    // … and across a daemon restart.
    d.restart();
    build_ok(&d, &["--no-cache", "-t", "m3", path(&ctx)]);
    assert_eq!(run_in(&d, "m3", "cat /count"), "3\n");
    // A changed bind-mounted context file reruns the steps that bind it,
    // and only those (the cache step before them still hits).
    fs::write(ctx.path().join("hello.txt"), "bonjour\n").unwrap();
    let out = build_ok(&d, &["-t", "m4", path(&ctx)]);
    assert_eq!(run_in(&d, "m4", "cat /copied /again"), "bonjour\nbonjour\n");
    assert_eq!(run_in(&d, "m4", "cat /count"), "3\n", "{out}");
}

#[test]
fn secrets_reach_run_and_nothing_else() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let secret = "s3cr3t-Value-4711-xyzzy";
    let env_secret = "env-Secret-0815-plugh";
    // The Dockerfile compares digests, so the values are not in its text.
    let sum = common::sha256_hex(secret.as_bytes());
    let env_sum = common::sha256_hex(env_secret.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    fs::write(&file, secret).unwrap();
    let df = format!(
        "FROM busybox\n\
        RUN --mount=type=secret,id=tok sh -c 'test \"$(sha256sum < /run/secrets/tok | cut -d\" \" -f1)\" = {sum} && echo match > /ok'\n\
        RUN --mount=type=secret,id=tok,target=/etc/app/tok,mode=0440,uid=5 stat -c '%a %u' /etc/app/tok > /perm\n\
        RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'test \"$(printf %s \"$TOKEN\" | sha256sum | cut -d\" \" -f1)\" = {sum} && echo env-match > /env-ok'\n\
        RUN --mount=type=secret,id=other sh -c 'test \"$(sha256sum < /run/secrets/other | cut -d\" \" -f1)\" = {env_sum}'\n\
        RUN --mount=type=secret,id=absent sh -c 'test ! -e /run/secrets/absent && echo skipped > /absent'\n\
        RUN --mount=type=cache,target=/c --mount=type=secret,id=tok sh -c 'cp /run/secrets/tok /c/copied && cmp /c/copied /run/secrets/tok'\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);
    let src = format!("id=tok,src={}", file.display());
    let o = d.berth_out_env(
        &[
            "build",
            "--secret",
            &src,
            "--secret",
            "id=other,env=BERTH_TEST_SECRET",
            "-t",
            "sec",
            path(&ctx),
        ],
        &[("BERTH_TEST_SECRET", env_secret)],
    );
    assert!(o.status.success(), "{}\n{}", o.stdout_str(), o.stderr);
    let out = o.stdout_str();
    assert_eq!(
        run_in(&d, "sec", "cat /ok /env-ok /absent"),
        "match\nenv-match\nskipped\n"
    );
    assert_eq!(run_in(&d, "sec", "cat /perm"), "440 5\n");
    assert_eq!(
        run_in(
            &d,
            "sec",
            "[ -e /run/secrets ] || echo none; [ -e /etc/app ] || echo none"
        ),
        "none\nnone\n"
    );
    // In no layer, no config, no history, no cache file, no log.
    let (raw, names) = saved(&d, "sec");
    for s in [secret, env_secret] {
        assert!(
            !contains(&raw, s.as_bytes()),
            "secret found in `berth save`"
        );
        assert!(!out.contains(s), "secret in the build output");
        assert!(!d.log().contains(s), "secret in the daemon log");
    }
    assert!(!names.iter().any(|n| n.contains("secrets")), "{names:?}");
    let history = d.berth_ok(&["history", "--no-trunc", "sec"]);
    assert!(!history.contains(secret), "{history}");
    let cache_json = fs::read(d.data_root.join("build-cache/cache.json")).unwrap();
    assert!(!contains(&cache_json, secret.as_bytes()));
    // Secret files live under the exec-root only while a step runs.
    let left = fs::read_dir(d.exec_root.join("build-secrets"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "secret files left under the exec-root");
    // The secret's value is not in the key: another value still hits.
    fs::write(&file, "another value").unwrap();
    let o = d.berth_out_env(
        &[
            "build",
            "--secret",
            &src,
            "--secret",
            "id=other,env=BERTH_TEST_SECRET",
            "-t",
            "sec2",
            path(&ctx),
        ],
        &[("BERTH_TEST_SECRET", env_secret)],
    );
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(using_cache(&o.stdout_str()), 6, "{}", o.stdout_str());
}

#[test]
fn mount_errors_name_the_line() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN true\nRUN --mount=type=secret,id=needed,required cat /run/secrets/needed\n",
    )]);
    let (st, out, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0, "{out}");
    assert!(err.contains("Dockerfile:3:"), "{err}");
    assert!(err.contains("\"needed\" is required"), "{err}");
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh ssh-add -l\n",
    )]);
    let (st, _, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("Dockerfile:2: RUN --mount=type=ssh"), "{err}");
    assert!(err.contains("not supported"), "{err}");
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=nope.txt,target=/x cat /x\n",
    )]);
    let (st, _, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(
        err.contains("Dockerfile:2: RUN --mount=type=bind: source \"/nope.txt\" not found in the build context"),
        "{err}"
    );
    // A bind source cannot leave the context.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=../../../etc,target=/x ls /x/shadow\n",
    )]);
    let (st, out, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0, "{out}");
    assert!(
        err.contains("\"/etc\" not found in the build context"),
        "{err}"
    );
    // Bad --secret on the client side.
    let (st, _, err) = d.berth(&["build", "--secret", "src=/etc/hostname", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("id="), "{err}");
    let ps = d.berth_ok(&["ps", "-a", "-q"]);
    assert_eq!(ps.trim(), "", "containers left behind");
}

#[test]
fn run_network_modes() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // An interface of the host the test can see.
    let host_if = fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .find(|n| n != "lo" && !n.starts_with("veth"))
        .expect("a host interface");
    let df = "FROM busybox\n\
        RUN --network=none sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" > /none'\n\
        RUN --network=host sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" > /host'\n\
        RUN --network=default sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" | sort > /default'\n";
    let ctx = context(&[("Dockerfile", df)]);
    build_ok(&d, &["-t", "net", path(&ctx)]);
    assert_eq!(run_in(&d, "net", "cat /none"), "lo\n");
    let host = run_in(&d, "net", "cat /host");
    assert!(host.lines().any(|l| l == host_if), "{host} lacks {host_if}");
    assert_eq!(run_in(&d, "net", "cat /default"), "eth0\nlo\n");
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN --network=bogus true\n")]);
    let (st, _, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("bogus"), "{err}");
}

/// A one-route HTTP server on 127.0.0.1: `/file` answers the current body
/// with a fixed Last-Modified; anything else 404. Returns the port.
fn http_server(body: Arc<Mutex<Vec<u8>>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !contains(&req, b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let data = body.lock().unwrap().clone();
            let resp = if line.starts_with("GET /dir/file.tar ") {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    data.len()
                )
                .into_bytes();
                r.extend_from_slice(&data);
                r
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = s.write_all(&resp);
        }
    });
    port
}

#[test]
fn add_from_url() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // A tar archive: ADD of a URL must not extract it.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, "inner.txt", &b"abc"[..]).unwrap();
    let tar_bytes = b.into_inner().unwrap();
    let sum = common::sha256_hex(&tar_bytes);
    let body = Arc::new(Mutex::new(tar_bytes.clone()));
    let port = http_server(body.clone());
    let url = format!("http://127.0.0.1:{port}/dir/file.tar");
    let df = format!(
        "FROM busybox\nADD {url} /downloads/\nADD --checksum=sha256:{sum} {url} /named.bin\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);
    build_ok(&d, &["-t", "url", path(&ctx)]);
    let stat = run_in(
        &d,
        "url",
        "stat -c '%n %a %u %Y %s' /downloads/file.tar /named.bin; [ -e /downloads/inner.txt ] || echo not-extracted",
    );
    let n = tar_bytes.len();
    assert_eq!(
        stat,
        format!(
            "/downloads/file.tar 600 0 1445412480 {n}\n/named.bin 600 0 1445412480 {n}\nnot-extracted\n"
        )
    );
    // Same content: cached; new content: both steps run again.
    let out = build_ok(&d, &["-t", "url", path(&ctx)]);
    assert_eq!(using_cache(&out), 2, "{out}");
    body.lock().unwrap().extend_from_slice(&[0u8; 512]);
    let df2 = format!("FROM busybox\nADD {url} /downloads/\n");
    let ctx2 = context(&[("Dockerfile", &df2)]);
    let out = build_ok(&d, &["-t", "url2", path(&ctx2)]);
    assert_eq!(using_cache(&out), 0, "{out}");
    // The checksum no longer matches.
    let (st, _, err) = d.berth(&["build", path(&ctx)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&format!("expected sha256:{sum}")), "{err}");
    // A missing file and a bad checksum spec are clear errors.
    let ctx3 = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nADD http://127.0.0.1:{port}/missing /m\n"),
    )]);
    let (st, _, err) = d.berth(&["build", path(&ctx3)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("404"), "{err}");
    let ctx4 = context(&[(
        "Dockerfile",
        &format!("FROM busybox\nADD --checksum=md5:00 {url} /m\n"),
    )]);
    let (st, _, err) = d.berth(&["build", path(&ctx4)]);
    assert_ne!(code(st), 0);
    assert!(err.contains("unsupported digest"), "{err}");
}

#[test]
fn builder_prune_forgets_the_cache() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let df = "FROM busybox\n\
        RUN --mount=type=cache,target=/c sh -c 'echo x >> /c/n; wc -l < /c/n > /count'\n\
        RUN echo step2 > /s2\n";
    let ctx = context(&[("Dockerfile", df)]);
    build_ok(&d, &["-t", "p1", path(&ctx)]);
    let out = build_ok(&d, &["-t", "p1", path(&ctx)]);
    assert_eq!(using_cache(&out), 2, "{out}");
    // until=24h: everything was used just now, nothing goes.
    let out = d.berth_ok(&["builder", "prune", "-f", "--filter", "until=24h"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let out = build_ok(&d, &["-t", "p1", path(&ctx)]);
    assert_eq!(using_cache(&out), 2, "{out}");
    // Without -a: the step cache goes, the cache mount stays.
    let out = d.berth_ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    let out = build_ok(&d, &["-t", "p2", path(&ctx)]);
    assert_eq!(using_cache(&out), 0, "{out}");
    assert_eq!(run_in(&d, "p2", "cat /count"), "2\n");
    // The docker CLI's builder prune -a against berth: the mount goes too.
    let (st, out, err) = d.docker(&["builder", "prune", "-a", "-f"]);
    assert_eq!(code(st), 0, "{out}\n{err}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = build_ok(&d, &["-t", "p3", path(&ctx)]);
    assert_eq!(using_cache(&out), 0, "{out}");
    assert_eq!(run_in(&d, "p3", "cat /count"), "1\n");
    // The API's answer has Docker's shape.
    let (status, body) = d.api("POST", "/build/prune?all=1", None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["CachesDeleted"].is_array() && v["SpaceReclaimed"].is_u64(),
        "{v}"
    );
    assert!(v["SpaceReclaimed"].as_u64().unwrap() > 0, "{v}");
    let (status, body) = d.api(
        "POST",
        "/build/prune?filters=%7B%22until%22%3A%5B%22later%22%5D%7D",
        None,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn cache_mount_sharing_locked_and_private() {
    let d = Arc::new(TestDaemon::builder().short().start());
    busybox(&d);
    // Build `a`'s step logs its start, then holds the cache mount until the test creates
    // `release` in it; build `b`'s step comes while `a` holds it. No timing: the test sees
    // `a` inside the step, and (locked) `b` blocked on the cache's lock in /proc/locks.
    let step = |sharing: &str, tag: &str, hold: bool| {
        let wait = if hold {
            "until [ -e /c/release ]; do sleep 0.1; done; "
        } else {
            ""
        };
        format!(
            "FROM busybox\nRUN --mount=type=cache,id=shared-log,target=/c,sharing={sharing} \
             sh -c 'echo start-{tag} >> /c/log; {wait}echo end-{tag} >> /c/log'\n"
        )
    };
    let build = |df: String| {
        let d = d.clone();
        std::thread::spawn(move || {
            let ctx = context(&[("Dockerfile", &df)]);
            let (st, out, err) = d.berth(&["build", "--no-cache", path(&ctx)]);
            assert_eq!(code(st), 0, "{out}\n{err}");
        })
    };
    let mounts = d.data_root.join("build-cache/mounts");
    let cache_dir = || {
        fs::read_dir(&mounts)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("data/log").exists())
    };
    let log_lines =
        |base: &std::path::Path| fs::read_to_string(base.join("data/log")).unwrap_or_default();

    // locked: `b` waits for `a`.
    let a = build(step("locked", "a", true));
    wait_until("build a inside its step", Duration::from_secs(120), || {
        cache_dir().is_some_and(|b| log_lines(&b) == "start-a\n")
    });
    let base = cache_dir().unwrap();
    let b = build(step("locked", "b", true));
    let ino = fs::metadata(base.join("lock")).unwrap().ino();
    wait_until(
        "build b blocked on the cache mount's lock (a `->` FLOCK in /proc/locks)",
        Duration::from_secs(120),
        || {
            fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .any(|l| l.contains("-> FLOCK") && l.contains(&format!(":{ino} ")))
        },
    );
    assert_eq!(log_lines(&base), "start-a\n", "b ran while a held the lock");
    fs::write(base.join("data/release"), "").unwrap();
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(log_lines(&base), "start-a\nend-a\nstart-b\nend-b\n");

    // private: `b`, finding the cache held, works in a throwaway copy and finishes while
    // `a` still holds it; the persistent log has `a`'s run only.
    fs::remove_file(base.join("data/log")).unwrap();
    fs::remove_file(base.join("data/release")).unwrap();
    let a = build(step("private", "a", true));
    wait_until("build a inside its step", Duration::from_secs(120), || {
        log_lines(&base) == "start-a\n"
    });
    build(step("private", "b", false)).join().unwrap();
    assert_eq!(log_lines(&base), "start-a\n", "b wrote to the held cache");
    fs::write(base.join("data/release"), "").unwrap();
    a.join().unwrap();
    assert_eq!(log_lines(&base), "start-a\nend-a\n");
}
