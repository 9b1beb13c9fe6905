//! Operations on a container's processes and file system besides its
//! lifecycle: pause/unpause, top, changes (diff), commit, stats, update.

use std::collections::BTreeSet;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_shim::ShimClient;
use serde_json::{json, Value};

use super::record::Status;
use super::{cgroup_v2, ContainerService};
use super::{Container, ContainerError};

/// The container's cgroup directory for a v1 controller (or the unified one).
fn cgroup_dir(id: &str, controller: &str) -> PathBuf {
    if cgroup_v2() {
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}"))
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn not_running(c: &Container) -> ContainerError {
    ContainerError::Conflict(format!("Container {} is not running", c.id))
}

impl ContainerService {
    pub(crate) fn container_pause(
        &self,
        c: &Arc<Container>,
        pause: bool,
    ) -> Result<(), ContainerError> {
        let _op = c.op.lock().expect("op lock");
        let r = c.record();
        match (r.state.status, pause) {
            (Status::Running, true) | (Status::Paused, false) => {}
            (Status::Paused, true) => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    r.id
                )))
            }
            (Status::Running, false) => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not paused",
                    r.id
                )))
            }
            _ => return Err(not_running(c)),
        }
        let client = ShimClient::connect(&c.shim_dir())
            .map_err(|e| ContainerError::Runtime(e.to_string()))?;
        if pause {
            client.pause()
        } else {
            client.resume()
        }
        .map_err(|e| {
            ContainerError::Runtime(format!(
                "{} container {}: {e}",
                if pause { "pausing" } else { "unpausing" },
                r.id
            ))
        })?;
        c.update(|r| {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            }
        })?;
        self.events.container(
            &r,
            if pause {
                crate::events::ContainerAction::Pause
            } else {
                crate::events::ContainerAction::Unpause
            },
        );
        Ok(())
    }

    fn container_pids(&self, c: &Container) -> Vec<u32> {
        let dir = cgroup_dir(&c.id, "pids");
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `top`: the host's `ps` output restricted to the container's processes.
    pub(crate) fn container_top(
        &self,
        c: &Container,
        ps_args: &str,
    ) -> Result<Value, ContainerError> {
        if !c.record().state.status.is_running() {
            return Err(not_running(c));
        }
        let pids: BTreeSet<u32> = self.container_pids(c).into_iter().collect();
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| ContainerError::Runtime(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ContainerError::InvalidArgument(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
        let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
            ContainerError::InvalidArgument("Couldn't find PID field in ps output".into())
        })?;
        let mut procs = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !pids.contains(&pid) {
                continue;
            }
            // The last column (the command) may contain spaces.
            let n = titles.len();
            let mut row: Vec<String> = fields
                .iter()
                .take(n.saturating_sub(1))
                .map(|s| s.to_string())
                .collect();
            row.push(
                fields
                    .iter()
                    .skip(n.saturating_sub(1))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            procs.push(row);
        }
        Ok(json!({ "Titles": titles, "Processes": procs }))
    }

    /// `diff`: what the writable layer changed: Kind 0 modified, 1 added, 2 deleted.
    pub(crate) fn container_changes(&self, c: &Container) -> Result<Value, ContainerError> {
        let r = c.record();
        let image: berth_core::Digest = r
            .image_id
            .parse()
            .map_err(|_| ContainerError::Runtime("bad image id".into()))?;
        let lowers = self
            .images
            .store
            .layer_dirs(&image)
            .map_err(|e| ContainerError::Runtime(e.to_string()))?;
        let upper = c.upper_dir();
        let mut out: Vec<(String, u8)> = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(upper.join(&rel)) else {
                continue;
            };
            for ent in rd.flatten() {
                let rel_path = rel.join(ent.file_name());
                let Ok(ft) = ent.file_type() else { continue };
                let is_whiteout = ft.is_char_device()
                    && std::fs::symlink_metadata(ent.path())
                        .map(|m| {
                            use std::os::unix::fs::MetadataExt;
                            m.rdev() == 0
                        })
                        .unwrap_or(false);
                let in_lower = lowers
                    .iter()
                    .any(|l| std::fs::symlink_metadata(l.join(&rel_path)).is_ok());
                let kind = if is_whiteout {
                    2
                } else if in_lower {
                    0
                } else {
                    1
                };
                out.push((format!("/{}", rel_path.display()), kind));
                if ft.is_dir() {
                    stack.push(rel_path);
                }
            }
        }
        out.sort();
        Ok(Value::Array(
            out.into_iter()
                .map(|(p, k)| json!({ "Path": p, "Kind": k }))
                .collect(),
        ))
    }

    /// `commit`: the writable layer becomes a new image on top of the container's.
    pub(crate) fn container_commit(
        &self,
        c: &Arc<Container>,
        opts: CommitRequest,
    ) -> Result<String, ContainerError> {
        let r = c.record();
        let parent: berth_core::Digest = r
            .image_id
            .parse()
            .map_err(|_| ContainerError::Runtime("bad image id".into()))?;
        let mut config = self
            .images
            .store
            .config(&parent)
            .map_err(|e| ContainerError::Runtime(e.to_string()))?
            .config
            .unwrap_or_default();
        // The container's own settings become the image's defaults.
        config.env = r.config.env.clone();
        config.cmd = r.config.cmd.clone();
        config.entrypoint = r.config.entrypoint.clone();
        config.user = Some(r.config.user.clone()).filter(|u| !u.is_empty());
        config.working_dir = Some(r.config.working_dir.clone()).filter(|w| !w.is_empty());
        config.labels = r.config.labels.clone().filter(|l| !l.is_empty());
        config.exposed_ports = r.config.exposed_ports.clone();
        config.volumes = r.config.volumes.clone();
        config.stop_signal = r.config.stop_signal.clone();
        berth_image::changes::apply_changes(&mut config, &opts.changes)
            .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?;
        let tag = match &opts.repo {
            Some(repo) if !repo.is_empty() => Some(
                berth_core::Reference::from_repo_tag(repo, opts.tag.as_deref())
                    .map_err(|e| ContainerError::InvalidArgument(e.to_string()))?,
            ),
            _ => None,
        };
        let paused = opts.pause
            && r.state.status == Status::Running
            && self.container_pause(c, true).is_ok();
        let upper = c.upper_dir();
        let (reader, writer) = std::io::pipe().map_err(super::io("creating a pipe"))?;
        let producer = std::thread::spawn(move || {
            berth_snapshot::write_layer_from_dir(&upper, writer).map(|_| ())
        });
        let created_by = std::iter::once(r.path.clone())
            .chain(r.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let result = self.images.store.commit_layer(
            &parent,
            Box::new(reader),
            berth_image::CommitOptions {
                config,
                created_by,
                comment: opts.comment.clone(),
                author: opts.author.clone(),
                tag: tag.clone(),
            },
        );
        let produced = producer.join().unwrap_or_else(|_| {
            Err(berth_snapshot::LayerError::Invalid {
                path: upper_dir_display(c),
                reason: "layer writer panicked".into(),
            })
        });
        if paused {
            let _ = self.container_pause(c, false);
        }
        produced.map_err(|e| {
            ContainerError::Runtime(format!("reading the container's changes: {e}"))
        })?;
        let id = result.map_err(|e| ContainerError::Runtime(e.to_string()))?;
        self.events.container(
            &r,
            crate::events::ContainerAction::Commit {
                comment: opts.comment.unwrap_or_default(),
            },
        );
        Ok(id.to_string())
    }

    /// `rename`: a new name, unique among the engine's containers.
    pub(crate) fn container_rename(
        &self,
        c: &Arc<Container>,
        new_name: &str,
    ) -> Result<(), ContainerError> {
        let old_name = self.containers.rename(c, new_name)?;
        self.events.container(
            &c.record(),
            crate::events::ContainerAction::Rename { old_name },
        );
        Ok(())
    }

    /// One stats sample in the Engine API's shape.
    pub(crate) fn container_stats_sample(&self, c: &Container) -> Value {
        let r = c.record();
        let running = r.state.status.is_running();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let system = system_cpu_nanos();
        let (cpu_total, percpu, mem_usage, mem_limit, mem_stats, pids, pids_limit) = if !running {
            (0, vec![], 0, 0, json!({}), 0, 0)
        } else if cgroup_v2() {
            let d = cgroup_dir(&c.id, "");
            let stat = std::fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
            let usage = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1000;
            let limit = std::fs::read_to_string(d.join("memory.max"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(mem_total);
            let pl = std::fs::read_to_string(d.join("pids.max"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            (
                usage,
                vec![],
                read_u64(&d.join("memory.current")).unwrap_or(0),
                limit,
                stat_map(&d.join("memory.stat")),
                read_u64(&d.join("pids.current")).unwrap_or(0),
                pl,
            )
        } else {
            let cpu = cgroup_dir(&c.id, "cpuacct");
            let mem = cgroup_dir(&c.id, "memory");
            let pids = cgroup_dir(&c.id, "pids");
            let percpu: Vec<u64> = std::fs::read_to_string(cpu.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let limit = read_u64(&mem.join("memory.limit_in_bytes"))
                .map(|l| l.min(mem_total()))
                .unwrap_or_else(mem_total);
            let pl = std::fs::read_to_string(pids.join("pids.max"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            (
                read_u64(&cpu.join("cpuacct.usage")).unwrap_or(0),
                percpu,
                read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0),
                limit,
                stat_map(&mem.join("memory.stat")),
                read_u64(&pids.join("pids.current")).unwrap_or(0),
                pl,
            )
        };
        json!({
            "read": now,
            "preread": "0001-01-01T00:00:00Z",
            "name": format!("/{}", r.name),
            "id": r.id,
            "num_procs": 0,
            "pids_stats": { "current": pids, "limit": pids_limit },
            "blkio_stats": { "io_service_bytes_recursive": null, "io_serviced_recursive": null },
            "storage_stats": {},
            "cpu_stats": {
                "cpu_usage": { "total_usage": cpu_total, "percpu_usage": percpu, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
                "system_cpu_usage": system,
                "online_cpus": ncpu,
                "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
            },
            "precpu_stats": { "cpu_usage": { "total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0 }, "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 } },
            "memory_stats": if running { json!({ "usage": mem_usage, "limit": mem_limit, "stats": mem_stats }) } else { json!({}) },
            "networks": { "eth0": { "rx_bytes": 0, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0, "tx_bytes": 0, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0 } },
        })
    }

    /// `update`: new resource limits, written to the live cgroup too.
    pub(crate) fn container_update(
        &self,
        c: &Container,
        u: &Value,
    ) -> Result<Vec<String>, ContainerError> {
        super::host_config::check_update(u)?;
        let get = |k: &str| u.get(k).and_then(|v| v.as_i64()).filter(|v| *v != 0);
        let r = c.record();
        let mut h = r.host_config.clone();
        if let Some(m) = get("Memory") {
            if m < 6 * 1024 * 1024 {
                return Err(ContainerError::InvalidArgument(
                    "Minimum memory limit allowed is 6MB".into(),
                ));
            }
            h.memory = m;
        }
        if let Some(s) = get("MemorySwap") {
            h.memory_swap = s;
        }
        if let Some(n) = get("NanoCpus") {
            h.nano_cpus = n;
        }
        if let Some(s) = get("CpuShares") {
            h.cpu_shares = s;
        }
        if let Some(p) = get("PidsLimit") {
            h.pids_limit = Some(p);
        }
        if let Some(rp) = u.get("RestartPolicy").filter(|v| !v.is_null()) {
            if let Ok(p) =
                serde_json::from_value::<berth_api::container_types::RestartPolicy>(rp.clone())
            {
                if !p.name.is_empty() {
                    if h.auto_remove && p.name != "no" {
                        return Err(ContainerError::InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container".into()));
                    }
                    h.restart_policy = p;
                }
            }
        }
        if r.state.status.is_running() {
            let write = |ctrl: &str, file: &str, v: String| {
                let p = cgroup_dir(&c.id, ctrl).join(file);
                std::fs::write(&p, v)
                    .map_err(|e| ContainerError::Runtime(format!("updating {}: {e}", p.display())))
            };
            if cgroup_v2() {
                if h.memory > 0 {
                    write("", "memory.max", h.memory.to_string())?;
                }
                if h.pids_limit.is_some_and(|p| p > 0) {
                    write("", "pids.max", h.pids_limit.unwrap_or(0).to_string())?;
                }
                if h.nano_cpus > 0 {
                    write("", "cpu.max", format!("{} 100000", h.nano_cpus / 10_000))?;
                }
            } else {
                if h.memory > 0 {
                    // The swap limit must stay >= memory: raise it first when growing.
                    let _ = write(
                        "memory",
                        "memory.memsw.limit_in_bytes",
                        if h.memory_swap > 0 { h.memory_swap } else { -1 }.to_string(),
                    );
                    write("memory", "memory.limit_in_bytes", h.memory.to_string())?;
                }
                if h.pids_limit.is_some_and(|p| p > 0) {
                    write("pids", "pids.max", h.pids_limit.unwrap_or(0).to_string())?;
                }
                if h.nano_cpus > 0 {
                    write("cpu", "cpu.cfs_period_us", "100000".into())?;
                    write(
                        "cpu",
                        "cpu.cfs_quota_us",
                        (h.nano_cpus / 10_000).to_string(),
                    )?;
                }
                if h.cpu_shares > 0 {
                    write("cpu", "cpu.shares", h.cpu_shares.to_string())?;
                }
            }
        }
        c.update(|rec| rec.host_config = h)?;
        self.events
            .container(&r, crate::events::ContainerAction::Update);
        Ok(vec![])
    }
}

fn upper_dir_display(c: &Container) -> String {
    c.upper_dir().display().to_string()
}

pub(crate) struct CommitRequest {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    pub pause: bool,
}

fn stat_map(p: &Path) -> Value {
    let mut m = serde_json::Map::new();
    for l in std::fs::read_to_string(p).unwrap_or_default().lines() {
        if let Some((k, v)) = l.split_once(' ') {
            if let Ok(n) = v.trim().parse::<u64>() {
                m.insert(k.to_string(), json!(n));
            }
        }
    }
    Value::Object(m)
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Host CPU time in nanoseconds, as Docker computes `system_cpu_usage`.
fn system_cpu_nanos() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}
