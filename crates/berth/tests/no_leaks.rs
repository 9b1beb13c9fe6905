//! Many short-lived containers leave nothing behind: no mount under the test's roots, no
//! cgroup, no shim process, no state directory.

mod common;

use std::path::PathBuf;

use common::containers::{busybox, cgroup_dirs, code, dir_entries, shim_pids};
use common::TestDaemon;

const CYCLES: usize = 200;

#[test]
fn run_rm_cycles_leave_nothing_behind() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let scratch = common::scratch();
    let mut ids = vec![];
    for i in 0..CYCLES {
        // The docker CLI writes the container ID to --cidfile, so we know what to look for.
        let cidfile = scratch.path().join(format!("cid{i}"));
        let (st, out, err) = d.docker(&[
            "run",
            "--rm",
            "--cidfile",
            cidfile.to_str().unwrap(),
            "--network",
            "none",
            "busybox",
            "true",
        ]);
        assert_eq!(code(st), 0, "cycle {i}: {out}{err}");
        let id =
            std::fs::read_to_string(&cidfile).unwrap_or_else(|e| panic!("cycle {i}: cidfile: {e}"));
        assert_eq!(id.len(), 64, "cycle {i}: {id:?}");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CYCLES, "container IDs repeat");

    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(common::mounts_under(&d.data_root), Vec::<PathBuf>::new());
    assert_eq!(common::mounts_under(&d.exec_root), Vec::<PathBuf>::new());
    assert_eq!(
        dir_entries(&d.data_root.join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        dir_entries(&d.exec_root.join("containers")),
        Vec::<String>::new()
    );
    for id in &ids {
        assert_eq!(
            shim_pids(id),
            Vec::<u32>::new(),
            "shim of {id} still running"
        );
        assert_eq!(
            cgroup_dirs(id),
            Vec::<PathBuf>::new(),
            "cgroup of {id} left"
        );
    }
}

#[test]
fn berth_run_rm_and_rm_f_leave_nothing_behind() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let mut ids = vec![];
    for i in 0..10 {
        let out = d.berth_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            &i.to_string(),
        ]);
        assert_eq!(out, format!("{i}\n"));
        let id = d.berth_ok(&["run", "-d", "--network", "none", "busybox", "sleep", "1000"]);
        ids.push(id.trim().to_string());
    }
    for id in &ids {
        assert_eq!(shim_pids(id).len(), 1, "no shim for running {id}");
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    d.berth_ok(&args);

    assert_eq!(d.berth_ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(common::mounts_under(&d.data_root), Vec::<PathBuf>::new());
    assert_eq!(common::mounts_under(&d.exec_root), Vec::<PathBuf>::new());
    assert_eq!(
        dir_entries(&d.data_root.join("containers")),
        Vec::<String>::new()
    );
    assert_eq!(
        dir_entries(&d.exec_root.join("containers")),
        Vec::<String>::new()
    );
    for id in &ids {
        assert_eq!(
            shim_pids(id),
            Vec::<u32>::new(),
            "shim of {id} still running"
        );
        assert_eq!(
            cgroup_dirs(id),
            Vec::<PathBuf>::new(),
            "cgroup of {id} left"
        );
    }
}

// The kit's own leak check (common/teardown.rs), proven on deliberate leaks: each test
// makes a leak, checks that it is really there, runs the kit's teardown under
// `catch_unwind` and asserts that the failure names that very leak, then that the kit
// cleaned it up.

/// Runs the kit's teardown of `d` and returns its failure message; fails if it passed.
fn teardown_failure(d: TestDaemon) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || d.finish()));
    match r {
        Ok(()) => panic!("the kit's teardown passed although the test left something behind"),
        Err(e) => common::panic_text(&e),
    }
}

fn links_on(bridge: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-j", "link"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["master"] == bridge)
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kit_fails_a_test_that_leaves_a_container_running() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let port = common::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    d.berth_ok(&[
        "run", "-d", "--name", "leaky", "-p", &publish, "busybox", "sleep", "1000",
    ]);
    let id = common::containers::container_id(&d, "leaky");
    // The leaks, as they are before teardown.
    let shims = shim_pids(&id);
    assert_eq!(shims.len(), 1, "{shims:?}");
    let cgroups = cgroup_dirs(&id);
    assert!(!cgroups.is_empty(), "no cgroup for {id}");
    let veths = links_on(&d.bridge);
    assert_eq!(veths.len(), 1, "interfaces on {}: {veths:?}", d.bridge);
    let mut mounts = common::mounts_under(&d.data_root);
    mounts.extend(common::mounts_under(&d.exec_root));
    assert!(
        mounts.iter().any(|m| m.to_string_lossy().contains(&id)),
        "no rootfs mount for {id}: {mounts:?}"
    );
    let bridge = d.bridge.clone();

    let msg = teardown_failure(d);
    for want in [
        format!("container leaky ({id}) still running"),
        format!("process {} still running", shims[0]),
        format!("interface {} still on bridge {bridge}", veths[0]),
        format!("chain ports: ip daddr 127.0.0.1 tcp dport {port} dnat to"),
    ] {
        assert!(msg.contains(&want), "{want:?} not in: {msg}");
    }
    for dir in &cgroups {
        assert!(msg.contains(&format!("cgroup {}", dir.display())), "{msg}");
    }
    for m in &mounts {
        assert!(msg.contains(&format!("mount {}", m.display())), "{msg}");
    }
    // And cleaned up.
    assert_eq!(shim_pids(&id), Vec::<u32>::new());
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
    assert_eq!(links_on(&bridge), Vec::<String>::new());
}

#[test]
fn kit_fails_a_test_that_leaves_a_mount_or_a_cgroup_but_not_for_its_own_mounts() {
    let d = TestDaemon::builder()
        .short()
        .prepare(|root| {
            let st = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
                .arg(root)
                .status()
                .unwrap();
            assert!(st.success(), "mount tmpfs on {}", root.display());
        })
        .start();
    busybox(&d);
    // A container that never ran: its cgroup is made by hand, as a daemon that forgot to
    // remove it would leave it.
    let id = d.berth_ok(&["create", "--network", "none", "busybox", "true"]);
    let id = id.trim().to_string();
    let base = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup/berth")
    } else {
        PathBuf::from("/sys/fs/cgroup/pids/berth")
    };
    let cgroup = base.join(&id);
    std::fs::create_dir_all(&cgroup).unwrap();
    let extra = d.exec_root.join("leak");
    std::fs::create_dir_all(&extra).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&extra)
        .status()
        .unwrap();
    assert!(st.success());
    let data_root = d.data_root.clone();

    let msg = teardown_failure(d);
    assert!(msg.contains(&format!("mount {}", extra.display())), "{msg}");
    assert!(
        msg.contains(&format!("cgroup {}", cgroup.display())),
        "{msg}"
    );
    assert!(
        !msg.contains(&format!("mount {};", data_root.display()))
            && !msg.ends_with(&format!("mount {}", data_root.display())),
        "the test's own mount was called a leak: {msg}"
    );
    assert!(!cgroup.exists());
    assert_eq!(common::mounts_under(&data_root), Vec::<PathBuf>::new());
}

#[test]
fn kit_passes_containers_left_running_on_purpose_and_removes_them() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&["run", "-d", "--name", "kept", "busybox", "sleep", "1000"]);
    let id = common::containers::container_id(&d, "kept");
    d.kill9();
    assert_eq!(
        shim_pids(&id).len(),
        1,
        "the container died with its daemon"
    );
    d.expect_left_running();
    d.finish();
    assert_eq!(shim_pids(&id), Vec::<u32>::new());
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
}
