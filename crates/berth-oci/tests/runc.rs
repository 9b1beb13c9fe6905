//! The generated spec is real: runc accepts it and the container process
//! runs with Docker's capability set, a seccomp filter and
//! no_new_privs. Needs root and runc (installed on the CI machine): the
//! test fails loudly without them rather than skipping.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_oci::{build_spec, to_config_json, SpecInput};

fn runc() -> PathBuf {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("runc is required for this test (apt-get install runc)")
}

/// Removes the container, its runc state and its cgroups, also on panic.
struct Cleanup {
    runc: PathBuf,
    state_root: PathBuf,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(&self.runc)
            .arg("--root")
            .arg(&self.state_root)
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // runc removes the container's own cgroup; the shared parent stays
        // unless this was its last child (rmdir of a busy dir just fails).
        if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let parent = h.path().join("berth-test");
                let _ = fs::remove_dir(parent.join(&self.id));
                let _ = fs::remove_dir(&parent);
            }
        }
        let _ = fs::remove_dir(
            Path::new("/sys/fs/cgroup")
                .join("berth-test")
                .join(&self.id),
        );
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join("berth-test"));
    }
}

fn busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox is required for this test (apt-get install busybox-static)");
    for applet in ["sh", "true", "cat"] {
        symlink("busybox", bin.join(applet)).unwrap();
    }
    for dir in ["proc", "sys", "dev", "tmp", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
}

#[test]
fn runc_runs_the_spec_with_docker_isolation() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test must run as root");
    let runc = runc();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    busybox_rootfs(&rootfs);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("berth-oci-{}-{}", std::process::id(), nanos);
    let cleanup = Cleanup {
        runc: runc.clone(),
        state_root: tmp.path().join("state"),
        id: id.clone(),
    };

    let input = SpecInput {
        id: id.clone(),
        rootfs: rootfs.clone(),
        args: vec!["/bin/cat".into(), "/proc/self/status".into()],
        hostname: "berthtest".into(),
        no_new_privileges: true,
        cgroups_path: format!("/berth-test/{id}"),
        ..Default::default()
    };
    let spec = build_spec(&input).unwrap();
    fs::write(bundle.join("config.json"), to_config_json(&spec).unwrap()).unwrap();

    let out = Command::new(&runc)
        .arg("--root")
        .arg(&cleanup.state_root)
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "runc run failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );

    for want in [
        "CapEff:\t00000000a80425fb",
        "CapPrm:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
        "CapInh:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "Seccomp:\t2",
        "NoNewPrivs:\t1",
    ] {
        assert!(
            stdout.contains(want),
            "missing {want:?} in /proc/self/status:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    drop(cleanup);
}
