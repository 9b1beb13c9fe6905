//! One file's tree checked against the schema's key sets and put in one
//! canonical form before merging, so that the merge rules apply to like
//! shapes: list-or-map fields become maps, short syntaxes (ports, volumes,
//! secrets, configs, env_file) become their long forms, `x-` extensions are
//! dropped.

use serde_json::{Map, Value};

use crate::error::{index, join, Error};

const TOP_LEVEL: &[&str] = &[
    "version", "name", "include", "services", "models", "networks", "volumes", "secrets", "configs",
];

/// The service properties of the schema (`definitions.service`).
const SERVICE: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

const DEPLOY: &[&str] = &[
    "endpoint_mode",
    "labels",
    "mode",
    "placement",
    "replicas",
    "resources",
    "restart_policy",
    "rollback_config",
    "update_config",
];
const NETWORK: &[&str] = &[
    "attachable",
    "driver",
    "driver_opts",
    "enable_ipv4",
    "enable_ipv6",
    "external",
    "internal",
    "ipam",
    "labels",
    "name",
];
const VOLUME: &[&str] = &["driver", "driver_opts", "external", "labels", "name"];
const SECRET: &[&str] = &[
    "driver",
    "driver_opts",
    "environment",
    "external",
    "file",
    "labels",
    "name",
    "template_driver",
];
const CONFIG: &[&str] = &[
    "content",
    "environment",
    "external",
    "file",
    "labels",
    "name",
    "template_driver",
];

/// Checks and canonicalizes one parsed file in place.
pub fn canonicalize(file: &str, doc: &mut Value) -> Result<(), Error> {
    let top = as_object(file, "", doc)?;
    check_keys(file, "", top, TOP_LEVEL)?;
    if let Some(services) = top.get_mut("services") {
        for (name, svc) in as_object(file, "services", services)?.iter_mut() {
            service(file, &join("services", name), svc)?;
        }
    }
    for (section, keys) in [
        ("networks", NETWORK),
        ("volumes", VOLUME),
        ("secrets", SECRET),
        ("configs", CONFIG),
    ] {
        if let Some(defs) = top.get_mut(section) {
            for (name, def) in as_object(file, section, defs)?.iter_mut() {
                let path = join(section, name);
                if def.is_null() {
                    *def = Value::Object(Map::new());
                }
                let m = as_object(file, &path, def)?;
                check_keys(file, &path, m, keys)?;
                list_to_map(file, &join(&path, "labels"), m, "labels", false)?;
            }
        }
    }
    Ok(())
}

fn service(file: &str, path: &str, svc: &mut Value) -> Result<(), Error> {
    if svc.is_null() {
        *svc = Value::Object(Map::new());
    }
    let m = as_object(file, path, svc)?;
    check_keys(file, path, m, SERVICE)?;
    list_to_map(file, &join(path, "environment"), m, "environment", true)?;
    list_to_map(file, &join(path, "labels"), m, "labels", false)?;
    list_to_map(file, &join(path, "annotations"), m, "annotations", false)?;
    list_to_map(file, &join(path, "sysctls"), m, "sysctls", false)?;
    if let Some(Value::Array(nets)) = m.get("networks") {
        let mut map = Map::new();
        for (i, n) in nets.iter().enumerate() {
            let name = n.as_str().ok_or_else(|| {
                Error::new(
                    file,
                    &index(&join(path, "networks"), i),
                    "expected a network name",
                )
            })?;
            map.insert(name.to_string(), Value::Null);
        }
        m.insert("networks".into(), Value::Object(map));
    }
    if let Some(Value::String(s)) = m.get("env_file") {
        let s = s.clone();
        m.insert("env_file".into(), Value::Array(vec![Value::String(s)]));
    }
    if let Some(Value::Array(ports)) = m.get("ports") {
        let mut long = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let p_path = index(&join(path, "ports"), i);
            match p {
                Value::String(s) => {
                    long.extend(crate::syntax::port(s).map_err(|e| Error::new(file, &p_path, e))?)
                }
                Value::Number(n) => long.extend(
                    crate::syntax::port(&n.to_string())
                        .map_err(|e| Error::new(file, &p_path, e))?,
                ),
                other => long.push(other.clone()),
            }
        }
        m.insert("ports".into(), Value::Array(long));
    }
    if let Some(Value::Array(vols)) = m.get_mut("volumes") {
        for (i, v) in vols.iter_mut().enumerate() {
            if let Value::String(s) = v {
                *v = crate::syntax::volume(s)
                    .map_err(|e| Error::new(file, &index(&join(path, "volumes"), i), e))?;
            }
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(refs)) = m.get_mut(key) {
            for r in refs.iter_mut() {
                if let Value::String(s) = r {
                    let mut o = Map::new();
                    o.insert("source".into(), Value::String(s.clone()));
                    *r = Value::Object(o);
                }
            }
        }
    }
    if let Some(deploy) = m.get_mut("deploy") {
        let d_path = join(path, "deploy");
        if deploy.is_null() {
            *deploy = Value::Object(Map::new());
        }
        let d = as_object(file, &d_path, deploy)?;
        check_keys(file, &d_path, d, DEPLOY)?;
        list_to_map(file, &join(&d_path, "labels"), d, "labels", false)?;
    }
    Ok(())
}

fn as_object<'a>(
    file: &str,
    path: &str,
    v: &'a mut Value,
) -> Result<&'a mut Map<String, Value>, Error> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(Error::new(
            file,
            path,
            format!("expected a mapping, got {}", crate::de::describe(other)),
        )),
    }
}

/// Refuses keys the schema does not know; drops `x-` extensions.
fn check_keys(
    file: &str,
    path: &str,
    m: &mut Map<String, Value>,
    known: &[&str],
) -> Result<(), Error> {
    if m.keys().any(|k| k.starts_with('\0')) {
        return Ok(()); // a `!reset` / `!override` marker, resolved when merging
    }
    m.retain(|k, _| !k.starts_with("x-"));
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Error::new(
                file,
                path,
                format!("additional property {k:?} is not allowed"),
            ));
        }
    }
    Ok(())
}

/// `["K=V", "K"]` → `{K: V, K: null}` (null only where `allow_null`, the
/// environment's "take it from the shell"; elsewhere `K` alone is `K: ""`).
fn list_to_map(
    file: &str,
    path: &str,
    m: &mut Map<String, Value>,
    key: &str,
    allow_null: bool,
) -> Result<(), Error> {
    let Some(v) = m.get_mut(key) else {
        return Ok(());
    };
    match v {
        Value::Array(items) => {
            let mut map = Map::new();
            for (i, item) in items.iter().enumerate() {
                let s = item.as_str().ok_or_else(|| {
                    Error::new(file, &index(path, i), "expected a string KEY=VALUE")
                })?;
                match s.split_once('=') {
                    Some((k, v)) => map.insert(k.to_string(), Value::String(v.to_string())),
                    None if allow_null => map.insert(s.to_string(), Value::Null),
                    None => map.insert(s.to_string(), Value::String(String::new())),
                };
            }
            *v = Value::Object(map);
        }
        Value::Object(map) => {
            if map.keys().any(|k| k.starts_with('\0')) {
                return Ok(());
            }
            for (k, v) in map.iter_mut() {
                if crate::yaml::is_marker(v, crate::yaml::RESET)
                    || crate::yaml::is_marker(v, crate::yaml::OVERRIDE)
                {
                    continue;
                }
                match v {
                    Value::Null if allow_null => {}
                    Value::Null => *v = Value::String(String::new()),
                    Value::String(_) => {}
                    Value::Number(n) => *v = Value::String(n.to_string()),
                    Value::Bool(b) => *v = Value::String(b.to_string()),
                    other => {
                        return Err(Error::new(
                            file,
                            &join(path, k),
                            format!(
                                "expected a string, number or boolean, got {}",
                                crate::de::describe(other)
                            ),
                        ))
                    }
                }
            }
        }
        Value::Null => {}
        other => {
            return Err(Error::new(
                file,
                path,
                format!(
                    "expected a list or a mapping, got {}",
                    crate::de::describe(other)
                ),
            ))
        }
    }
    Ok(())
}
