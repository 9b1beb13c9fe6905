//! One compose service → a `ServiceSpec` (docker CLI's
//! `convert.Service`): entrypoint → `Command`, command → `Args`, deploy →
//! mode, resources, policies and placement, ports → the endpoint spec.

use std::collections::BTreeMap;

use berth_wire::host_config::{BindOptions, Mount, TmpfsOptions, VolumeOptions};
use berth_wire::swarm::{
    ConfigReference, ContainerSpec, DnsConfig, EndpointPortConfig, EndpointSpec, FileTarget, Limit,
    NetworkAttachmentConfig, Placement, PlacementPreference, ReplicatedJob, ReplicatedService,
    ResourceObject, RestartPolicy, SecretReference, ServiceMode, ServiceSpec, SpreadOver,
    SwarmUlimit, TaskResources, TaskSpec, UpdateConfig,
};

use super::{namespace_labels, scoped, ConvertError, Reader, IMAGE_LABEL};
use crate::duration::{parse_bytes, parse_duration};
use crate::interpolate::Environment;
use crate::model::{self, EnvFile, Project, Service, Ulimit};

fn err(svc: &str, msg: impl std::fmt::Display) -> ConvertError {
    ConvertError(format!("service {svc}: {msg}"))
}

fn dur(svc: &str, what: &str, v: &Option<String>) -> Result<Option<i64>, ConvertError> {
    v.as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| err(svc, format!("{what}: {e}")))
}

pub fn convert(
    stack: &str,
    key: &str,
    svc: &Service,
    project: &Project,
    env: &Environment,
    read: Reader,
) -> Result<ServiceSpec, ConvertError> {
    let name = scoped(stack, key);
    let image = svc.image.clone().ok_or_else(|| {
        err(
            key,
            "no image: a stack deploys images, it does not build them",
        )
    })?;
    let deploy = svc.deploy.clone().unwrap_or_default();
    let mut labels = namespace_labels(stack, &deploy.labels);
    labels.insert(IMAGE_LABEL.into(), image.clone());

    let container = ContainerSpec {
        image: Some(image),
        labels: Some(namespace_labels(stack, &svc.labels)),
        command: svc.entrypoint.clone(),
        args: svc.command.clone(),
        hostname: svc.hostname.clone(),
        env: Some(environment(key, svc, env, read)?).filter(|e| !e.is_empty()),
        dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        read_only: svc.read_only,
        mounts: Some(mounts(stack, key, svc, project)?).filter(|m| !m.is_empty()),
        stop_signal: svc.stop_signal.clone(),
        stop_grace_period: dur(key, "stop_grace_period", &svc.stop_grace_period)?,
        health_check: healthcheck(key, svc.healthcheck.as_ref())?,
        hosts: (!svc.extra_hosts.is_empty()).then(|| {
            // compose `host:ip` (or `host=ip`) → the Engine's `ip host`.
            svc.extra_hosts
                .iter()
                .map(|h| match h.split_once('=').or_else(|| h.split_once(':')) {
                    Some((host, ip)) => format!("{ip} {host}"),
                    None => h.clone(),
                })
                .collect()
        }),
        dns_config: Some(DnsConfig {
            nameservers: (!svc.dns.is_empty()).then(|| svc.dns.clone()),
            ..Default::default()
        }),
        secrets: refs(stack, key, "secret", &svc.secrets, &project.secrets)?.map(|v| {
            v.into_iter()
                .map(|(file, name)| SecretReference {
                    file: Some(file),
                    secret_id: String::new(),
                    secret_name: name,
                })
                .collect()
        }),
        configs: refs(stack, key, "config", &svc.configs, &project.configs)?.map(|v| {
            v.into_iter()
                .map(|(file, name)| ConfigReference {
                    file: Some(file),
                    config_id: String::new(),
                    config_name: name,
                    runtime: None,
                })
                .collect()
        }),
        init: svc.init,
        sysctls: (!svc.sysctls.is_empty()).then(|| svc.sysctls.clone()),
        capability_add: (!svc.cap_add.is_empty()).then(|| svc.cap_add.clone()),
        capability_drop: (!svc.cap_drop.is_empty()).then(|| svc.cap_drop.clone()),
        ulimits: (!svc.ulimits.is_empty()).then(|| {
            svc.ulimits
                .iter()
                .map(|(n, u)| {
                    let (soft, hard) = match u {
                        Ulimit::Single(v) => (*v, *v),
                        Ulimit::Pair { soft, hard } => (*soft, *hard),
                    };
                    SwarmUlimit {
                        name: n.clone(),
                        soft,
                        hard,
                    }
                })
                .collect()
        }),
        ..Default::default()
    };

    let mut networks = Vec::new();
    let service_nets: Vec<(String, Option<model::ServiceNetwork>)> = if svc.networks.is_empty() {
        vec![("default".into(), None)]
    } else {
        svc.networks
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for (net_key, opts) in service_nets {
        let declared = project.networks.get(&net_key).cloned().unwrap_or_default();
        let target = declared.name.clone().unwrap_or_else(|| {
            if declared.external {
                net_key.clone()
            } else {
                scoped(stack, &net_key)
            }
        });
        // The service's own name is always an alias on its networks.
        let mut aliases = vec![key.to_string()];
        if let Some(o) = &opts {
            aliases.extend(o.aliases.iter().cloned());
        }
        networks.push(NetworkAttachmentConfig {
            target,
            aliases: Some(aliases),
            driver_opts: opts
                .as_ref()
                .filter(|o| !o.driver_opts.is_empty())
                .map(|o| o.driver_opts.clone()),
        });
    }
    networks.sort_by(|a, b| a.target.cmp(&b.target));

    let mode = match deploy.mode.as_deref().unwrap_or("replicated") {
        "replicated" => ServiceMode {
            replicated: Some(ReplicatedService {
                replicas: Some(deploy.replicas.unwrap_or(1)),
            }),
            ..Default::default()
        },
        "global" if deploy.replicas.is_some() => {
            return Err(err(
                key,
                "replicas can only be used with replicated or replicated-job mode",
            ))
        }
        "global" => ServiceMode {
            global: Some(Default::default()),
            ..Default::default()
        },
        "replicated-job" => ServiceMode {
            replicated_job: Some(ReplicatedJob {
                max_concurrent: Some(deploy.replicas.unwrap_or(1)),
                total_completions: Some(deploy.replicas.unwrap_or(1)),
            }),
            ..Default::default()
        },
        "global-job" => ServiceMode {
            global_job: Some(Default::default()),
            ..Default::default()
        },
        other => return Err(err(key, format!("unknown deploy mode {other:?}"))),
    };

    let resources = deploy
        .resources
        .as_ref()
        .map(|r| -> Result<TaskResources, ConvertError> {
            let cpus = |c: Option<f64>| c.map(|c| (c * 1e9) as i64);
            let mem = |m: &Option<String>| {
                m.as_deref()
                    .map(parse_bytes)
                    .transpose()
                    .map_err(|e| err(key, e))
            };
            Ok(TaskResources {
                limits: r
                    .limits
                    .as_ref()
                    .map(|l| -> Result<Limit, ConvertError> {
                        Ok(Limit {
                            nano_cpus: cpus(l.cpus),
                            memory_bytes: mem(&l.memory)?,
                            pids: l.pids,
                        })
                    })
                    .transpose()?,
                reservations: r
                    .reservations
                    .as_ref()
                    .map(|l| -> Result<ResourceObject, ConvertError> {
                        Ok(ResourceObject {
                            nano_cpus: cpus(l.cpus),
                            memory_bytes: mem(&l.memory)?,
                            generic_resources: None,
                        })
                    })
                    .transpose()?,
                ..Default::default()
            })
        })
        .transpose()?;

    let restart_policy = deploy
        .restart_policy
        .as_ref()
        .map(|r| -> Result<RestartPolicy, ConvertError> {
            Ok(RestartPolicy {
                condition: r.condition.clone(),
                delay: dur(key, "restart_policy.delay", &r.delay)?,
                max_attempts: r.max_attempts,
                window: dur(key, "restart_policy.window", &r.window)?,
            })
        })
        .transpose()?;

    let placement = deploy.placement.as_ref().map(|p| Placement {
        constraints: (!p.constraints.is_empty()).then(|| p.constraints.clone()),
        preferences: (!p.preferences.is_empty()).then(|| {
            p.preferences
                .iter()
                .map(|pref| PlacementPreference {
                    spread: Some(SpreadOver {
                        spread_descriptor: pref.spread.clone(),
                    }),
                })
                .collect()
        }),
        max_replicas: p.max_replicas_per_node,
        platforms: None,
    });

    let ports = svc
        .ports
        .iter()
        .map(|p| -> Result<EndpointPortConfig, ConvertError> {
            let target = p
                .target
                .ok_or_else(|| err(key, "a port needs its target"))?;
            let published = match p.published.as_deref() {
                None | Some("") => None,
                Some(s) => Some(s.parse::<u32>().map_err(|_| {
                    err(
                        key,
                        format!("published port {s:?}: a stack publishes single ports, not ranges"),
                    )
                })?),
            };
            Ok(EndpointPortConfig {
                name: p.name.clone(),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "tcp".into())),
                target_port: target as u32,
                published_port: published,
                publish_mode: Some(p.mode.clone().unwrap_or_else(|| "ingress".into())),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(ServiceSpec {
        name: Some(name),
        labels: Some(labels),
        task_template: TaskSpec {
            container_spec: Some(container),
            resources,
            restart_policy,
            placement,
            networks: Some(networks),
            ..Default::default()
        },
        mode: Some(mode),
        update_config: update_config(key, deploy.update_config.as_ref())?,
        rollback_config: update_config(key, deploy.rollback_config.as_ref())?,
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: deploy.endpoint_mode.clone(),
            ports: (!ports.is_empty()).then_some(ports),
        }),
    })
}

fn update_config(
    key: &str,
    u: Option<&model::UpdateConfig>,
) -> Result<Option<UpdateConfig>, ConvertError> {
    let Some(u) = u else { return Ok(None) };
    Ok(Some(UpdateConfig {
        // docker's default when the file leaves it out.
        parallelism: Some(u.parallelism.unwrap_or(1)),
        delay: dur(key, "delay", &u.delay)?,
        failure_action: u.failure_action.clone(),
        monitor: dur(key, "monitor", &u.monitor)?,
        max_failure_ratio: u.max_failure_ratio,
        order: u.order.clone(),
    }))
}

/// `env_file` entries first, `environment` over them; a variable without
/// a value is taken from `env` (the deploying shell) or left out.
fn environment(
    key: &str,
    svc: &Service,
    env: &Environment,
    read: Reader,
) -> Result<Vec<String>, ConvertError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for f in &svc.env_file {
        let (path, required) = match f {
            EnvFile::Path(p) => (p, true),
            EnvFile::Long { path, required } => (path, required.unwrap_or(true)),
        };
        let text = match read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) if !required => continue,
            Err(e) => return Err(err(key, format!("env_file {path}: {e}"))),
        };
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.trim().to_string(), v.to_string());
            } else if let Some(v) = env.get(line) {
                vars.insert(line.to_string(), v.clone());
            }
        }
    }
    for (k, v) in &svc.environment {
        match v.clone().or_else(|| env.get(k).cloned()) {
            Some(v) => {
                vars.insert(k.clone(), v);
            }
            None => {
                vars.remove(k);
            }
        }
    }
    Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

fn mounts(
    stack: &str,
    key: &str,
    svc: &Service,
    project: &Project,
) -> Result<Vec<Mount>, ConvertError> {
    svc.volumes
        .iter()
        .map(|v| {
            let mut m = Mount {
                kind: v.kind.clone(),
                source: v.source.clone().unwrap_or_default(),
                target: v.target.clone(),
                read_only: v.read_only,
                consistency: v.consistency.clone().unwrap_or_default(),
                ..Default::default()
            };
            match v.kind.as_str() {
                "volume" => {
                    if let Some(src) = &v.source {
                        let declared = project.volumes.get(src).ok_or_else(|| {
                            err(key, format!("undefined volume {src:?}: declare it under the top-level volumes"))
                        })?;
                        m.source = match (&declared.name, declared.external) {
                            (Some(n), _) => n.clone(),
                            (None, true) => src.clone(),
                            (None, false) => scoped(stack, src),
                        };
                    }
                    let declared = v.source.as_ref().and_then(|s| project.volumes.get(s));
                    m.volume_options = Some(VolumeOptions {
                        no_copy: v.volume.as_ref().is_some_and(|o| o.nocopy),
                        labels: Some(namespace_labels(stack, &declared.map(|d| d.labels.clone()).unwrap_or_default())),
                        driver_config: declared.and_then(|d| d.driver.clone()).map(|name| {
                            berth_wire::host_config::DriverConfig {
                                name,
                                options: declared
                                    .filter(|d| !d.driver_opts.is_empty())
                                    .map(|d| d.driver_opts.clone()),
                            }
                        }),
                        subpath: v.volume.as_ref().and_then(|o| o.subpath.clone()).unwrap_or_default(),
                    });
                }
                "bind" => {
                    if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
                        m.bind_options = Some(BindOptions {
                            propagation: p,
                            ..Default::default()
                        });
                    }
                }
                "tmpfs" => {
                    if let Some(t) = &v.tmpfs {
                        m.tmpfs_options = Some(TmpfsOptions {
                            size_bytes: t
                                .size
                                .as_deref()
                                .map(parse_bytes)
                                .transpose()
                                .map_err(|e| err(key, e))?
                                .unwrap_or(0),
                            mode: t.mode.unwrap_or(0) as u32,
                            options: None,
                        });
                    }
                }
                other => return Err(err(key, format!("volume type {other:?} is not supported in a stack"))),
            }
            Ok(m)
        })
        .collect()
}

fn healthcheck(
    key: &str,
    h: Option<&model::Healthcheck>,
) -> Result<Option<serde_json::Value>, ConvertError> {
    let Some(h) = h else { return Ok(None) };
    if h.disable {
        return Ok(Some(serde_json::json!({"Test": ["NONE"]})));
    }
    let mut m = serde_json::Map::new();
    if let Some(t) = &h.test {
        m.insert("Test".into(), serde_json::json!(t));
    }
    for (name, v) in [
        ("Interval", &h.interval),
        ("Timeout", &h.timeout),
        ("StartPeriod", &h.start_period),
        ("StartInterval", &h.start_interval),
    ] {
        if let Some(ns) = dur(key, &format!("healthcheck {name}"), v)? {
            m.insert(name.into(), serde_json::json!(ns));
        }
    }
    if let Some(r) = h.retries {
        m.insert("Retries".into(), serde_json::json!(r));
    }
    Ok(Some(serde_json::Value::Object(m)))
}

/// Secret or config references: the file each is mounted as and the name
/// of the object.
fn refs(
    stack: &str,
    key: &str,
    kind: &str,
    refs: &[model::FileReference],
    declared: &BTreeMap<String, model::FileObject>,
) -> Result<Option<Vec<(FileTarget, String)>>, ConvertError> {
    if refs.is_empty() {
        return Ok(None);
    }
    refs.iter()
        .map(|r| {
            let obj = declared.get(&r.source).ok_or_else(|| {
                err(
                    key,
                    format!(
                        "undefined {kind} {:?}: declare it under the top-level {kind}s",
                        r.source
                    ),
                )
            })?;
            let name = match (&obj.name, obj.external) {
                (Some(n), _) => n.clone(),
                (None, true) => r.source.clone(),
                (None, false) => scoped(stack, &r.source),
            };
            let file = FileTarget {
                name: r.target.clone().unwrap_or_else(|| r.source.clone()),
                uid: r.uid.clone().unwrap_or_else(|| "0".into()),
                gid: r.gid.clone().unwrap_or_else(|| "0".into()),
                mode: r.mode.unwrap_or(0o444) as u32,
            };
            Ok((file, name))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
