//! The secrets and configs of one task, as files its container sees.
//!
//! Before a task's container is created, its secrets (opened with the
//! swarm's key) and configs are written into a tmpfs mounted for that task
//! alone at `<exec-root>/swarm/tasks/<task-id>` (mode 0700, nosuid, nodev,
//! noexec, as dockerd mounts its secrets directory), each file with the
//! reference's UID, GID and mode; the tmpfs is then remounted read-only
//! and every file is bind-mounted read-only at its target in the
//! container (`/run/secrets/<name>` or an absolute path for secrets,
//! `/<name>` or an absolute path for configs). Secret data so never
//! touches a disk: not the container's writable layer, not the image, not
//! the data root. The tmpfs is unmounted when the task is deleted (its
//! container removed) and all of them when the node leaves the swarm.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use berth_api::container_types::ContainerCreateBody;
use berth_swarm::objects::TaskRecord;
use berth_swarm::{ClusterStore, Kind};
use berth_wire::host_config::Mount;
use berth_wire::swarm::{Config, FileTarget};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::get;
use super::secrets::{config_target, secret_target, StoredSecret};
use super::vault::Vault;
use crate::containers::ContainerService;

/// `(data-root, exec-root)`, from where the container store keeps its
/// records (`<data-root>/containers`) and run state
/// (`<exec-root>/containers`).
fn roots(containers: &ContainerService) -> (PathBuf, PathBuf) {
    let s = containers.store();
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    (parent(&s.root), parent(&s.run_root))
}

fn tasks_root(containers: &ContainerService) -> PathBuf {
    roots(containers).1.join("swarm").join("tasks")
}

/// One file to write: where it goes in the container and what it holds.
struct TaskFile {
    what: String,
    target: String,
    data: Vec<u8>,
    file: FileTarget,
}

/// The files of `t`'s secret and config references, data included.
fn collect(
    store: &dyn ClusterStore,
    containers: &ContainerService,
    t: &TaskRecord,
) -> Result<Vec<TaskFile>, String> {
    let spec = t.task.spec.container_spec.clone().unwrap_or_default();
    let secrets = spec.secrets.unwrap_or_default();
    let configs: Vec<_> = spec
        .configs
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.file.is_some())
        .collect();
    let mut out = Vec::new();
    if !secrets.is_empty() {
        let vault = Vault::open_or_create(&roots(containers).0.join("swarm").join("key"))
            .map_err(|e| e.to_string())?;
        for r in secrets {
            let what = format!("secret {}", r.secret_name);
            let s: StoredSecret = get(store, Kind::Secret, &r.secret_id)
                .map_err(|_| format!("{what} ({}) not found", r.secret_id))?;
            let file = r.file.unwrap_or_default();
            out.push(TaskFile {
                target: secret_target(&file),
                data: s.open(&vault).map_err(|e| format!("{what}: {e}"))?,
                what,
                file,
            });
        }
    }
    for r in configs {
        let what = format!("config {}", r.config_name);
        let c: Config = get(store, Kind::Config, &r.config_id)
            .map_err(|_| format!("{what} ({}) not found", r.config_id))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(c.spec.data.unwrap_or_default())
            .map_err(|_| format!("{what}: stored data is not base64"))?;
        let file = r.file.unwrap_or_default();
        out.push(TaskFile {
            target: config_target(&file),
            data,
            what,
            file,
        });
    }
    Ok(out)
}

fn id_of(what: &str, field: &str, v: &str) -> Result<u32, String> {
    if v.is_empty() {
        return Ok(0);
    }
    v.parse()
        .map_err(|_| format!("{what}: File.{field} {v:?} is not a numeric ID"))
}

/// Writes `t`'s secrets and configs into its tmpfs and adds their
/// read-only bind mounts to `body`. Nothing to do for a task without any.
pub(crate) fn attach(
    store: &dyn ClusterStore,
    containers: &ContainerService,
    t: &TaskRecord,
    body: &mut ContainerCreateBody,
) -> Result<(), String> {
    let files = collect(store, containers, t)?;
    if files.is_empty() {
        return Ok(());
    }
    let dir = tasks_root(containers).join(&t.task.id);
    release_dir(&dir)?;
    match fill(&dir, &files) {
        Ok(mounts) => {
            body.host_config
                .mounts
                .get_or_insert_with(Vec::new)
                .extend(mounts);
            Ok(())
        }
        Err(e) => {
            if let Err(cleanup) = release_dir(&dir) {
                return Err(format!("{e} (and cleaning up: {cleanup})"));
            }
            Err(e)
        }
    }
}

const TMPFS_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

fn fill(dir: &Path, files: &[TaskFile]) -> Result<Vec<Mount>, String> {
    let io = |what: String| move |e: std::io::Error| format!("{what}: {e}");
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", dir.display())))?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        TMPFS_FLAGS,
        Some("mode=0700"),
    )
    .map_err(|e| format!("mounting a tmpfs at {}: {e}", dir.display()))?;
    let mut mounts = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let uid = id_of(&f.what, "UID", &f.file.uid)?;
        let gid = id_of(&f.what, "GID", &f.file.gid)?;
        let path = dir.join(format!("{i}"));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("{}: creating {}", f.what, path.display())))?;
        out.write_all(&f.data)
            .map_err(io(format!("{}: writing {}", f.what, path.display())))?;
        std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(io(format!(
            "{}: chown {}",
            f.what,
            path.display()
        )))?;
        out.set_permissions(std::fs::Permissions::from_mode(f.file.mode & 0o7777))
            .map_err(io(format!("{}: chmod {}", f.what, path.display())))?;
        mounts.push(Mount {
            kind: "bind".into(),
            source: path.to_string_lossy().into_owned(),
            target: f.target.clone(),
            read_only: true,
            ..Default::default()
        });
    }
    // Read-only from here on, as dockerd leaves its secrets directory.
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        TMPFS_FLAGS | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        Some("mode=0700"),
    )
    .map_err(|e| format!("remounting {} read-only: {e}", dir.display()))?;
    Ok(mounts)
}

/// Unmounts and removes one task's directory; absent is done.
fn release_dir(dir: &Path) -> Result<(), String> {
    loop {
        match umount2(dir, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            // Not (or no longer) a mount point.
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(e) => return Err(format!("unmounting {}: {e}", dir.display())),
        }
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", dir.display())),
    }
}

/// Drops the files of a task being deleted.
pub(crate) fn release(containers: &ContainerService, task_id: &str) {
    if let Err(e) = release_dir(&tasks_root(containers).join(task_id)) {
        tracing::warn!(task = %task_id, error = %e, "removing a task's secrets tmpfs");
    }
}

/// Drops every task's files (leaving the swarm); returns the failures.
pub(crate) fn release_all(containers: &ContainerService) -> Vec<String> {
    let root = tasks_root(containers);
    let mut failures = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            if let Err(f) = release_dir(&e.path()) {
                failures.push(f);
            }
        }
    }
    if failures.is_empty() {
        for d in [&root, root.parent().unwrap_or(&root)] {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => failures.push(format!("removing {}: {e}", d.display())),
            }
        }
    }
    failures
}
