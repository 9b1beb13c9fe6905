//! User commands checked the way a user would: volumes (named, anonymous, image `VOLUME`,
//! `--mount`, the `volume` commands), `run -it` and `attach` in a real pty, `cp` both ways,
//! `diff`, `restart`, `update`, `stats`, `--restart` policies, UDP and ranges of published
//! ports, and resource flags observed from inside the container.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::containers::{busybox, code, inspect_f, run_must_fail, wait_until};
use common::TestDaemon;

const LONG: Duration = Duration::from_secs(30);

fn daemon() -> TestDaemon {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d
}

/// `berth volume ls -q`, as a sorted list.
fn volumes(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .berth_ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn volumes_named_anonymous_from_the_image_and_by_mount() {
    let d = daemon();
    // Named: made by `volume create`, kept across containers, seen by inspect.
    assert_eq!(d.berth_ok(&["volume", "create", "vol1"]), "vol1\n");
    assert_eq!(volumes(&d), ["vol1"]);
    let mountpoint = d.berth_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol1"]);
    assert_eq!(
        mountpoint.trim(),
        d.data_root.join("volumes/vol1/_data").display().to_string()
    );
    d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(d.data_root.join("volumes/vol1/_data/f")).unwrap(),
        "kept\n"
    );
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "source=vol1,target=/m",
        "busybox",
        "cat",
        "/m/f",
    ]);
    assert_eq!(out, "kept\n");
    // --mount readonly, and a bind mount of a host directory.
    run_must_fail(
        &d,
        &[
            "--network",
            "none",
            "--mount",
            "type=volume,source=vol1,target=/m,readonly",
        ],
        "cat /m/f && touch /m/g",
        "Read-only file system",
    );
    let host = common::scratch();
    std::fs::write(host.path().join("h"), "from host\n").unwrap();
    let bind = format!("type=bind,source={},target=/b", host.path().display());
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /b/h && echo back > /b/c",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("c")).unwrap(),
        "back\n"
    );

    // A volume in use cannot be removed.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "vol1:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    let (st, _, err) = d.berth(&["volume", "rm", "vol1"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("in use"), "{err}");
    d.berth_ok(&["rm", "-f", "user"]);

    // Anonymous (`-v /path`) and from the image's VOLUME, seeded with the image's files.
    let ctx = common::build::context(&[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir /seeded && echo from-image > /seeded/s\nVOLUME /seeded\n",
    )]);
    d.berth_ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "withvol",
        common::build::path(&ctx),
    ]);
    let out = d.berth_ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "-v",
        "/anon",
        "withvol",
        "sh",
        "-c",
        "echo a > /anon/a && cat /seeded/s",
    ]);
    assert_eq!(out, "from-image\n");
    let names = inspect_f(
        &d,
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}};{{end}}",
        "anon",
    );
    let anon: Vec<(String, String)> = names
        .split(';')
        .filter(|m| !m.is_empty())
        .map(|m| {
            let f: Vec<&str> = m.split(' ').collect();
            assert_eq!(f[0], "volume", "{names}");
            assert_eq!(f[1].len(), 64, "anonymous volume name: {names}");
            (f[2].to_string(), f[1].to_string())
        })
        .collect();
    let dests: Vec<&str> = anon.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(dests.len(), 2, "{names}");
    assert!(
        dests.contains(&"/anon") && dests.contains(&"/seeded"),
        "{names}"
    );
    for (_, name) in &anon {
        assert!(volumes(&d).contains(name), "{name} not listed");
    }
    // prune keeps volumes in use, then removes the unused anonymous ones; `-a` the named.
    d.berth_ok(&["volume", "prune", "-f"]);
    for (_, name) in &anon {
        assert!(volumes(&d).contains(name), "prune removed {name} in use");
    }
    d.berth_ok(&["rm", "anon"]);
    d.berth_ok(&["volume", "prune", "-f"]);
    assert_eq!(volumes(&d), ["vol1"]);
    d.berth_ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(volumes(&d), Vec::<String>::new());
    d.berth_ok(&["volume", "create", "vol2"]);
    assert_eq!(d.berth_ok(&["volume", "rm", "vol2"]), "vol2\n");
    let (st, _, err) = d.berth(&["volume", "inspect", "vol2"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("vol2"), "{err}");
}

/// Runs the berth CLI with `args` in a new pty (python3's `pty`): waits for `expect` on the
/// terminal, types `input`, and returns (exit code, everything the terminal showed).
fn in_pty(d: &TestDaemon, args: &[&str], expect: &str, input: &str) -> (i32, String) {
    let script = r#"
import os, pty, select, signal, sys, time
expect, data = sys.argv[1].encode(), sys.argv[2].encode()
pid, fd = pty.fork()
if pid == 0:
    import fcntl, struct, termios
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.execv(sys.argv[3], sys.argv[3:])
seen, sent = b"", False
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    if not sent and expect in seen:
        os.write(fd, data)
        sent = True
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(os.waitstatus_to_exitcode(status) if sent else 99)
if time.monotonic() >= deadline:
    os.kill(pid, signal.SIGKILL)
    sys.exit(98)
_, status = os.waitpid(pid, 0)  # the terminal closed: the command is ending
sys.exit(os.waitstatus_to_exitcode(status) if sent else 99)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, expect, input, common::BERTH, "-H", &d.host()]);
    cmd.args(args);
    let o = common::run(cmd, None, Duration::from_secs(90));
    let out = o.stdout_str();
    let c = code(o.status);
    assert_ne!(
        c, 99,
        "never saw {expect:?} on the terminal:\n{out}\n{}",
        o.stderr
    );
    (c, out)
}

#[test]
fn run_it_and_attach_in_a_pty() {
    let d = daemon();
    let (c, out) = in_pty(
        &d,
        &["run", "-it", "--rm", "--network", "none", "busybox", "sh"],
        "# ",
        "tty; echo sum=$((6*7)); exit 3\r",
    );
    assert_eq!(c, 3, "{out}");
    assert!(out.contains("/dev/pts/0"), "not a terminal: {out}");
    assert!(out.contains("sum=42"), "{out}");

    d.berth_ok(&[
        "run",
        "-dit",
        "--name",
        "at",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "(while :; do echo tick; sleep 1; done) & exec sh",
    ]);
    // The ticks show the terminal is attached before anything is typed.
    let (c, out) = in_pty(
        &d,
        &["attach", "at"],
        "tick",
        "echo attached-$((1+1)); kill %1; exit 5\r",
    );
    assert_eq!(c, 5, "{out}");
    assert!(out.contains("attached-2"), "{out}");
    assert_eq!(d.berth_ok(&["wait", "at"]).trim(), "5");
    d.berth_ok(&["rm", "at"]);
}

#[test]
fn cp_both_ways_and_diff() {
    let d = daemon();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /out && echo inside > /out/file && rm /bin/vi && exec sleep 1000",
    ]);
    wait_until("the container's file", LONG, || {
        d.berth(&["exec", "box", "cat", "/out/file"]).1 == "inside\n"
    });
    let host = common::scratch();
    std::fs::write(host.path().join("in.txt"), "to the container\n").unwrap();
    let src = host.path().join("in.txt").display().to_string();
    d.berth_ok(&["cp", &src, "box:/tmp/in.txt"]);
    assert_eq!(
        d.berth_ok(&["exec", "box", "cat", "/tmp/in.txt"]),
        "to the container\n"
    );
    let dest = host.path().join("back").display().to_string();
    d.berth_ok(&["cp", "box:/out", &dest]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("back/file")).unwrap(),
        "inside\n"
    );
    // To stdout as a tar.
    let o = d.berth_out(&["cp", "box:/out/file", "-"], None);
    assert!(o.status.success(), "{}", o.stderr);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.path().unwrap().to_str(), Some("file"));
    let mut s = String::new();
    e.read_to_string(&mut s).unwrap();
    assert_eq!(s, "inside\n");

    let diff = d.berth_ok(&["diff", "box"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /out",
        "A /out/file",
        "C /tmp",
        "A /tmp/in.txt",
        "D /bin/vi",
    ] {
        assert!(lines.contains(&want), "{want:?} not in diff:\n{diff}");
    }
    d.berth_ok(&["rm", "-f", "box"]);
}

/// Reads a cgroup file of the container: v1 `/sys/fs/cgroup/<controller>/<v1>` or v2
/// `/sys/fs/cgroup/<v2>` inside it, whichever this host has.
fn cgroup_read(d: &TestDaemon, name: &str, controller: &str, v1: &str, v2: &str) -> String {
    let script = format!(
        "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then cat /sys/fs/cgroup/{v2}; \
         else cat /sys/fs/cgroup/{controller}/{v1}; fi"
    );
    d.berth_ok(&["exec", name, "sh", "-c", &script])
        .trim()
        .to_string()
}

fn cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn restart_update_and_stats() {
    let d = daemon();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--network",
        "none",
        "--memory",
        "64m",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = inspect_f(&d, "{{.State.Pid}}", "rr");
    let started = inspect_f(&d, "{{.State.StartedAt}}", "rr");
    assert_eq!(d.berth_ok(&["restart", "-t", "1", "rr"]), "rr\n");
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "rr"), "running");
    assert_ne!(inspect_f(&d, "{{.State.Pid}}", "rr"), pid, "same process");
    assert_ne!(inspect_f(&d, "{{.State.StartedAt}}", "rr"), started);
    assert!(!common::containers::pid_alive(pid.parse().unwrap()));

    assert_eq!(
        cgroup_read(&d, "rr", "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(
        d.berth_ok(&["update", "--memory", "128m", "--cpu-shares", "512", "rr"]),
        "rr\n"
    );
    assert_eq!(
        inspect_f(&d, "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}", "rr"),
        "134217728 512"
    );
    assert_eq!(
        cgroup_read(&d, "rr", "memory", "memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    let shares = cgroup_read(&d, "rr", "cpu", "cpu.shares", "cpu.weight");
    assert_eq!(shares, if cgroup_v2() { "20" } else { "512" });

    let out = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "rr",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f.len(), 3, "{out}");
    assert_eq!(f[0], "rr", "{out}");
    assert!(f[1].ends_with("/ 128MiB"), "memory limit not shown: {out}");
    assert_eq!(f[2], "1", "{out}");
    d.berth_ok(&["rm", "-f", "rr"]);
}

#[test]
fn restart_policies() {
    let mut d = daemon();
    let runs = common::scratch();
    let bind = format!("{}:/runs", runs.path().display());
    let count = |name: &str| {
        std::fs::read_to_string(runs.path().join(name))
            .unwrap_or_default()
            .lines()
            .count()
    };
    // on-failure:2 restarts a failing container exactly twice, then leaves it exited.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "fails",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo run >> /runs/fails; exit 3",
    ]);
    wait_until("on-failure:2 to run 3 times and give up", LONG, || {
        count("fails") == 3
            && inspect_f(&d, "{{.State.Status}} {{.RestartCount}}", "fails") == "exited 2"
    });
    assert_eq!(inspect_f(&d, "{{.State.ExitCode}}", "fails"), "3");
    // on-failure does not restart a success.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--network",
        "none",
        "--restart",
        "on-failure",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo run >> /runs/ok",
    ]);
    assert_eq!(d.berth_ok(&["wait", "ok"]).trim(), "0");
    wait_until("ok to be exited", LONG, || {
        inspect_f(&d, "{{.State.Status}}", "ok") == "exited"
    });
    assert_eq!(inspect_f(&d, "{{.RestartCount}}", "ok"), "0");

    // always: restarted after it exits, even with 0.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--network",
        "none",
        "--restart",
        "always",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo run >> /runs/always; [ $(wc -l < /runs/always) -ge 3 ] && exec sleep 1000; exit 0",
    ]);
    wait_until("always to be restarted twice", LONG, || {
        count("always") >= 3
    });
    wait_until("always to run", LONG, || {
        inspect_f(&d, "{{.State.Status}}", "always") == "running"
    });
    assert!(
        inspect_f(&d, "{{.RestartCount}}", "always")
            .parse::<u32>()
            .unwrap()
            >= 2
    );

    // unless-stopped vs always after `stop` and a daemon restart: always comes back.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "unless",
        "--network",
        "none",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&["stop", "-t", "1", "always", "unless"]);
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "unless"), "exited");
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "always"), "exited");
    d.restart();
    wait_until(
        "stopped `always` container started again with the daemon (as dockerd)",
        LONG,
        || inspect_f(&d, "{{.State.Status}}", "always") == "running",
    );
    assert_eq!(inspect_f(&d, "{{.State.Status}}", "unless"), "exited");
    d.berth_ok(&["rm", "-f", "fails", "ok", "always", "unless"]);
}

/// Two free consecutive TCP ports.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = common::free_port();
        if p < 65535 && std::net::TcpListener::bind(("0.0.0.0", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two free consecutive ports");
}

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

#[test]
fn published_udp_port_and_port_range_carry_traffic() {
    let d = daemon();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.local_addr().unwrap().port()
    };
    // busybox has no UDP server: a static one, bind-mounted in, prints what it receives.
    let bin = common::scratch();
    let src = bin.path().join("udprecv.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
    printf("listening\n");
    fflush(stdout);
    char buf[2048];
    for (;;) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n > 0) { fwrite(buf, 1, n, stdout); fflush(stdout); }
    }
}
"#,
    )
    .unwrap();
    let o = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(bin.path().join("udprecv"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cc (gcc with static libc) is required for this test: {e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mount = format!("{}:/t:ro", bin.path().display());
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-v",
        &mount,
        "-p",
        &format!("127.0.0.1:{uport}:9999/udp"),
        "busybox",
        "/t/udprecv",
        "9999",
    ]);
    assert_eq!(
        d.berth_ok(&["port", "udp"]).trim(),
        format!("9999/udp -> 127.0.0.1:{uport}")
    );
    wait_until("the UDP server to listen", LONG, || {
        d.berth_ok(&["logs", "udp"]).contains("listening")
    });
    // A datagram may be lost: send until one shows up in the server's output.
    wait_until("a datagram through the published UDP port", LONG, || {
        udp.send_to(b"datagram-1\n", ("127.0.0.1", uport)).unwrap();
        d.berth_ok(&["logs", "udp"]).contains("datagram-1")
    });

    let p = free_port_pair();
    let range = format!("127.0.0.1:{}-{}:80-81", p, p + 1);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "range",
        "-p",
        &range,
        "busybox",
        "sh",
        "-c",
        "mkdir /w80 /w81 && echo eighty > /w80/index.html && echo eighty-one > /w81/index.html \
         && httpd -p 80 -h /w80 && exec httpd -f -p 81 -h /w81",
    ]);
    wait_until("both ports of the range to answer", LONG, || {
        http_get(p).as_deref() == Some("eighty\n")
            && http_get(p + 1).as_deref() == Some("eighty-one\n")
    });
    d.berth_ok(&["rm", "-f", "udp", "range"]);
}

#[test]
fn resource_flags_are_seen_inside_the_container() {
    let d = daemon();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "res",
        "--tmpfs",
        "/scratch:size=1m",
        "--ulimit",
        "nofile=1024:2048",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--shm-size",
        "16m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "busybox",
        "sleep",
        "1000",
    ]);
    let sh = |script: &str| d.berth_ok(&["exec", "res", "sh", "-c", script]);
    let mounts = sh("grep ' /scratch ' /proc/mounts");
    assert!(
        mounts.starts_with("tmpfs /scratch tmpfs ") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    let limits = sh("grep 'Max open files' /proc/self/limits");
    let f: Vec<&str> = limits.split_whitespace().collect();
    assert_eq!(f[3..5], ["1024", "2048"], "{limits}");
    assert_eq!(sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let df = sh("df -k /dev/shm | tail -n 1");
    assert_eq!(df.split_whitespace().nth(1), Some("16384"), "{df}");
    if cgroup_v2() {
        assert_eq!(sh("cat /sys/fs/cgroup/cpu.max").trim(), "50000 100000");
        assert_eq!(sh("cat /sys/fs/cgroup/cpu.weight").trim(), "20");
        assert_eq!(sh("cat /sys/fs/cgroup/memory.max").trim(), "67108864");
        assert_eq!(sh("cat /sys/fs/cgroup/memory.swap.max").trim(), "67108864");
    } else {
        assert_eq!(
            sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us").trim(),
            "50000"
        );
        assert_eq!(
            sh("cat /sys/fs/cgroup/cpu/cpu.cfs_period_us").trim(),
            "100000"
        );
        assert_eq!(sh("cat /sys/fs/cgroup/cpu/cpu.shares").trim(), "512");
        assert_eq!(
            sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes").trim(),
            "67108864"
        );
        // memory+swap needs the kernel's swap accounting; without it the file is absent.
        let memsw = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
        let (st, out, _) = d.berth(&["exec", "res", "cat", memsw]);
        if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
            assert_eq!(code(st), 0);
            assert_eq!(out.trim(), "134217728");
        }
    }
    d.berth_ok(&["rm", "-f", "res"]);
}
