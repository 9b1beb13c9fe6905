//! The Swarm-mode endpoints over the swarm service: list filters, the
//! `ServiceStatus` counts, `insertDefaults`, and task objects as the API
//! shows them.

use berth_api::backend::{ServiceUpdateFlags, SwarmBackend, SwarmUpdateFlags};
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::ApiError;
use berth_swarm::objects::{TaskRecord, TaskState};
use berth_wire::swarm::{
    Config, ConfigSpec, Node, NodeSpec, RestartPolicy, Secret, SecretSpec, Service,
    ServiceCreateResponse, ServiceSpec, ServiceStatus, ServiceUpdateResponse, Swarm, SwarmInfo,
    SwarmInitRequest, SwarmSpec, SwarmUnlockRequest, Task, UnlockKeyResponse, UpdateConfig,
};

use super::Api;
use crate::swarm::SwarmError;

fn e(err: SwarmError) -> ApiError {
    ApiError::from_err(err)
}

/// `label=key` or `label=key=value` against a label map.
fn labels_match(
    wanted: &[String],
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    wanted.iter().all(|w| {
        let labels = labels.cloned().unwrap_or_default();
        match w.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(w.as_str()),
        }
    })
}

fn any_or_empty(values: Option<&Vec<String>>, f: impl Fn(&str) -> bool) -> bool {
    match values {
        None => true,
        Some(v) if v.is_empty() => true,
        Some(v) => v.iter().any(|x| f(x)),
    }
}

fn mode_name(spec: &ServiceSpec) -> &'static str {
    let m = spec.mode.clone().unwrap_or_default();
    if m.global.is_some() {
        "global"
    } else if m.replicated_job.is_some() {
        "replicated-job"
    } else if m.global_job.is_some() {
        "global-job"
    } else {
        "replicated"
    }
}

/// What `insertDefaults=true` adds to a spec: swarmkit's defaults for
/// every part the client left out.
fn with_defaults(mut s: ServiceSpec) -> ServiceSpec {
    let t = &mut s.task_template;
    let c = t.container_spec.get_or_insert_with(Default::default);
    c.stop_grace_period.get_or_insert(10_000_000_000);
    c.dns_config.get_or_insert_with(Default::default);
    c.isolation.get_or_insert_with(|| "default".into());
    t.resources.get_or_insert_with(Default::default);
    let r = t.restart_policy.get_or_insert_with(RestartPolicy::default);
    r.condition.get_or_insert_with(|| "any".into());
    r.delay.get_or_insert(5_000_000_000);
    r.max_attempts.get_or_insert(0);
    t.placement.get_or_insert_with(Default::default);
    t.force_update.get_or_insert(0);
    t.runtime.get_or_insert_with(|| "container".into());
    let m = s.mode.get_or_insert_with(Default::default);
    if m.replicated.is_none()
        && m.global.is_none()
        && m.replicated_job.is_none()
        && m.global_job.is_none()
    {
        m.replicated = Some(berth_wire::swarm::ReplicatedService { replicas: Some(1) });
    }
    for u in [&mut s.update_config, &mut s.rollback_config] {
        let u = u.get_or_insert_with(UpdateConfig::default);
        u.parallelism.get_or_insert(1);
        u.failure_action.get_or_insert_with(|| "pause".into());
        u.monitor.get_or_insert(5_000_000_000);
        u.max_failure_ratio.get_or_insert(0.0);
        u.order.get_or_insert_with(|| "stop-first".into());
    }
    s.endpoint_spec
        .get_or_insert_with(Default::default)
        .mode
        .get_or_insert_with(|| "vip".into());
    s
}

impl Api {
    fn wire_task(&self, t: TaskRecord) -> Task {
        let mut task = t.task;
        task.labels = task.labels.clone();
        task
    }

    fn service_status(&self, svc: &Service, tasks: &[TaskRecord]) -> ServiceStatus {
        let own: Vec<&TaskRecord> = tasks
            .iter()
            .filter(|t| t.task.service_id == svc.id)
            .collect();
        let running = own
            .iter()
            .filter(|t| t.state() == TaskState::Running && t.desired() == TaskState::Running)
            .count() as u64;
        let completed = own
            .iter()
            .filter(|t| t.state() == TaskState::Complete)
            .count() as u64;
        let m = svc.spec.mode.clone().unwrap_or_default();
        let desired = if let Some(r) = m.replicated {
            r.replicas.unwrap_or(1)
        } else if let Some(j) = m.replicated_job {
            j.max_concurrent
                .unwrap_or(1)
                .min(j.total_completions.unwrap_or(1).saturating_sub(completed))
        } else {
            // Global: one per (this) node, unless it cannot take tasks.
            let node_ok = self
                .swarm
                .nodes()
                .ok()
                .and_then(|n| n.into_iter().next())
                .map(|n| n.spec.availability.as_deref() != Some("drain"))
                .unwrap_or(false);
            let done = m.global_job.is_some() && completed > 0;
            u64::from(node_ok && !done)
        };
        ServiceStatus {
            running_tasks: running,
            desired_tasks: desired,
            completed_tasks: completed,
        }
    }
}

impl SwarmBackend for Api {
    fn swarm_info(&self) -> SwarmInfo {
        self.swarm.info()
    }

    fn swarm_inspect(&self) -> ApiResult<Swarm> {
        self.swarm.inspect().map_err(e)
    }

    fn swarm_init(&self, req: SwarmInitRequest) -> ApiResult<String> {
        self.swarm.init(req).map_err(e)
    }

    fn swarm_join(&self, _body: serde_json::Value) -> ApiResult<()> {
        self.swarm.join().map_err(e)
    }

    fn swarm_leave(&self, force: bool) -> ApiResult<()> {
        self.swarm.leave(force).map_err(e)
    }

    fn swarm_update(&self, spec: SwarmSpec, flags: SwarmUpdateFlags) -> ApiResult<()> {
        self.swarm.update(spec, flags).map_err(e)
    }

    fn swarm_unlock_key(&self) -> ApiResult<UnlockKeyResponse> {
        Ok(UnlockKeyResponse {
            unlock_key: self.swarm.unlock_key().map_err(e)?,
        })
    }

    fn swarm_unlock(&self, _req: SwarmUnlockRequest) -> ApiResult<()> {
        self.swarm.unlock().map_err(e)
    }

    fn list_nodes(&self, f: &Filters) -> ApiResult<Vec<Node>> {
        let nodes = self.swarm.nodes().map_err(e)?;
        Ok(nodes
            .into_iter()
            .filter(|n| {
                let name = n
                    .spec
                    .name
                    .clone()
                    .unwrap_or_else(|| n.description.hostname.clone());
                any_or_empty(f.0.get("id"), |v| n.id.starts_with(v))
                    && any_or_empty(f.0.get("name"), |v| name.starts_with(v))
                    && any_or_empty(f.0.get("role"), |v| {
                        n.spec.role.as_deref().unwrap_or("manager") == v
                    })
                    && any_or_empty(f.0.get("membership"), |v| v == "accepted")
                    && labels_match(
                        f.0.get("node.label").map(Vec::as_slice).unwrap_or_default(),
                        n.spec.labels.as_ref(),
                    )
                    && labels_match(
                        f.0.get("label").map(Vec::as_slice).unwrap_or_default(),
                        n.description.engine.labels.as_ref(),
                    )
            })
            .collect())
    }

    fn inspect_node(&self, id: &str) -> ApiResult<Node> {
        self.swarm.node(id).map_err(e)
    }

    fn update_node(&self, id: &str, version: u64, spec: NodeSpec) -> ApiResult<()> {
        self.swarm.update_node(id, version, spec).map_err(e)
    }

    fn remove_node(&self, id: &str, _force: bool) -> ApiResult<()> {
        self.swarm.remove_node(id).map_err(e)
    }

    fn list_services(&self, f: &Filters, status: bool) -> ApiResult<Vec<Service>> {
        let services = self.swarm.services().map_err(e)?;
        let tasks = if status {
            self.swarm.tasks().map_err(e)?
        } else {
            Vec::new()
        };
        if let Some(modes) = f.0.get("mode") {
            for m in modes {
                if m != "replicated" && m != "global" {
                    return Err(ApiError::bad_request(format!(
                        "Invalid filter: 'mode'='{m}'"
                    )));
                }
            }
        }
        let mut out: Vec<Service> = services
            .into_iter()
            .filter(|s| {
                let name = s.spec.name.clone().unwrap_or_default();
                any_or_empty(f.0.get("id"), |v| s.id.starts_with(v))
                    && any_or_empty(f.0.get("name"), |v| name.starts_with(v))
                    && any_or_empty(f.0.get("mode"), |v| mode_name(&s.spec) == v)
                    && labels_match(
                        f.0.get("label").map(Vec::as_slice).unwrap_or_default(),
                        s.spec.labels.as_ref(),
                    )
            })
            .collect();
        if status {
            for s in &mut out {
                s.service_status = Some(self.service_status(s, &tasks));
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    fn create_service(&self, spec: ServiceSpec) -> ApiResult<ServiceCreateResponse> {
        let id = self.swarm.create_service(spec).map_err(e)?;
        Ok(ServiceCreateResponse { id, warnings: None })
    }

    fn inspect_service(&self, id: &str, insert_defaults: bool) -> ApiResult<Service> {
        let mut s = self.swarm.service(id).map_err(e)?;
        if insert_defaults {
            s.spec = with_defaults(s.spec);
            s.previous_spec = s.previous_spec.map(with_defaults);
        }
        Ok(s)
    }

    fn update_service(
        &self,
        id: &str,
        spec: ServiceSpec,
        flags: ServiceUpdateFlags,
    ) -> ApiResult<ServiceUpdateResponse> {
        self.swarm.update_service(id, spec, &flags).map_err(e)?;
        Ok(ServiceUpdateResponse { warnings: None })
    }

    fn remove_service(&self, id: &str) -> ApiResult<()> {
        self.swarm.remove_service(id).map_err(e)
    }

    fn list_tasks(&self, f: &Filters) -> ApiResult<Vec<Task>> {
        let tasks = self.swarm.tasks().map_err(e)?;
        let services = self.swarm.services().map_err(e)?;
        // A service filter names services by ID, name or ID prefix.
        let wanted: Option<Vec<String>> = f.0.get("service").filter(|v| !v.is_empty()).map(|v| {
            v.iter()
                .filter_map(|k| self.swarm.service(k).ok().map(|s| s.id))
                .collect()
        });
        let name_of = |t: &TaskRecord| {
            services
                .iter()
                .find(|s| s.id == t.task.service_id)
                .and_then(|s| s.spec.name.clone())
                .map(|n| crate::swarm::task_name(&n, t))
                .unwrap_or_default()
        };
        for d in f.0.get("desired-state").into_iter().flatten() {
            if !["running", "shutdown", "accepted"].contains(&d.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter 'desired-state': {d}"
                )));
            }
        }
        let mut out: Vec<TaskRecord> = tasks
            .into_iter()
            .filter(|t| {
                wanted
                    .as_ref()
                    .map(|w| w.contains(&t.task.service_id))
                    .unwrap_or(true)
                    && any_or_empty(f.0.get("id"), |v| t.task.id.starts_with(v))
                    && any_or_empty(f.0.get("name"), |v| name_of(t).starts_with(v))
                    && any_or_empty(f.0.get("node"), |v| {
                        t.task.node_id == v
                            || self
                                .swarm
                                .node(v)
                                .map(|n| n.id == t.task.node_id)
                                .unwrap_or(false)
                    })
                    && any_or_empty(f.0.get("desired-state"), |v| match v {
                        // "accepted" is what swarmkit lists for tasks not yet
                        // told to stop, like "running".
                        "running" | "accepted" => t.desired() <= TaskState::Running,
                        _ => t.desired() > TaskState::Running,
                    })
                    && labels_match(
                        f.0.get("label").map(Vec::as_slice).unwrap_or_default(),
                        Some(&t.task.labels),
                    )
            })
            .collect();
        out.sort_by(|a, b| {
            (
                a.task.service_id.as_str(),
                a.slot(),
                a.task.created_at.as_str(),
            )
                .cmp(&(
                    b.task.service_id.as_str(),
                    b.slot(),
                    b.task.created_at.as_str(),
                ))
        });
        Ok(out.into_iter().map(|t| self.wire_task(t)).collect())
    }

    fn inspect_task(&self, id: &str) -> ApiResult<Task> {
        Ok(self.wire_task(self.swarm.task(id).map_err(e)?))
    }

    fn list_secrets(&self, f: &Filters) -> ApiResult<Vec<Secret>> {
        let secrets = self.swarm.secrets().map_err(e)?;
        Ok(secrets
            .into_iter()
            .filter(|s| blob_matches(f, &s.id, s.spec.name.as_deref(), s.spec.labels.as_ref()))
            .collect())
    }
    fn create_secret(&self, spec: SecretSpec) -> ApiResult<String> {
        self.swarm.create_secret(spec).map_err(e)
    }
    fn inspect_secret(&self, id: &str) -> ApiResult<Secret> {
        self.swarm.secret(id).map_err(e)
    }
    fn update_secret(&self, id: &str, version: u64, spec: SecretSpec) -> ApiResult<()> {
        self.swarm.update_secret(id, version, spec).map_err(e)
    }
    fn remove_secret(&self, id: &str) -> ApiResult<()> {
        self.swarm.remove_secret(id).map_err(e)
    }
    fn list_configs(&self, f: &Filters) -> ApiResult<Vec<Config>> {
        let configs = self.swarm.configs().map_err(e)?;
        Ok(configs
            .into_iter()
            .filter(|c| blob_matches(f, &c.id, c.spec.name.as_deref(), c.spec.labels.as_ref()))
            .collect())
    }
    fn create_config(&self, spec: ConfigSpec) -> ApiResult<String> {
        self.swarm.create_config(spec).map_err(e)
    }
    fn inspect_config(&self, id: &str) -> ApiResult<Config> {
        self.swarm.config(id).map_err(e)
    }
    fn update_config(&self, id: &str, version: u64, spec: ConfigSpec) -> ApiResult<()> {
        self.swarm.update_config(id, version, spec).map_err(e)
    }
    fn remove_config(&self, id: &str) -> ApiResult<()> {
        self.swarm.remove_config(id).map_err(e)
    }
}

/// swarmkit's secret and config list filters: `id` (prefix), `name`
/// (prefix), `names` (exact), `label`.
fn blob_matches(
    f: &Filters,
    id: &str,
    name: Option<&str>,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    let name = name.unwrap_or_default();
    any_or_empty(f.0.get("id"), |v| id.starts_with(v))
        && any_or_empty(f.0.get("name"), |v| name.starts_with(v))
        && any_or_empty(f.0.get("names"), |v| name == v)
        && labels_match(
            f.0.get("label").map(Vec::as_slice).unwrap_or_default(),
            labels,
        )
}
