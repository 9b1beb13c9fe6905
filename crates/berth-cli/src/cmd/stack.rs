//! `berth stack`: a compose file deployed as swarm services, networks,
//! secrets and configs, all labelled with the stack's namespace
//! (`com.docker.stack.namespace`), as `docker stack` does. The compose
//! model and its conversion are `berth_compose`'s; this module only reads
//! the files, talks to the Engine API and prints.
//!
//! Deploy creates what is missing and updates a service only when its spec
//! changed (sending the version it read); it removes nothing. `rm` removes
//! the stack's services, then its networks, secrets and configs.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{anyhow, Context, Result};
use berth_compose::stack::{self as convert, NAMESPACE_LABEL};
use berth_compose::ComposeFile;
use berth_wire::swarm::{Config, Secret, Service, ServiceSpec, Task};
use hyper::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cli::{StackCommand, StackDeployArgs, StackNameArg, StackRmArgs};
use crate::cmd::{emit, short_id};
use crate::conn::{empty_body, full_body, Engine};
use crate::error::is_status;
use crate::table::TabWriter;

pub async fn run(e: &Engine, c: StackCommand) -> Result<()> {
    match c {
        StackCommand::Deploy(a) => deploy(e, a).await,
        StackCommand::Ls(_) => ls(e).await,
        StackCommand::Services(a) => services(e, a).await,
        StackCommand::Ps(a) => ps(e, a).await,
        StackCommand::Rm(a) => rm(e, a).await,
    }
}

// ---------------------------------------------------------------- API helpers

fn filters(pairs: &[(&str, &str)]) -> String {
    let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in pairs {
        m.entry(k).or_default().push(v);
    }
    let json = serde_json::to_string(&m).unwrap_or_default();
    serde_urlencoded::to_string([("filters", json)]).unwrap_or_default()
}

fn namespace_filter(stack: &str) -> String {
    filters(&[("label", &format!("{NAMESPACE_LABEL}={stack}"))])
}

async fn get<T: DeserializeOwned>(e: &Engine, path: &str) -> Result<T> {
    let v = e.get_json(path).await?;
    serde_json::from_value(v).with_context(|| format!("decoding the answer of {path}"))
}

async fn post<B: Serialize>(e: &Engine, path: &str, body: &B) -> Result<()> {
    let body = serde_json::to_vec(body)?;
    e.raw(
        Method::POST,
        path,
        full_body(body),
        &[("Content-Type", "application/json".to_string())],
    )
    .await?;
    Ok(())
}

async fn delete(e: &Engine, path: &str) -> Result<()> {
    e.raw(Method::DELETE, path, empty_body(), &[]).await?;
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSummary {
    #[serde(rename = "Id")]
    id: String,
    name: String,
}

async fn stack_services(e: &Engine, stack: &str, status: bool) -> Result<Vec<Service>> {
    let status = if status { "status=true&" } else { "" };
    let mut s: Vec<Service> =
        get(e, &format!("/services?{status}{}", namespace_filter(stack))).await?;
    s.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    Ok(s)
}

// ---------------------------------------------------------------- deploy

async fn deploy(e: &Engine, a: StackDeployArgs) -> Result<()> {
    let stack = a.name.as_str();
    let mut files = Vec::new();
    for path in &a.compose_files {
        let content = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        files.push(ComposeFile {
            name: path.clone(),
            content,
        });
    }
    let dir = std::path::Path::new(&a.compose_files[0])
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into());
    let env: berth_compose::Environment = std::env::vars().collect();
    let project = berth_compose::load(&files, &env, &dir)?;
    let read = |p: &str| std::fs::read(p).map_err(|e| e.to_string());
    let objects = convert::convert(stack, &project, &env, &read)?;

    // Networks: the stack's own, created when missing; external ones must exist.
    for name in &objects.external_networks {
        if let Err(err) = e.get_json(&format!("/networks/{name}")).await {
            if is_status(&err, 404) {
                return Err(anyhow!(
                    "network {name:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
                ));
            }
            return Err(err);
        }
    }
    let existing: Vec<NetworkSummary> =
        get(e, &format!("/networks?{}", namespace_filter(stack))).await?;
    let existing: HashSet<String> = existing.into_iter().map(|n| n.name).collect();
    for n in &objects.networks {
        if existing.contains(&n.name) {
            continue;
        }
        emit(&format!("Creating network {}\n", n.name))?;
        post(e, "/networks/create", n)
            .await
            .with_context(|| format!("failed to create network {}", n.name))?;
    }

    // Secrets and configs: created when missing; the daemon refuses data
    // changes to an existing one, so one that exists is left as it is.
    let secret_ids = if objects.secrets.is_empty() && objects.external_secrets.is_empty() {
        HashMap::new()
    } else {
        let mut ids = names_to_ids(
            get::<Vec<Secret>>(e, "/secrets")
                .await
                .context("listing secrets")?,
            |s| (s.spec.name.clone().unwrap_or_default(), s.id.clone()),
        );
        for s in &objects.secrets {
            let name = s.name.clone().unwrap_or_default();
            if ids.contains_key(&name) {
                continue;
            }
            emit(&format!("Creating secret {name}\n"))?;
            let v = e
                .raw(
                    Method::POST,
                    "/secrets/create",
                    full_body(serde_json::to_vec(s)?),
                    &[("Content-Type", "application/json".into())],
                )
                .await
                .with_context(|| format!("failed to create secret {name}"))?;
            ids.insert(name, created_id(v).await?);
        }
        ids
    };
    let config_ids = if objects.configs.is_empty() && objects.external_configs.is_empty() {
        HashMap::new()
    } else {
        let mut ids = names_to_ids(
            get::<Vec<Config>>(e, "/configs")
                .await
                .context("listing configs")?,
            |c| (c.spec.name.clone().unwrap_or_default(), c.id.clone()),
        );
        for c in &objects.configs {
            let name = c.name.clone().unwrap_or_default();
            if ids.contains_key(&name) {
                continue;
            }
            emit(&format!("Creating config {name}\n"))?;
            let v = e
                .raw(
                    Method::POST,
                    "/configs/create",
                    full_body(serde_json::to_vec(c)?),
                    &[("Content-Type", "application/json".into())],
                )
                .await
                .with_context(|| format!("failed to create config {name}"))?;
            ids.insert(name, created_id(v).await?);
        }
        ids
    };

    // Services: created, or updated when their spec changed.
    let current: HashMap<String, Service> = stack_services(e, stack, false)
        .await?
        .into_iter()
        .map(|s| (s.spec.name.clone().unwrap_or_default(), s))
        .collect();
    for mut spec in objects.services {
        fill_ids(&mut spec, &secret_ids, &config_ids)?;
        let name = spec.name.clone().unwrap_or_default();
        match current.get(&name) {
            Some(s) if s.spec == spec => {}
            Some(s) => {
                emit(&format!("Updating service {name} (id: {})\n", s.id))?;
                post(
                    e,
                    &format!("/services/{}/update?version={}", s.id, s.version.index),
                    &spec,
                )
                .await
                .with_context(|| format!("failed to update service {name}"))?;
            }
            None => {
                emit(&format!("Creating service {name}\n"))?;
                post(e, "/services/create", &spec)
                    .await
                    .with_context(|| format!("failed to create service {name}"))?;
            }
        }
    }
    Ok(())
}

fn names_to_ids<T>(items: Vec<T>, f: impl Fn(&T) -> (String, String)) -> HashMap<String, String> {
    items.iter().map(f).collect()
}

async fn created_id(resp: hyper::Response<hyper::body::Incoming>) -> Result<String> {
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: berth_wire::swarm::IdResponse =
        serde_json::from_slice(&body).context("decoding the create answer")?;
    Ok(v.id)
}

fn fill_ids(
    spec: &mut ServiceSpec,
    secrets: &HashMap<String, String>,
    configs: &HashMap<String, String>,
) -> Result<()> {
    let name = spec.name.clone().unwrap_or_default();
    let Some(c) = spec.task_template.container_spec.as_mut() else {
        return Ok(());
    };
    for s in c.secrets.iter_mut().flatten() {
        s.secret_id = secrets
            .get(&s.secret_name)
            .cloned()
            .ok_or_else(|| anyhow!("service {name}: secret not found: {}", s.secret_name))?;
    }
    for r in c.configs.iter_mut().flatten() {
        r.config_id = configs
            .get(&r.config_name)
            .cloned()
            .ok_or_else(|| anyhow!("service {name}: config not found: {}", r.config_name))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- ls, services, ps

async fn ls(e: &Engine) -> Result<()> {
    let all: Vec<Service> = get(
        e,
        &format!("/services?{}", filters(&[("label", NAMESPACE_LABEL)])),
    )
    .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in &all {
        if let Some(ns) = s.spec.labels.as_ref().and_then(|l| l.get(NAMESPACE_LABEL)) {
            *counts.entry(ns.clone()).or_default() += 1;
        }
    }
    let mut t = TabWriter::docker_table();
    t.push_str("NAME\tSERVICES\n");
    for (name, n) in counts {
        t.push_str(&format!("{name}\t{n}\n"));
    }
    emit(&t.finish())
}

fn mode_of(s: &ServiceSpec) -> &'static str {
    match &s.mode {
        Some(m) if m.global.is_some() => "global",
        Some(m) if m.replicated_job.is_some() => "replicated job",
        Some(m) if m.global_job.is_some() => "global job",
        _ => "replicated",
    }
}

fn ports_of(s: &Service) -> String {
    let ports = s
        .endpoint
        .ports
        .clone()
        .or_else(|| s.spec.endpoint_spec.as_ref().and_then(|e| e.ports.clone()))
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            p.published_port.map(|pp| {
                format!(
                    "*:{pp}->{}/{}",
                    p.target_port,
                    p.protocol.as_deref().unwrap_or("tcp")
                )
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `name:tag@sha256:…` is shown without its digest, as `docker service ls`.
fn image_of(s: &ServiceSpec) -> String {
    let image = s
        .task_template
        .container_spec
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    match image.split_once('@') {
        Some((name, _)) => name.to_string(),
        None => image,
    }
}

async fn services(e: &Engine, a: StackNameArg) -> Result<()> {
    let list = stack_services(e, &a.name, true).await?;
    if list.is_empty() {
        eprintln!("Nothing found in stack: {}", a.name);
        return Ok(());
    }
    let mut t = TabWriter::docker_table();
    t.push_str("ID\tNAME\tMODE\tREPLICAS\tIMAGE\tPORTS\n");
    for s in &list {
        let status = s.service_status.clone().unwrap_or_default();
        let mode = mode_of(&s.spec);
        let replicas = if mode.ends_with("job") {
            format!(
                "{}/{} ({} completed)",
                status.running_tasks, status.desired_tasks, status.completed_tasks
            )
        } else {
            format!("{}/{}", status.running_tasks, status.desired_tasks)
        };
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            short_id(&s.id),
            s.spec.name.as_deref().unwrap_or(""),
            mode,
            replicas,
            image_of(&s.spec),
            ports_of(s)
        ));
    }
    emit(&t.finish())
}

async fn ps(e: &Engine, a: StackNameArg) -> Result<()> {
    let list = stack_services(e, &a.name, false).await?;
    if list.is_empty() {
        eprintln!("Nothing found in stack: {}", a.name);
        return Ok(());
    }
    let names: HashMap<&str, &str> = list
        .iter()
        .map(|s| (s.id.as_str(), s.spec.name.as_deref().unwrap_or("")))
        .collect();
    let mut tasks: Vec<Task> = get(e, "/tasks").await?;
    tasks.retain(|t| names.contains_key(t.service_id.as_str()));
    tasks.sort_by(|x, y| {
        (names[x.service_id.as_str()], x.slot, &y.created_at).cmp(&(
            names[y.service_id.as_str()],
            y.slot,
            &x.created_at,
        ))
    });
    #[derive(serde::Deserialize)]
    struct NodeName {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "Description", default)]
        description: serde_json::Value,
    }
    let nodes: Vec<NodeName> = get(e, "/nodes").await.unwrap_or_default();
    let hostnames: HashMap<String, String> = nodes
        .into_iter()
        .map(|n| {
            (
                n.id,
                n.description["Hostname"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let now = crate::units::now_unix();
    let mut t = TabWriter::docker_table();
    t.push_str("ID\tNAME\tIMAGE\tNODE\tDESIRED STATE\tCURRENT STATE\tERROR\tPORTS\n");
    let mut seen_slot = HashSet::new();
    for task in &tasks {
        let svc = names[task.service_id.as_str()];
        let slot_name = match task.slot {
            Some(slot) => format!("{svc}.{slot}"),
            None => format!("{svc}.{}", task.node_id),
        };
        // Older tasks of a slot are shown as `\_ name`, as docker does.
        let name = if seen_slot.insert(slot_name.clone()) {
            slot_name
        } else {
            format!(" \\_ {slot_name}")
        };
        let state = &task.status.state;
        let mut state_title = state.clone();
        if let Some(c) = state_title.get_mut(0..1) {
            c.make_ascii_uppercase();
        }
        let since = crate::units::parse_rfc3339(&task.status.timestamp)
            .map(|ts| crate::units::since(ts, now))
            .unwrap_or_default();
        let desired = {
            let mut d = task.desired_state.clone();
            if let Some(c) = d.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            d
        };
        let image = task
            .spec
            .container_spec
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let image = image
            .split_once('@')
            .map_or(image.clone(), |(n, _)| n.to_string());
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{} {}\t{}\t\n",
            short_id(&task.id),
            name,
            image,
            hostnames.get(&task.node_id).cloned().unwrap_or_default(),
            desired,
            state_title,
            since,
            task.status
                .err
                .as_deref()
                .map(|e| format!("\"{}\"", crate::cmd::ellipsis(e, 30)))
                .unwrap_or_default(),
        ));
    }
    emit(&t.finish())
}

// ---------------------------------------------------------------- rm

/// Lists a stack's secrets or configs. A daemon without the endpoint
/// (501) cannot hold any, so there is nothing of that kind to remove.
async fn labelled<T: DeserializeOwned>(e: &Engine, kind: &str, stack: &str) -> Result<Vec<T>> {
    match get(e, &format!("/{kind}?{}", namespace_filter(stack))).await {
        Err(err) if is_status(&err, 501) => Ok(Vec::new()),
        other => other,
    }
}

/// Waits (up to 30 s) until no container is attached to the network at
/// `path`: the tasks of removed services stop after their removal is
/// acknowledged, and a network with endpoints cannot be removed.
async fn drained(e: &Engine, path: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match e.get_json(path).await {
            Ok(v) if v["Containers"].as_object().is_some_and(|c| !c.is_empty()) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            _ => return,
        }
    }
}

async fn rm(e: &Engine, a: StackRmArgs) -> Result<()> {
    let mut failed = false;
    for stack in &a.names {
        let services = stack_services(e, stack, false).await?;
        let networks: Vec<NetworkSummary> =
            get(e, &format!("/networks?{}", namespace_filter(stack))).await?;
        let secrets: Vec<Secret> = labelled(e, "secrets", stack).await?;
        let configs: Vec<Config> = labelled(e, "configs", stack).await?;
        if services.is_empty() && networks.is_empty() && secrets.is_empty() && configs.is_empty() {
            eprintln!("Nothing found in stack: {stack}");
            continue;
        }
        // Teardown keeps going after a failure and reports each one.
        let mut steps: Vec<(String, String)> = Vec::new();
        for s in &services {
            steps.push((
                format!("service {}", s.spec.name.as_deref().unwrap_or(&s.id)),
                format!("/services/{}", s.id),
            ));
        }
        for n in &networks {
            steps.push((format!("network {}", n.name), format!("/networks/{}", n.id)));
        }
        for s in &secrets {
            steps.push((
                format!("secret {}", s.spec.name.as_deref().unwrap_or(&s.id)),
                format!("/secrets/{}", s.id),
            ));
        }
        for c in &configs {
            steps.push((
                format!("config {}", c.spec.name.as_deref().unwrap_or(&c.id)),
                format!("/configs/{}", c.id),
            ));
        }
        for (what, path) in steps {
            if path.starts_with("/networks/") && !services.is_empty() {
                drained(e, &path).await;
            }
            emit(&format!("Removing {what}\n"))?;
            if let Err(err) = delete(e, &path).await {
                eprintln!("Failed to remove {what}: {err:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(crate::error::ExitStatus(1).into());
    }
    Ok(())
}
