//! The system role of the API backend: version, info, disk usage, events.

use std::collections::BTreeMap;

use berth_api::backend::{EventSubscription, SystemBackend};
use berth_api::error::ApiResult;
use berth_api::types::*;
use berth_api::{ApiError, API_VERSION, MIN_API_VERSION};
use serde_json::json;

use super::Api;

fn uname() -> (String, String) {
    nix::sys::utsname::uname()
        .map(|u| {
            (
                u.release().to_string_lossy().into_owned(),
                u.nodename().to_string_lossy().into_owned(),
            )
        })
        .unwrap_or_default()
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if crate::containers::cgroup_v2() {
        "2"
    } else {
        "1"
    }
}

fn arch() -> &'static str {
    std::env::consts::ARCH
}

impl SystemBackend for Api {
    fn version(&self) -> Version {
        let (kernel, _) = uname();
        let version = env!("CARGO_PKG_VERSION").to_string();
        let goarch = berth_image::config::host_architecture().to_string();
        let details = BTreeMap::from([
            ("ApiVersion".to_string(), API_VERSION.to_string()),
            ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
            ("Arch".to_string(), goarch.clone()),
            ("Os".to_string(), "linux".to_string()),
            ("KernelVersion".to_string(), kernel.clone()),
            (
                "GitCommit".to_string(),
                option_env!("BERTH_GIT_COMMIT").unwrap_or("").to_string(),
            ),
            ("Experimental".to_string(), "false".to_string()),
        ]);
        Version {
            platform: Platform {
                name: format!("berth {version}"),
            },
            components: vec![Component {
                name: "Engine".into(),
                version: version.clone(),
                details,
            }],
            version,
            api_version: API_VERSION.into(),
            min_api_version: MIN_API_VERSION.into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").into(),
            go_version: "rust".into(),
            os: "linux".into(),
            arch: goarch,
            kernel_version: kernel,
            build_time: String::new(),
        }
    }

    fn info(&self) -> ApiResult<Info> {
        let (kernel, hostname) = uname();
        let (os, os_version) = os_release();
        let images = self.images.store.list().map_err(ApiError::from_err)?.len() as i64;
        let cgv = cgroup_version();
        let states: Vec<_> = self
            .containers
            .store()
            .all()
            .iter()
            .map(|c| c.record().state.status)
            .collect();
        let running = states
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    crate::containers::Status::Running | crate::containers::Status::Restarting
                )
            })
            .count() as i64;
        let paused = states
            .iter()
            .filter(|s| matches!(s, crate::containers::Status::Paused))
            .count() as i64;
        let nfd = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as i64)
            .unwrap_or(0);
        let mut insecure = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
        insecure.extend(self.config.insecure_registries.iter().cloned());
        Ok(Info {
            id: self.engine_id.clone(),
            containers: states.len() as i64,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: states.len() as i64 - running - paused,
            images,
            driver: "overlay2".into(),
            driver_status: vec![
                ["Backing Filesystem".into(), "extfs".into()],
                ["Supports d_type".into(), "true".into()],
            ],
            plugins: BTreeMap::from([
                ("Volume".to_string(), vec!["local".to_string()]),
                (
                    "Network".to_string(),
                    vec!["bridge".to_string(), "host".to_string(), "none".to_string()],
                ),
                ("Log".to_string(), vec!["json-file".to_string()]),
            ]),
            memory_limit: true,
            swap_limit: true,
            cpu_cfs_period: true,
            cpu_cfs_quota: true,
            cpu_shares: true,
            cpu_set: true,
            pids_limit: true,
            ipv4_forwarding: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .map(|s| s.trim() == "1")
                .unwrap_or(false),
            debug: self.config.log_level == "debug",
            nfd,
            n_goroutines: 0,
            system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgv.into(),
            n_events_listener: self.events.listeners() as i64,
            kernel_version: kernel,
            operating_system: os,
            os_version,
            os_type: "linux".into(),
            architecture: arch().into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            docker_root_dir: self.config.data_root.display().to_string(),
            name: hostname,
            labels: vec![],
            experimental_build: false,
            server_version: env!("CARGO_PKG_VERSION").into(),
            runtimes: BTreeMap::from([("berth".to_string(), json!({"path": "berth"}))]),
            default_runtime: "berth".into(),
            swarm: serde_json::to_value(berth_api::backend::SwarmBackend::swarm_info(self))
                .unwrap_or_default(),
            live_restore_enabled: self.config.live_restore,
            isolation: String::new(),
            init_binary: String::new(),
            containerd_commit: json!({"ID": ""}),
            runc_commit: json!({"ID": ""}),
            init_commit: json!({"ID": ""}),
            security_options: vec!["name=seccomp,profile=builtin".into()],
            registry_config: json!({
                "InsecureRegistryCIDRs": insecure,
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": self.config.registry_mirrors, "Secure": true, "Official": true}},
                "Mirrors": self.config.registry_mirrors,
            }),
            warnings: vec![],
        })
    }

    fn disk_usage(&self) -> ApiResult<DiskUsage> {
        let images = self.list_images_for_df()?;
        Ok(DiskUsage {
            layers_size: self.images.store.disk_usage() as i64,
            images,
            containers: vec![],
            volumes: vec![],
            build_cache: vec![],
        })
    }

    fn subscribe_events(&self, since: Option<i64>) -> EventSubscription {
        super::events::subscribe(&self.events, since)
    }
}

impl Api {
    fn list_images_for_df(&self) -> ApiResult<Vec<ImageSummary>> {
        use berth_api::backend::{ImageBackend, ImageListOptions};
        let mut images = self.list_images(ImageListOptions {
            all: true,
            ..Default::default()
        })?;
        for i in &mut images {
            i.shared_size = 0;
            i.containers = 0;
        }
        Ok(images)
    }
}
