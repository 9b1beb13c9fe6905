//! What a container can see and do: its own PID namespace, hostname and root filesystem,
//! Docker's default capabilities and seccomp profile, and the limits and options a user
//! sets (`--privileged`, `--cap-add`, `--read-only`, `--user`, `-e`, `-w`, `--memory`,
//! `--pids-limit`). Every check runs a command inside a busybox container.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::containers::{
    busybox, code, container_id, dir_entries, inspect_f, run_must_fail, wait_until,
};
use common::TestDaemon;

/// `berth run --rm --network none [opts] busybox CMD…` → (exit code, stdout, stderr).
fn run(d: &TestDaemon, opts: &[&str], cmd: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.push("busybox");
    args.extend_from_slice(cmd);
    let (st, out, err) = d.berth(&args);
    (code(st), out, err)
}

fn run_ok(d: &TestDaemon, opts: &[&str], cmd: &[&str]) -> String {
    let (c, out, err) = run(d, opts, cmd);
    assert_eq!(
        c, 0,
        "run {opts:?} {cmd:?} exited {c}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    );
    out
}

/// The `Name:\tvalue` line of /proc/self/status inside a container run with `opts`.
fn status_field(d: &TestDaemon, opts: &[&str], field: &str) -> String {
    let out = run_ok(d, opts, &["cat", "/proc/self/status"]);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:\t")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .to_string()
}

#[test]
fn pid_namespace_shows_only_container_processes() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let out = run_ok(&d, &[], &["ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, vec![vec!["1", "ps"]], "{out}");

    let out = run_ok(
        &d,
        &[],
        &[
            "sh",
            "-c",
            // ps once the background child has become `sleep` (no timing).
            "sleep 100 & until [ \"$(cat /proc/$!/comm)\" = sleep ]; do :; done; \
             ps -o pid,comm; kill %1",
        ],
    );
    let comms: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(comms, vec!["sh", "sleep", "ps"], "{out}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().next() == Some("1")),
        "{out}"
    );
}

#[test]
fn hostname_is_short_id() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let (st, out, err) = d.berth(&[
        "run",
        "--name",
        "hn",
        "--network",
        "none",
        "busybox",
        "hostname",
    ]);
    assert_eq!(code(st), 0, "{err}");
    let id = container_id(&d, "hn");
    assert_eq!(out.trim(), &id[..12]);
    assert_eq!(inspect_f(&d, "{{.Config.Hostname}}", "hn"), &id[..12]);
    let out = run_ok(&d, &["--hostname", "custom"], &["hostname"]);
    assert_eq!(out.trim(), "custom");
}

#[test]
fn root_filesystem_writes_stay_in_the_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let marker = format!("berth-marker-{}", std::process::id());
    let script =
        format!("echo x > /bin/{marker} && rm /bin/cat && echo written && exec sleep 1000");
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    wait_until(
        "the write in the first container",
        Duration::from_secs(20),
        || d.berth_ok(&["logs", "writer"]).contains("written"),
    );

    assert!(
        !Path::new("/bin").join(&marker).exists(),
        "container write visible on the host"
    );
    let check = format!("test -e /bin/{marker} && echo visible || echo absent; cat /etc/passwd >/dev/null && echo cat-ok");
    let out = run_ok(&d, &[], &["sh", "-c", &check]);
    assert_eq!(out, "absent\ncat-ok\n", "sibling container sees the write");

    d.berth_ok(&["rm", "-f", "writer"]);
    let out = run_ok(&d, &[], &["sh", "-c", &check]);
    assert_eq!(out, "absent\ncat-ok\n", "write leaked into the image");
}

#[test]
fn rm_leaves_no_directory_or_mount() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let containers = d.data_root.join("containers");
    let before = dir_entries(&containers);
    let out = run_ok(&d, &[], &["sh", "-c", "echo data > /tmp/f && cat /tmp/f"]);
    assert_eq!(out, "data\n");
    assert_eq!(
        dir_entries(&containers),
        before,
        "--rm left a directory under {}",
        containers.display()
    );
    assert_eq!(
        dir_entries(&d.exec_root.join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        common::mounts_under(&d.data_root),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        common::mounts_under(&d.exec_root),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn default_capabilities_and_seccomp() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    assert_eq!(status_field(&d, &[], "CapEff"), "00000000a80425fb");
    assert_eq!(status_field(&d, &[], "CapBnd"), "00000000a80425fb");
    assert_eq!(status_field(&d, &[], "Seccomp"), "2");
    assert_eq!(status_field(&d, &[], "NoNewPrivs"), "0");
    // CAP_NET_ADMIN is bit 12.
    assert_eq!(
        status_field(&d, &["--cap-add", "NET_ADMIN"], "CapEff"),
        "00000000a80435fb"
    );
    assert_eq!(
        status_field(&d, &["--cap-drop", "ALL"], "CapEff"),
        "0000000000000000"
    );
}

/// The seccomp filter is compiled once per profile and kept under the
/// exec-root; every container still gets its own profile exactly: a custom
/// `seccomp=FILE` denies what it lists with its errno, the default profile
/// does not, and with no-new-privileges the filter is loaded unprivileged
/// while the capability sets stay Docker's.
#[test]
fn seccomp_profiles_are_compiled_once_and_applied_per_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let profile = d.data_root.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let custom = format!("seccomp={}", profile.display());
    let opts = ["--network", "none", "--security-opt", &custom];
    run_must_fail(&d, &opts, "mkdir /tmp/x", "Operation not permitted");
    assert_eq!(
        status_field(&d, &["--security-opt", &custom], "Seccomp"),
        "2"
    );
    // The default profile allows mkdir; run it twice (the second from the cache).
    for _ in 0..2 {
        run_ok(&d, &[], &["mkdir", "/tmp/x"]);
    }
    let cache = d.exec_root.join("seccomp");
    let entries: Vec<String> = dir_entries(&cache)
        .into_iter()
        .filter(|n| n.ends_with(".bpf"))
        .collect();
    assert_eq!(entries.len(), 2, "one program per profile: {entries:?}");

    let nnp = ["--security-opt", "no-new-privileges"];
    assert_eq!(status_field(&d, &nnp, "NoNewPrivs"), "1");
    assert_eq!(status_field(&d, &nnp, "Seccomp"), "2");
    assert_eq!(status_field(&d, &nnp, "CapBnd"), "00000000a80425fb");
    let opts = ["--network", "none", "--security-opt", "no-new-privileges"];
    run_must_fail(&d, &opts, "unshare -U true", "Operation not permitted");
}

#[test]
fn privileged_gets_all_capabilities_and_no_seccomp() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // All capabilities the host's bounding set allows (the test may itself be confined).
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:\t"))
        .unwrap()
        .to_string();
    assert_eq!(status_field(&d, &["--privileged"], "CapEff"), host_bnd);
    assert_eq!(status_field(&d, &["--privileged"], "Seccomp"), "0");
    let (c, _, err) = run(
        &d,
        &["--privileged"],
        &["mount", "-t", "tmpfs", "x", "/tmp"],
    );
    assert_eq!(c, 0, "{err}");
}

#[test]
fn privileged_operations_are_refused() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let none = ["--network", "none"];
    run_must_fail(&d, &none, "unshare -r true", "Operation not permitted");
    run_must_fail(&d, &none, "mount -t tmpfs x /tmp", "permission denied");
    run_must_fail(
        &d,
        &none,
        "echo 1 > /proc/sys/kernel/panic",
        "Read-only file system",
    );
    // A kernel without CONFIG_MAGIC_SYSRQ has no such file to write to.
    let sysrq = if std::path::Path::new("/proc/sysrq-trigger").exists() {
        "Read-only file system"
    } else {
        "can't create /proc/sysrq-trigger: nonexistent directory"
    };
    run_must_fail(&d, &none, "echo x > /proc/sysrq-trigger", sysrq);
}

/// busybox has no keyctl: build a static add_key(2) caller and bind-mount it in.
#[test]
fn keyring_syscalls_are_refused() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let dir = common::scratch();
    let src = dir.path().join("addkey.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long r = syscall(SYS_add_key, "user", "berth-test", "x", 1, -2 /* process keyring */);
    if (r < 0) { printf("add_key: %s\n", strerror(errno)); return 1; }
    printf("add_key: ok\n");
    return 0;
}
"#,
    )
    .unwrap();
    let bin = dir.path().join("addkey");
    let o = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cc (gcc with static libc) is required for this test: {e}"));
    assert!(
        o.status.success(),
        "cc -static failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bind = format!("{}:/t:ro", dir.path().display());
    let (c, out, err) = run(&d, &["-v", &bind], &["/t/addkey"]);
    assert_eq!(
        (c, out.as_str()),
        (1, "add_key: Operation not permitted\n"),
        "{err}"
    );
    // Without the seccomp profile the same call works, so the refusal above is the profile's.
    let (c, out, err) = run(&d, &["-v", &bind, "--privileged"], &["/t/addkey"]);
    assert_eq!((c, out.as_str()), (0, "add_key: ok\n"), "{err}");
}

#[test]
fn read_only_user_env_workdir() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let opts = ["--network", "none", "--read-only"];
    run_must_fail(&d, &opts, "touch /x", "Read-only file system");
    run_ok(&d, &[], &["touch", "/x"]);

    assert_eq!(
        run_ok(&d, &["--user", "65534"], &["id", "-u"]).trim(),
        "65534"
    );
    assert_eq!(
        run_ok(&d, &["--user", "65534:65534"], &["id", "-g"]).trim(),
        "65534"
    );
    assert_eq!(run_ok(&d, &[], &["id", "-u"]).trim(), "0");
    let opts = ["--network", "none", "--user", "65534"];
    run_must_fail(&d, &opts, "touch /root/x", "Permission denied");

    let out = run_ok(
        &d,
        &["-e", "A=b", "-w", "/tmp"],
        &["sh", "-c", "echo $A; pwd"],
    );
    assert_eq!(out, "b\n/tmp\n");
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "A=b",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo $A; pwd",
    ]);
    assert_eq!(out, "b\n/tmp\n");
}

#[test]
fn memory_limit_oom_kills() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // dd's 64 MiB buffer is filled by read(2) from /dev/zero: really resident memory.
    let (st, _, err) = d.berth(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "32m",
        "--network",
        "none",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(code(st), 137, "{err}");
    assert_eq!(
        inspect_f(&d, "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"),
        "true 137"
    );
    assert_eq!(inspect_f(&d, "{{.HostConfig.Memory}}", "oom"), "33554432");

    // The same with a shell string (allocation by the shell itself).
    let (st, _, err) = d.berth(&[
        "run",
        "--name",
        "oom2",
        "--memory",
        "32m",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        r#"x=$(head -c 67108864 /dev/zero | tr "\0" a); echo ${#x}"#,
    ]);
    assert_eq!(code(st), 137, "{err}");
    assert_eq!(inspect_f(&d, "{{.State.OOMKilled}}", "oom2"), "true");

    // Under the limit nothing is killed.
    let (st, _, err) = d.berth(&[
        "run",
        "--name",
        "fits",
        "--memory",
        "32m",
        "--network",
        "none",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4M",
        "count=4",
    ]);
    assert_eq!(code(st), 0, "{err}");
    assert_eq!(inspect_f(&d, "{{.State.OOMKilled}}", "fits"), "false");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // A bounded bomb (100 background sleeps) in a subshell: forks fail at the limit, the
    // subshell dies, PID 1 survives and counts the processes it can see.
    let script = "(for i in $(seq 1 100); do sleep 2 & done); echo \"bomb exit $?\"; \
                  n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo \"procs=$n\"; \
                  sleep 3; echo survived";
    let (c, out, err) = run(&d, &["--pids-limit", "20"], &["sh", "-c", script]);
    assert_eq!(c, 0, "{out}\n{err}");
    assert!(
        err.contains("can't fork"),
        "no fork failure reported: {err}"
    );
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!(
        procs <= 20,
        "{procs} processes under --pids-limit 20: {out}"
    );
    assert!(
        out.contains("bomb exit ") && !out.contains("bomb exit 0"),
        "{out}"
    );
    assert!(out.ends_with("survived\n"), "{out}");
    // The host still forks.
    assert!(Command::new("true").status().unwrap().success());
}
