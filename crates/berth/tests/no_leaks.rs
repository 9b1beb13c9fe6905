//! Many short-lived containers leave nothing behind: no mount under the test's roots, no
//! cgroup, no shim process, no state directory.

mod common;

use std::path::PathBuf;

use common::containers::{busybox, cgroup_dirs, code, dir_entries, shim_pids};
use common::TestDaemon;

const CYCLES: usize = 200;

#[test]
fn run_rm_cycles_leave_nothing_behind() {
    let d = TestDaemon::start_short();
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
    let d = TestDaemon::start_short();
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
