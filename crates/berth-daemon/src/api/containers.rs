//! The container role of the API backend: wire-type conversion and list
//! filters over the container manager.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_api::backend::*;
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::types::GraphDriver;
use berth_api::ApiError;
use serde_json::json;

use super::Api;
use crate::containers::{
    logs, Container, ContainerError, RemoveOptions, Status, StopOptions, WaitCondition,
};

fn e(err: ContainerError) -> ApiError {
    ApiError::from_err(err)
}

fn secs_since(rfc: &Option<String>) -> i64 {
    rfc.as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (chrono::Utc::now().timestamp() - t.timestamp()).max(0))
        .unwrap_or(0)
}

fn status_text(r: &crate::containers::ContainerRecord) -> String {
    use berth_core::units::human_duration as h;
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = format!("Up {}", h(secs_since(&r.state.started_at)));
            match r.state.health.as_ref().and_then(|x| x["Status"].as_str()) {
                Some("starting") => format!("{up} (health: starting)"),
                Some(s) => format!("{up} ({s})"),
                None => up,
            }
        }
        Status::Paused => format!("Up {} (Paused)", h(secs_since(&r.state.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            h(secs_since(&r.state.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            h(secs_since(&r.state.finished_at))
        ),
        Status::Dead => "Dead".into(),
    }
}

fn unix(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn zero_time(t: &Option<String>) -> String {
    t.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

impl Api {
    fn container(&self, name: &str) -> ApiResult<std::sync::Arc<Container>> {
        self.containers.store().get(name).map_err(e)
    }

    fn summary(&self, c: &Container, size: bool) -> ContainerSummary {
        let r = c.record();
        let command = std::iter::once(r.path.clone())
            .chain(r.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let network = if r.host_config.network_mode.is_empty() {
            "default".to_string()
        } else {
            r.host_config.network_mode.clone()
        };
        ContainerSummary {
            id: r.id.clone(),
            names: vec![format!("/{}", r.name)],
            image: r.image.clone(),
            image_id: r.image_id.clone(),
            command,
            created: unix(&r.created),
            ports: super::networks::ports_summary(&r),
            labels: r.config.labels.clone().unwrap_or_default(),
            state: r.state.status.as_str().into(),
            status: status_text(&r),
            host_config: json!({ "NetworkMode": network }),
            network_settings: self.network_summary(&r),
            mounts: mounts_json(&r),
            size_rw: size.then(|| dir_size(&c.upper_dir()) as i64),
            size_root_fs: None,
        }
    }
}

fn mounts_json(r: &crate::containers::ContainerRecord) -> Vec<serde_json::Value> {
    r.mounts
        .iter()
        .map(|m| {
            let mut v = json!({ "Type": m.kind, "Source": m.source, "Destination": m.destination, "Mode": if m.rw { "" } else { "ro" }, "RW": m.rw, "Propagation": if m.kind == "bind" { "rprivate" } else { "" } });
            if m.kind == "volume" {
                v["Name"] = json!(m.name);
                v["Driver"] = json!("local");
                v["Mode"] = json!(if m.rw { "z" } else { "ro" });
            }
            v
        })
        .collect()
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let Ok(m) = ent.metadata() else { continue };
            if m.is_dir() {
                stack.push(ent.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

fn matches_filters(
    f: &Filters,
    r: &crate::containers::ContainerRecord,
    created_bounds: (Option<i64>, Option<i64>),
) -> bool {
    let any =
        |k: &str, p: &dyn Fn(&str) -> bool| f.get(k).is_empty() || f.get(k).iter().any(|v| p(v));
    let labels = r.config.labels.clone().unwrap_or_default();
    let created = unix(&r.created);
    any("status", &|v| v == r.state.status.as_str())
        && any("name", &|v| r.name.contains(v.trim_start_matches('/')))
        && any("id", &|v| r.id.starts_with(v))
        && any("label", &|v| match v.split_once('=') {
            Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
            None => labels.contains_key(v),
        })
        && any("ancestor", &|v| {
            r.image == v
                || r.image_id == v
                || r.image_id.trim_start_matches("sha256:").starts_with(v)
                || r.image.split(':').next() == Some(v)
        })
        && any("exited", &|v| {
            r.state.status == Status::Exited && v.parse::<i64>().ok() == Some(r.state.exit_code)
        })
        && created_bounds.0.is_none_or(|b| created < b)
        && created_bounds.1.is_none_or(|s| created > s)
}

impl ContainerBackend for Api {
    fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> ApiResult<ContainerCreateResponse> {
        let created = self.containers.create(name, body).map_err(e)?;
        Ok(ContainerCreateResponse {
            id: created.id,
            warnings: created.warnings,
        })
    }

    fn list_containers(&self, opts: ListContainersOptions) -> ApiResult<Vec<ContainerSummary>> {
        let before = match opts.filters.get("before").first() {
            Some(n) => Some(unix(&self.container(n)?.record().created)),
            None => None,
        };
        let since = match opts.filters.get("since").first() {
            Some(n) => Some(unix(&self.container(n)?.record().created)),
            None => None,
        };
        let mut all: Vec<_> = self.containers.store().all();
        // One record copy per container, not one per comparison.
        all.sort_by_cached_key(|c| std::cmp::Reverse(c.record().created));
        let mut out = Vec::new();
        for c in all {
            let r = c.record();
            let show_all = opts.all
                || opts.limit.is_some()
                || !opts.filters.get("status").is_empty()
                || !opts.filters.get("exited").is_empty();
            if !show_all && !r.state.status.is_running() {
                continue;
            }
            if !matches_filters(&opts.filters, &r, (before, since)) {
                continue;
            }
            out.push(self.summary(&c, opts.size));
            if opts.limit.is_some_and(|l| out.len() as i64 >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn inspect_container(&self, name: &str, _size: bool) -> ApiResult<ContainerInspect> {
        let c = self.container(name)?;
        let r = c.record();
        let lower = self
            .images
            .store
            .layer_dirs(
                &r.image_id
                    .parse()
                    .map_err(|_| ApiError::internal("bad image id in record"))?,
            )
            .unwrap_or_default();
        let data = BTreeMap::from([
            ("LowerDir".to_string(), super::lower_dir(&lower)),
            ("UpperDir".to_string(), c.upper_dir().display().to_string()),
            ("WorkDir".to_string(), c.work_dir().display().to_string()),
            ("MergedDir".to_string(), c.rootfs().display().to_string()),
        ]);
        let network = if r.host_config.network_mode.is_empty() {
            "default".to_string()
        } else {
            r.host_config.network_mode.clone()
        };
        let mut host_config = r.host_config.clone();
        host_config.network_mode = network;
        Ok(ContainerInspect {
            id: r.id.clone(),
            created: r.created.clone(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: ContainerState {
                status: r.state.status.as_str().into(),
                running: r.state.status.is_running(),
                paused: r.state.status == Status::Paused,
                restarting: r.state.status == Status::Restarting,
                oom_killed: r.state.oom_killed,
                dead: r.state.status == Status::Dead,
                pid: if r.state.status.is_running() {
                    r.state.pid
                } else {
                    0
                },
                exit_code: r.state.exit_code,
                error: r.state.error.clone(),
                started_at: zero_time(&r.state.started_at),
                finished_at: zero_time(&r.state.finished_at),
                health: r.state.health.clone(),
            },
            image: r.image_id.clone(),
            resolv_conf_path: c.dir.join("resolv.conf").display().to_string(),
            hostname_path: c.dir.join("hostname").display().to_string(),
            hosts_path: c.dir.join("hosts").display().to_string(),
            log_path: c.log_path().display().to_string(),
            name: format!("/{}", r.name),
            restart_count: r.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: Some(self.containers.store().execs.of_container(&r.id))
                .filter(|ids| !ids.is_empty()),
            host_config,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            mounts: mounts_json(&r),
            config: r.config.clone(),
            network_settings: self.network_settings(&r, true),
        })
    }

    fn start_container(&self, name: &str) -> ApiResult<bool> {
        self.containers.start(name).map_err(e)
    }

    fn stop_container(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> ApiResult<bool> {
        let opts = StopOptions {
            signal: signal.map(str::to_string),
            // A negative timeout kills at once.
            timeout: timeout.map(|t| Duration::from_secs(t.max(0) as u64)),
        };
        self.containers.stop(name, opts).map_err(e)
    }

    fn restart_container(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers
            .container_stop(&c, signal, timeout, false)
            .map_err(e)?;
        self.containers.container_start(&c).map_err(e)?;
        Ok(())
    }

    fn kill_container(&self, name: &str, signal: Option<&str>) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers
            .container_kill(&c, signal.unwrap_or("SIGKILL"))
            .map_err(e)
    }

    fn remove_container(&self, name: &str, force: bool, volumes: bool) -> ApiResult<()> {
        self.containers
            .remove(name, RemoveOptions { force, volumes })
            .map_err(e)
    }

    fn wait_container(
        &self,
        name: &str,
        condition: &str,
    ) -> ApiResult<BoxFut<ApiResult<ContainerWaitResponse>>> {
        let condition = match condition {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid condition: {other:?}: want not-running, next-exit or removed"
                )))
            }
        };
        let exit = self.containers.wait(name, condition).map_err(e)?;
        Ok(Box::pin(async move {
            Ok(ContainerWaitResponse {
                status_code: exit.await,
                error: None,
            })
        }))
    }

    fn container_logs(&self, name: &str, opts: LogsOptions) -> ApiResult<LogStream> {
        let c = self.container(name)?;
        let r = c.record();
        let tty = r.config.tty;
        let filter = logs::Filter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since: opts.since,
            until: opts.until,
            timestamps: opts.timestamps,
            tail: opts.tail,
            tty,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let path = c.log_path();
        let status = c.subscribe();
        std::thread::spawn(move || logs::stream(&path, filter, opts.follow, status, tx));
        Ok(LogStream { tty, frames: rx })
    }

    fn attach_container(
        &self,
        name: &str,
        opts: AttachOptions,
    ) -> ApiResult<(bool, BoxFut<ApiResult<Attached>>)> {
        let c = self.container(name)?;
        let tty = c.record().config.tty;
        Ok((tty, self.containers.container_attach(&c, opts)))
    }

    fn resize_container(&self, name: &str, height: u16, width: u16) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers
            .container_resize(&c, height, width)
            .map_err(e)
    }

    fn rename_container(&self, name: &str, new_name: &str) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers.container_rename(&c, new_name).map_err(e)
    }

    fn pause_container(&self, name: &str, pause: bool) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers.container_pause(&c, pause).map_err(e)
    }

    fn top_container(&self, name: &str, ps_args: &str) -> ApiResult<serde_json::Value> {
        let c = self.container(name)?;
        self.containers.container_top(&c, ps_args).map_err(e)
    }

    fn container_changes(&self, name: &str) -> ApiResult<serde_json::Value> {
        let c = self.container(name)?;
        self.containers.container_changes(&c).map_err(e)
    }

    fn container_stats(&self, name: &str) -> ApiResult<serde_json::Value> {
        let c = self.container(name)?;
        Ok(self.containers.container_stats_sample(&c))
    }

    fn update_container(&self, name: &str, update: serde_json::Value) -> ApiResult<Vec<String>> {
        let c = self.container(name)?;
        self.containers.container_update(&c, &update).map_err(e)
    }

    fn commit_container(&self, req: CommitContainer) -> ApiResult<String> {
        let c = self.container(&req.container)?;
        let r = crate::containers::ops::CommitRequest {
            repo: req.repo,
            tag: req.tag,
            comment: req.comment,
            author: req.author,
            changes: req.changes,
            pause: req.pause,
        };
        self.containers.container_commit(&c, r).map_err(e)
    }

    fn container_path_stat(&self, name: &str, path: &str) -> ApiResult<serde_json::Value> {
        let c = self.container(name)?;
        self.containers.container_path_stat(&c, path).map_err(e)
    }

    fn container_archive(&self, name: &str, path: &str) -> ApiResult<(serde_json::Value, SaveJob)> {
        let c = self.container(name)?;
        let stat = self.containers.container_path_stat(&c, path).map_err(e)?;
        let containers = self.containers.clone();
        let path = path.to_string();
        Ok((
            stat,
            Box::new(move |out: &mut dyn std::io::Write| {
                containers.container_archive(&c, &path, out).map_err(e)
            }),
        ))
    }

    fn container_extract(
        &self,
        name: &str,
        path: &str,
        body: Box<dyn std::io::Read + Send>,
    ) -> ApiResult<()> {
        let c = self.container(name)?;
        self.containers.container_extract(&c, path, body).map_err(e)
    }

    fn prune_containers(&self, filters: &Filters) -> ApiResult<serde_json::Value> {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for c in self.containers.store().all() {
            let r = c.record();
            if r.state.status.is_running()
                || !matches_filters(
                    &Filters(
                        filters
                            .0
                            .iter()
                            .filter(|(k, _)| k.starts_with("label"))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    &r,
                    (None, None),
                )
            {
                continue;
            }
            let size = dir_size(&c.upper_dir());
            if self.containers.container_remove(&c, false).is_ok() {
                deleted.push(r.id.clone());
                reclaimed += size;
            }
        }
        Ok(
            json!({ "ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed }),
        )
    }
}
