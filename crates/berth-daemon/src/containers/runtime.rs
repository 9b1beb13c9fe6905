//! Running containers: start (overlay rootfs, OCI bundle, shim), the exit
//! monitor, stop/kill/remove/wait, attach and resize, and live restore of
//! containers whose shims outlived a daemon restart.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_api::backend::{AttachOptions, Attached, BoxFut};
use berth_api::ApiError;
use berth_oci::{MountKind, MountSpec, NetworkMode, Resources, SeccompChoice, SpecInput, Ulimit};
use berth_shim::{ShimArgs, ShimClient};
use nix::mount::{umount2, MntFlags};

use super::record::Status;
use super::{io, Container, ContainerError};
use super::{process_start, ContainerService};

fn now() -> String {
    berth_image::config::now_rfc3339()
}

/// `SIGTERM`, `TERM`, `15` → signal number.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n < 65 {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| ContainerError::InvalidArgument(format!("Invalid signal: {s}")))
}

/// Reads a small file of the rootfs (`etc/passwd` for `--user`), resolved
/// inside it through descriptors (CVE-2018-15664: a running container can
/// swap any component for a symlink); empty if it is missing or not a
/// regular file.
pub(crate) fn read_in_rootfs(rootfs: &Path, rel: &str) -> String {
    crate::rootpath::Root::open(rootfs)
        .and_then(|root| root.read_small_file(rel))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

pub(super) fn is_mounted(path: &Path) -> bool {
    let target = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
        })
        .unwrap_or(false)
}

/// Every cgroup directory of a container, in all mounted hierarchies.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut out = vec![base.join("berth").join(id)];
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.into_iter().filter(|p| p.is_dir()).collect()
}

/// Kills whatever still runs in the container's cgroups (its shim died, so
/// nothing else will) and removes the cgroup directories.
fn reap_cgroups(id: &str) {
    for _ in 0..50 {
        let mut any = false;
        for d in cgroup_dirs(id) {
            for pid in std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                any = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !any {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for d in cgroup_dirs(id) {
        let _ = std::fs::remove_dir(&d);
    }
}

/// The `--init` binary: Docker's own if installed, else a static tini.
fn init_binary() -> Option<PathBuf> {
    [
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
        "/usr/bin/tini-static",
        "/usr/sbin/tini-static",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

pub(crate) fn unmount(c: &Container) {
    unmount_rootfs(c)
}

fn unmount_rootfs(c: &Container) {
    super::namespaces::unmount_shm(&c.dir);
    let root = c.rootfs();
    if is_mounted(&root) {
        if let Err(e) = umount2(&root, MntFlags::MNT_DETACH) {
            tracing::warn!(container = %c.id, error = %e, "unmounting rootfs");
        }
    }
}

impl ContainerService {
    fn spec_input(&self, c: &Container) -> Result<SpecInput, ContainerError> {
        let r = c.record();
        let h = &r.host_config;
        let rootfs = c.rootfs();
        let user = berth_oci::resolve_user(
            &read_in_rootfs(&rootfs, "etc/passwd"),
            &read_in_rootfs(&rootfs, "etc/group"),
            &r.config.user,
            h.group_add.as_deref().unwrap_or(&[]),
        )
        .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
        let mut seccomp = SeccompChoice::Default;
        let mut no_new_privileges = false;
        for opt in h.security_opt.clone().unwrap_or_default() {
            let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
            match k {
                "no-new-privileges" => no_new_privileges = v.is_empty() || v == "true",
                "seccomp" if v == "unconfined" => seccomp = SeccompChoice::Unconfined,
                // Docker's CLI reads `seccomp=FILE` and sends the profile
                // itself; a path is still accepted from other clients.
                "seccomp" if v.trim_start().starts_with('{') => {
                    seccomp = SeccompChoice::Custom(v.to_string())
                }
                "seccomp" => {
                    let text = std::fs::read_to_string(v).map_err(|e| {
                        ContainerError::InvalidArgument(format!(
                            "opening seccomp profile ({v}) failed: {e}"
                        ))
                    })?;
                    seccomp = SeccompChoice::Custom(text);
                }
                "apparmor" | "label" => {}
                _ => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "invalid --security-opt: {opt:?}"
                    )))
                }
            }
        }
        let mut mounts = Vec::new();
        for m in &r.mounts {
            if m.kind == "bind" && !Path::new(&m.source).exists() {
                std::fs::create_dir_all(&m.source)
                    .map_err(io(format!("creating bind source {}", m.source)))?;
            }
            if m.kind == "volume" {
                // Docker copies the image's content at the mount path into a
                // new, empty volume.
                // The source is resolved to a descriptor inside the root
                // and handed to `cp` as its /proc magic link, so no path
                // string is resolved through the host's root.
                let root = crate::rootpath::Root::open(&c.rootfs());
                if let Ok(src) = root.and_then(|r| r.open_path(&m.destination, true)) {
                    self.volumes.seed_from(
                        &m.name,
                        &crate::rootpath::proc_fd_path(std::os::fd::AsFd::as_fd(&src)),
                    );
                }
            }
            let kind = if m.kind == "volume" {
                MountKind::Volume
            } else {
                MountKind::Bind
            };
            mounts.push(MountSpec {
                source: m.source.clone(),
                destination: m.destination.clone(),
                kind,
                readonly: !m.rw,
                options: vec![],
            });
        }
        for (dst, opts) in h.tmpfs.clone().unwrap_or_default() {
            mounts.push(MountSpec {
                source: "tmpfs".into(),
                destination: dst,
                kind: MountKind::Tmpfs,
                readonly: false,
                options: opts
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            });
        }
        for m in h.mounts.clone().unwrap_or_default() {
            match m.kind.as_str() {
                "bind" | "volume" => {} // resolved at create time
                "tmpfs" => mounts.push(MountSpec {
                    source: "tmpfs".into(),
                    options: super::host_config::tmpfs_mount_options(&m),
                    destination: m.target,
                    kind: MountKind::Tmpfs,
                    readonly: m.read_only,
                }),
                other => {
                    return Err(ContainerError::InvalidArgument(format!(
                        "mount type {other:?} is not supported yet"
                    )))
                }
            }
        }
        // Replaced by the sandbox's namespace in `start_inner`.
        let network = match h.network_mode.as_str() {
            "host" => NetworkMode::Host,
            _ => NetworkMode::None,
        };
        let ulimits = h
            .ulimits
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit {
                name: u.name,
                soft: u.soft as u64,
                hard: u.hard as u64,
            })
            .collect::<Vec<_>>();
        let host_caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("CapBnd:"))
                    .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            });
        Ok(SpecInput {
            id: r.id.clone(),
            rootfs,
            readonly_rootfs: h.readonly_rootfs,
            args: std::iter::once(r.path.clone())
                .chain(r.args.iter().cloned())
                .collect(),
            env: r.config.env.clone().unwrap_or_default(),
            cwd: if r.config.working_dir.is_empty() {
                "/".into()
            } else {
                r.config.working_dir.clone()
            },
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            hostname: r.config.hostname.clone(),
            tty: r.config.tty,
            privileged: h.privileged,
            cap_add: h.cap_add.clone().unwrap_or_default(),
            cap_drop: h.cap_drop.clone().unwrap_or_default(),
            host_capabilities: host_caps,
            seccomp,
            no_new_privileges,
            mounts,
            network,
            resources: Resources {
                memory: (h.memory > 0).then_some(h.memory),
                memory_swap: (h.memory_swap != 0).then_some(h.memory_swap),
                cpu_shares: (h.cpu_shares > 0).then_some(h.cpu_shares as u64),
                cpu_quota: (h.cpu_quota > 0).then_some(h.cpu_quota),
                cpu_period: (h.cpu_period > 0).then_some(h.cpu_period as u64),
                nano_cpus: (h.nano_cpus > 0).then_some(h.nano_cpus),
                pids_limit: h.pids_limit.filter(|p| *p > 0),
            },
            ulimits,
            sysctls: h.sysctls.clone().unwrap_or_default(),
            shm_size: (h.shm_size > 0).then_some(h.shm_size as u64),
            cgroups_path: format!("/berth/{}", r.id),
            oom_score_adj: (h.oom_score_adj != 0).then_some(h.oom_score_adj as i32),
            devices: super::devices::from_mappings(h.devices.as_deref().unwrap_or(&[]))?,
            host_devices: if h.privileged {
                super::devices::host_devices()
            } else {
                vec![]
            },
            masked_paths: h.masked_paths.clone(),
            readonly_paths: h.readonly_paths.clone(),
            annotations: h.annotations.clone().unwrap_or_default(),
            ..Default::default()
        })
    }

    pub(crate) fn mount_rootfs_for(&self, c: &Container) -> Result<(), ContainerError> {
        self.mount_rootfs(c)
    }

    fn mount_rootfs(&self, c: &Container) -> Result<(), ContainerError> {
        let r = c.record();
        let image: berth_core::Digest = r
            .image_id
            .parse()
            .map_err(|_| ContainerError::Runtime(format!("bad image id {}", r.image_id)))?;
        let layers = self.images.store.layer_dirs(&image).map_err(|e| {
            ContainerError::Runtime(format!("image {} of container {}: {e}", r.image, r.id))
        })?;
        let root = c.rootfs();
        std::fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        if is_mounted(&root) {
            return Ok(());
        }
        let (upper, work) = (c.upper_dir(), c.work_dir());
        berth_snapshot::mount_overlay(
            &root,
            &layers,
            Some(berth_snapshot::Upper {
                upper: &upper,
                work: &work,
            }),
            false,
        )
        .map_err(|e| ContainerError::Runtime(format!("mounting the rootfs of {}: {e}", r.id)))
    }

    /// Starts a created or exited container. `Ok(false)` if it already runs.
    pub(crate) fn container_start(&self, c: &Arc<Container>) -> Result<bool, ContainerError> {
        let _op = c.op.lock().expect("op lock");
        let r = c.record();
        match r.state.status {
            Status::Running | Status::Paused | Status::Restarting => return Ok(false),
            Status::Removing | Status::Dead => {
                return Err(ContainerError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    r.id
                )))
            }
            _ => {}
        }
        match self.start_inner(c) {
            Ok(()) => Ok(true),
            Err(e) => {
                unmount_rootfs(c);
                reap_cgroups(&c.id);
                self.network_teardown(c);
                let code = process_start::start_exit_code(&e);
                let _ = c.update(|r| {
                    r.state.error = e.to_string();
                    r.state.exit_code = code;
                });
                c.count_exit();
                // dockerd removes an AutoRemove container whose start failed;
                // `run --rm` waits for that removal.
                if c.record().host_config.auto_remove {
                    let _ = self.container_remove(c, true);
                }
                Err(e)
            }
        }
    }

    fn start_inner(&self, c: &Arc<Container>) -> Result<(), ContainerError> {
        self.mount_rootfs(c)?;
        let sandbox = self.network_setup(c)?;
        let mut input = self.spec_input(c)?;
        let ns = super::namespaces::resolve(&c.record().host_config, &c.dir, &|x| {
            self.containers.get(x)
        })?;
        (input.pid, input.ipc, input.uts, input.cgroupns, input.shm) =
            (ns.pid, ns.ipc, ns.uts, ns.cgroupns, ns.shm);
        input.network = sandbox.network;
        input.mounts.extend(sandbox.mounts);
        if c.record().host_config.init == Some(true) {
            // `--init`: Docker's docker-init is tini; Debian's static build
            // runs in any image, libc or not.
            let init = init_binary().ok_or_else(|| {
                ContainerError::InvalidArgument(
                    "--init needs an init binary: none of /usr/bin/docker-init, /usr/libexec/docker/docker-init, /usr/bin/tini-static found (apt-get install tini)".into(),
                )
            })?;
            input.mounts.push(MountSpec {
                source: init.display().to_string(),
                destination: "/sbin/docker-init".into(),
                kind: MountKind::Bind,
                readonly: true,
                options: vec![],
            });
            let mut args = vec!["/sbin/docker-init".to_string(), "--".to_string()];
            args.append(&mut input.args);
            input.args = args;
        }
        let spec = berth_oci::build_spec(&input)
            .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
        let json = berth_oci::to_config_json(&spec)
            .map_err(|e| ContainerError::Runtime(format!("writing config.json: {e}")))?;
        let bundle = c.bundle();
        std::fs::write(bundle.join("config.json"), json).map_err(io("writing config.json"))?;
        let shim_dir = c.shim_dir();
        let _ = std::fs::remove_dir_all(&shim_dir);
        std::fs::create_dir_all(&shim_dir)
            .map_err(io(format!("creating {}", shim_dir.display())))?;
        let r = c.record();
        let mut args = ShimArgs::new(&r.id, &bundle, &shim_dir, c.log_path());
        args.seccomp_cache = Some(self.containers.seccomp_cache.clone());
        args.tty = r.config.tty;
        args.stdin = r.config.open_stdin;
        let log_opts = &r.host_config.log_config.config;
        if let Some(s) = log_opts.get("max-size") {
            args.log_max_size = berth_shim::parse_log_size(s).map_err(|_| {
                ContainerError::InvalidArgument(format!("invalid log-opt max-size {s:?}"))
            })?;
        }
        if let Some(n) = log_opts.get("max-file") {
            args.log_max_file = n.parse().map_err(|_| {
                ContainerError::InvalidArgument(format!("invalid log-opt max-file {n:?}"))
            })?;
        }
        args.runtime = match r.host_config.runtime.as_str() {
            "" | "berth" => None,
            "runc" | "crun" => Some(find_in_path(&r.host_config.runtime).ok_or_else(|| {
                ContainerError::InvalidArgument(format!(
                    "runtime {} not found in PATH",
                    r.host_config.runtime
                ))
            })?),
            p if p.starts_with('/') => Some(PathBuf::from(p)),
            other => {
                return Err(ContainerError::InvalidArgument(format!(
                    "unknown runtime specified {other}"
                )))
            }
        };
        // The running binary itself, even if the file was replaced since.
        let exe = PathBuf::from("/proc/self/exe");
        let started = berth_shim::spawn_shim(&exe, &args)
            .map_err(|e| process_start::start_error(&r.path, &e))?;
        c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = started.pid as i64;
            r.state.shim_pid = started.shim_pid as i64;
            r.state.started_at = Some(now());
            r.state.finished_at = None;
            r.state.error.clear();
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.stopped_by_user = false;
            r.state.health = None;
        })?;
        self.events
            .container(&r, crate::events::ContainerAction::Start);
        self.monitor(c.clone());
        self.start_health(c);
        Ok(())
    }

    /// Waits (on its own thread) for the shim to report the exit, then
    /// records it and applies `--rm` and the restart policy.
    pub(crate) fn monitor(&self, c: Arc<Container>) {
        let service = self.arc();
        std::thread::Builder::new()
            .name(format!("monitor-{}", &c.id[..12]))
            .spawn(move || {
                let shim_dir = c.shim_dir();
                let exit = ShimClient::connect(&shim_dir)
                    .and_then(|cl| cl.wait())
                    .ok()
                    .or_else(|| berth_shim::read_exit_file(&shim_dir).ok().flatten());
                service.on_exit(&c, exit);
            })
            .expect("spawn monitor thread");
    }

    fn on_exit(&self, c: &Arc<Container>, exit: Option<berth_shim::ExitStatus>) {
        if exit.is_none() {
            // The shim died without recording an exit: its container may
            // still run, unsupervised. Stop it rather than leak it.
            reap_cgroups(&c.id);
        }
        unmount_rootfs(c);
        self.network_teardown(c);
        let (code, oom, error) = match &exit {
            Some(e) => (e.exit_code as i64, e.oom_killed, String::new()),
            None => (
                255,
                false,
                "the container's shim exited without recording an exit status".to_string(),
            ),
        };
        let _ = c.update(|r| {
            r.state.status = Status::Exited;
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = Some(
                exit.as_ref()
                    .map(|e| berth_image::config::go_rfc3339_nano(e.exited_at))
                    .unwrap_or_else(now),
            );
            r.state.pid = 0;
            r.state.error = error;
        });
        let r = c.record();
        if oom {
            self.events
                .container(&r, crate::events::ContainerAction::Oom);
        }
        self.events
            .container(&r, crate::events::ContainerAction::Die { exit_code: code });
        if r.host_config.auto_remove {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let seen = c.changes();
                let now = std::time::Instant::now();
                if c.attachers.load(std::sync::atomic::Ordering::SeqCst) == 0 || now >= deadline {
                    break;
                }
                c.wait_change(seen, deadline - now);
            }
            if let Err(e) = self.container_remove(c, true) {
                tracing::warn!(container = %r.id, error = %e, "auto-remove failed");
            }
            return;
        }
        let last = super::restart::LastRun::of(&r);
        if let Some(delay) = super::restart::decide(&r.host_config.restart_policy, last) {
            let _ = c.update(|r| {
                r.restart_count += 1;
                r.state.status = Status::Restarting;
            });
            let service = self.arc();
            let c = c.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                if c.record().state.status != Status::Restarting {
                    return;
                }
                let _ = c.update(|r| r.state.status = Status::Exited);
                if let Err(e) = service.container_start(&c) {
                    tracing::warn!(container = %c.id, error = %e, "restart failed");
                }
            });
        }
    }

    pub(crate) fn container_kill(&self, c: &Container, signal: &str) -> Result<(), ContainerError> {
        let sig = parse_signal(signal)?;
        let r = c.record();
        if !r.state.status.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                r.name, r.id
            )));
        }
        ShimClient::connect(&c.shim_dir())
            .and_then(|cl| cl.kill(sig))
            .map_err(|e| ContainerError::Runtime(format!("killing container {}: {e}", r.id)))?;
        self.events.container(
            &r,
            crate::events::ContainerAction::Kill {
                signal: sig.to_string(),
            },
        );
        Ok(())
    }

    fn wait_exit(&self, c: &Container, timeout: Duration) -> bool {
        let rx = c.subscribe();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = c.changes();
            if !rx.borrow().status.is_running() {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            c.wait_change(seen, deadline - now);
        }
    }

    pub(crate) fn container_stop(
        &self,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
        by_user: bool,
    ) -> Result<bool, ContainerError> {
        let r = c.record();
        if r.state.status == Status::Restarting {
            c.update(|r| {
                r.state.status = Status::Exited;
                r.state.stopped_by_user = by_user;
            })?;
            return Ok(true);
        }
        if !r.state.status.is_running() {
            return Ok(false);
        }
        c.update(|r| r.state.stopped_by_user = by_user)?;
        let sig = signal
            .map(str::to_string)
            .or(r.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let secs = timeout.or(r.config.stop_timeout).unwrap_or(10);
        if let Err(e) = self.container_kill(c, &sig) {
            tracing::debug!(error = %e, "stop signal");
        }
        if secs < 0 || !self.wait_exit(c, Duration::from_secs(secs as u64)) {
            let _ = self.container_kill(c, "SIGKILL");
            if !self.wait_exit(c, Duration::from_secs(10)) {
                return Err(ContainerError::Runtime(format!(
                    "container {} did not stop after SIGKILL",
                    r.id
                )));
            }
        }
        self.events
            .container(&r, crate::events::ContainerAction::Stop);
        Ok(true)
    }

    pub(crate) fn container_remove(
        &self,
        c: &Arc<Container>,
        force: bool,
    ) -> Result<(), ContainerError> {
        self.container_remove_v(c, force, false)
    }

    /// `rm [-f] [-v]`: `volumes` also removes the container's anonymous volumes.
    pub(crate) fn container_remove_v(
        &self,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let r = c.record();
        if r.state.status.is_running() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    r.name
                )));
            }
            let _ = c.update(|r| r.state.stopped_by_user = true);
            let _ = self.container_kill(c, "SIGKILL");
            if !self.wait_exit(c, Duration::from_secs(10)) {
                return Err(ContainerError::Runtime(format!(
                    "could not kill running container {}, cannot remove",
                    r.id
                )));
            }
        }
        if self.containers.forget(&r.id).is_none() {
            return Ok(()); // removed concurrently (e.g. auto-remove)
        }
        unmount_rootfs(c);
        reap_cgroups(&r.id);
        self.network_teardown(c);
        let _ = std::fs::remove_dir_all(c.shim_dir());
        let mut failures = Vec::new();
        for d in [&c.run_dir, &c.dir] {
            if let Err(e) = std::fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failures.push(io(d.display().to_string())(e));
                }
            }
        }
        c.mark_removed();
        if volumes || r.host_config.auto_remove {
            for m in r.mounts.iter().filter(|m| m.anonymous) {
                if let Err(e) = self.volumes.remove(&m.name, &self.volume_users(&m.name)) {
                    failures.push(e.into());
                }
            }
        }
        self.events
            .container(&r, crate::events::ContainerAction::Destroy);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Cleanup {
                id: r.id.clone(),
                failures,
            })
        }
    }

    pub(crate) fn container_resize(
        &self,
        c: &Container,
        h: u16,
        w: u16,
    ) -> Result<(), ContainerError> {
        if !c.record().state.status.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        ShimClient::connect(&c.shim_dir())
            .and_then(|cl| cl.resize(h, w))
            .map_err(|e| ContainerError::Runtime(e.to_string()))
    }

    /// Attach: output comes from the json-file log from this moment on (so
    /// an attach made before `start` misses nothing), stdin goes through the
    /// shim once the container runs. With a tty the shim's raw stream is used
    /// both ways.
    pub(crate) fn container_attach(
        &self,
        c: &Arc<Container>,
        opts: AttachOptions,
    ) -> BoxFut<Result<Attached, ApiError>> {
        let c = c.clone();
        let tty = c.record().config.tty;
        let offset = std::fs::metadata(c.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let rx = c.subscribe();
        // Counted from now, not from when the client's upgrade completes, so
        // a container that exits at once is not auto-removed under us.
        let guard = AttachGuard::new(c.clone());
        Box::pin(async move {
            let (ours, theirs) =
                UnixStream::pair().map_err(|e| ApiError::internal(format!("socketpair: {e}")))?;
            theirs
                .set_nonblocking(true)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let io = tokio::net::UnixStream::from_std(theirs)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            std::thread::spawn(move || {
                let _guard = guard;
                pump(c, opts, tty, offset, rx, ours);
            });
            Ok(Attached { tty, io })
        })
    }

    /// Re-attaches to shims that outlived the previous daemon, and records
    /// the exit of those that ended meanwhile.
    pub(crate) fn restore_containers(&self) {
        let mut to_start = Vec::new();
        for c in self.containers.all() {
            let r = c.record();
            if !r.state.status.is_running() {
                let last = super::restart::LastRun::of(&r);
                if r.state.status == Status::Exited
                    && r.state.started_at.is_some()
                    && super::restart::restarts_with_engine(&r.host_config.restart_policy, last)
                {
                    to_start.push(c);
                }
                continue;
            }
            let shim_dir = c.shim_dir();
            match ShimClient::connect(&shim_dir).and_then(|cl| cl.state()) {
                Ok(s)
                    if matches!(
                        s.status,
                        berth_shim::Status::Running | berth_shim::Status::Paused
                    ) =>
                {
                    // A paused container is alive too: keep it, and its state.
                    let status = if s.status == berth_shim::Status::Paused {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    let _ = c.update(|r| r.state.status = status);
                    self.network_restore(&c);
                    self.start_health(&c);
                    tracing::info!(container = %r.id, "re-attached to running container");
                    self.monitor(c.clone());
                }
                _ => {
                    let exit = berth_shim::read_exit_file(&shim_dir).ok().flatten();
                    tracing::info!(container = %r.id, exited = exit.is_some(), "container ended while the engine was down");
                    self.on_exit(&c, exit);
                }
            }
        }
        if !to_start.is_empty() {
            // Started off the start-up path: the API answers meanwhile.
            let service = self.arc();
            std::thread::spawn(move || {
                for c in to_start {
                    tracing::info!(container = %c.id, "starting container by its restart policy");
                    if let Err(e) = service.container_start(&c) {
                        tracing::warn!(container = %c.id, error = %e, "restart policy start failed");
                    }
                }
            });
        }
    }
}

struct AttachGuard(Arc<Container>);

impl AttachGuard {
    fn new(c: Arc<Container>) -> AttachGuard {
        c.attachers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        AttachGuard(c)
    }
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        self.0
            .attachers
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        // `--rm` may be waiting for the last attacher.
        self.0.poke();
    }
}

fn wait_started(
    c: &Container,
    rx: &mut tokio::sync::watch::Receiver<super::Snapshot>,
    start_exits: u64,
) -> bool {
    loop {
        let seen = c.changes();
        let s = *rx.borrow_and_update();
        if s.removed {
            return false;
        }
        if s.status.is_running() || s.exits > start_exits {
            return true;
        }
        c.wait_change(seen, Duration::from_secs(1));
    }
}

/// Moves bytes between an attach client and the container (own thread).
fn pump(
    c: Arc<Container>,
    opts: AttachOptions,
    tty: bool,
    offset: u64,
    mut rx: tokio::sync::watch::Receiver<super::Snapshot>,
    ours: UnixStream,
) {
    let start_exits = rx.borrow().exits;
    if !wait_started(&c, &mut rx, start_exits) {
        return;
    }
    if tty {
        let Ok(shim) = ShimClient::connect(&c.shim_dir()).and_then(|cl| {
            if opts.stdin {
                cl.attach()
            } else {
                cl.attach_output()
            }
        }) else {
            return;
        };
        let (mut a, mut b) = (
            ours.try_clone().expect("clone"),
            shim.try_clone().expect("clone"),
        );
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut b, &mut a);
            let _ = a.shutdown(std::net::Shutdown::Both);
        });
        if opts.stdin {
            let (mut from_client, mut to_shim) = (ours, shim);
            let _ = std::io::copy(&mut from_client, &mut to_shim);
            let _ = to_shim.shutdown(std::net::Shutdown::Write);
        }
        let _ = t.join();
        return;
    }
    if opts.stdin {
        if let Ok(shim) = ShimClient::connect(&c.shim_dir()).and_then(|cl| cl.attach()) {
            let mut from_client = ours.try_clone().expect("clone");
            let mut to_shim = shim;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_shim);
                let _ = to_shim.shutdown(std::net::Shutdown::Write);
                // Drain (and drop) what the shim sends back: output comes from the log.
                let _ = std::io::copy(&mut to_shim, &mut std::io::sink());
            });
        }
    }
    follow_log(&c, offset, &opts, start_exits, &mut rx, ours);
}

fn follow_log(
    c: &Container,
    offset: u64,
    opts: &AttachOptions,
    start_exits: u64,
    rx: &mut tokio::sync::watch::Receiver<super::Snapshot>,
    mut out: UnixStream,
) {
    // Attach shows live output only: every line, framed, no timestamps.
    let filter = super::logs::Filter {
        stdout: opts.stdout,
        stderr: opts.stderr,
        since: None,
        until: None,
        timestamps: false,
        tail: None,
        tty: false,
    };
    let path = c.log_path();
    let mut pos = offset;
    let mut pending = Vec::new();
    loop {
        let seen = c.changes();
        let finished = {
            let s = *rx.borrow_and_update();
            s.removed || s.exits > start_exits || !s.status.is_running()
        };
        let mut chunk = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < pos {
                pos = 0; // rotated
            }
            if f.seek(SeekFrom::Start(pos)).is_ok() {
                let _ = f.read_to_end(&mut chunk);
            }
        }
        pos += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let Ok(text) = std::str::from_utf8(&line) else {
                continue;
            };
            if let Some(frame) = super::logs::render(&filter, text.trim_end_matches('\n')) {
                if out.write_all(&frame).is_err() {
                    return;
                }
            }
        }
        if finished && chunk.is_empty() {
            let _ = out.shutdown(std::net::Shutdown::Write);
            return;
        }
        if chunk.is_empty() {
            // New output is polled for; the exit wakes us at once.
            c.wait_change(seen, Duration::from_millis(20));
        }
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_sizes() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(berth_shim::parse_log_size("20m").ok(), Some(20 << 20));
        assert_eq!(berth_shim::parse_log_size("100").ok(), Some(100));
        assert_eq!(berth_shim::parse_log_size("x").ok(), None);
    }
}
