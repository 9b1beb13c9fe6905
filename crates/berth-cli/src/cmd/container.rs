//! Container lifecycle and bookkeeping commands that are one request per
//! container: stop, restart, kill, rm, pause, unpause, rename, port, diff,
//! commit, update, prune, top, and `container inspect`.

use anyhow::{anyhow, bail, Result};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Map, Value};

use super::{emit, parse_filters};
use crate::cli::{
    CommitArgs, ContainerArg, ContainerInspectArgs, ContainerPruneArgs, ContainersArg, KillArgs,
    PortArgs, RenameArgs, RmArgs, StopArgs, TopArgs, UpdateArgs,
};
use crate::conn::{empty_body, full_body, Engine};
use crate::error::ExitStatus;
use crate::table::TabWriter;
use crate::units::human_size;

/// Percent-escapes a container name or ID for a path segment.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// Sends one request per container, printing each name on success and
/// each error on stderr; exit status 1 when any failed.
async fn for_each(
    e: &Engine,
    containers: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
) -> Result<()> {
    let mut errors = Vec::new();
    for c in containers {
        match e
            .raw(method.clone(), &path(&escape(c)), empty_body(), &[])
            .await
        {
            Ok(_) => emit(&format!("{c}\n"))?,
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

fn stop_query(a: &StopArgs) -> String {
    let mut q = Vec::new();
    if let Some(s) = &a.signal {
        q.push(("signal", s.clone()));
    }
    if let Some(t) = a.time {
        q.push(("t", t.to_string()));
    }
    query(&q)
}

pub async fn stop(e: &Engine, a: StopArgs) -> Result<()> {
    let q = stop_query(&a);
    for_each(e, &a.containers, Method::POST, |c| {
        format!("/containers/{c}/stop{q}")
    })
    .await
}

pub async fn restart(e: &Engine, a: StopArgs) -> Result<()> {
    let q = stop_query(&a);
    for_each(e, &a.containers, Method::POST, |c| {
        format!("/containers/{c}/restart{q}")
    })
    .await
}

pub async fn kill(e: &Engine, a: KillArgs) -> Result<()> {
    let q = query(
        &a.signal
            .iter()
            .map(|s| ("signal", s.clone()))
            .collect::<Vec<_>>(),
    );
    for_each(e, &a.containers, Method::POST, |c| {
        format!("/containers/{c}/kill{q}")
    })
    .await
}

pub async fn remove(e: &Engine, a: RmArgs) -> Result<()> {
    let mut q = Vec::new();
    if a.volumes {
        q.push(("v", "1".to_string()));
    }
    if a.link {
        q.push(("link", "1".to_string()));
    }
    if a.force {
        q.push(("force", "1".to_string()));
    }
    let q = query(&q);
    for_each(e, &a.containers, Method::DELETE, |c| {
        format!("/containers/{c}{q}")
    })
    .await
}

pub async fn pause(e: &Engine, a: ContainersArg) -> Result<()> {
    for_each(e, &a.containers, Method::POST, |c| {
        format!("/containers/{c}/pause")
    })
    .await
}

pub async fn unpause(e: &Engine, a: ContainersArg) -> Result<()> {
    for_each(e, &a.containers, Method::POST, |c| {
        format!("/containers/{c}/unpause")
    })
    .await
}

pub async fn rename(e: &Engine, a: RenameArgs) -> Result<()> {
    let new = a.new_name.trim();
    if a.container.trim().is_empty() || new.is_empty() {
        bail!("Error: neither old nor new names may be empty");
    }
    let path = format!(
        "/containers/{}/rename{}",
        escape(&a.container),
        query(&[("name", new.to_string())])
    );
    e.raw(Method::POST, &path, empty_body(), &[])
        .await
        .map(|_| ())
        .map_err(|err| {
            anyhow!(
                "{err:#}\nError: failed to rename container named {}",
                a.container
            )
        })
}

// ---- port ----

/// Lines of `port`: `80/tcp -> 0.0.0.0:8080`, sorted like Docker's.
pub fn port_lines(ports: &Value, only: Option<&str>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Some(map) = ports.as_object() else {
        return Ok(out);
    };
    let fmt_binding = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let port = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    if let Some(p) = only {
        let key = if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        };
        if let Some(bindings) = map.get(&key).and_then(Value::as_array) {
            for b in bindings {
                out.push(fmt_binding(b));
            }
        }
        return Ok(out);
    }
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        let (n, proto) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    for k in keys {
        for b in map[k].as_array().into_iter().flatten() {
            out.push(format!("{k} -> {}", fmt_binding(b)));
        }
    }
    Ok(out)
}

pub async fn port(e: &Engine, a: PortArgs) -> Result<()> {
    let c = e
        .get_json(&format!("/containers/{}/json", escape(&a.container)))
        .await?;
    let ports = &c["NetworkSettings"]["Ports"];
    let lines = port_lines(ports, a.port.as_deref())?;
    if let Some(p) = &a.port {
        if lines.is_empty() {
            bail!("Error: No public port '{p}' published for {}", a.container);
        }
    }
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    emit(&s)
}

// ---- diff ----

pub fn diff_line(change: &Value) -> String {
    let kind = match change["Kind"].as_i64() {
        Some(0) => "C",
        Some(1) => "A",
        Some(2) => "D",
        _ => "?",
    };
    format!("{kind} {}", change["Path"].as_str().unwrap_or(""))
}

pub async fn diff(e: &Engine, a: ContainerArg) -> Result<()> {
    let v = e
        .get_json(&format!("/containers/{}/changes", escape(&a.container)))
        .await?;
    let mut out = String::new();
    for c in v.as_array().into_iter().flatten() {
        out.push_str(&diff_line(c));
        out.push('\n');
    }
    emit(&out)
}

// ---- commit ----

pub fn commit_query(a: &CommitArgs) -> Result<String> {
    let mut q: Vec<(&str, String)> = vec![("container", a.container.clone())];
    if let Some(r) = &a.reference {
        let parsed = berth_core::Reference::parse_name_only_ok(r)
            .map_err(|err| anyhow!("invalid reference format: {err}"))?;
        if parsed.digest().is_some() {
            bail!("refusing to create a tag with a digest reference");
        }
        q.push(("repo", parsed.familiar_name()));
        if let Some(t) = parsed.tag() {
            q.push(("tag", t.to_string()));
        }
    }
    if let Some(m) = &a.message {
        q.push(("comment", m.clone()));
    }
    if let Some(au) = &a.author {
        q.push(("author", au.clone()));
    }
    q.push(("pause", a.pause.to_string()));
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    Ok(serde_urlencoded::to_string(&q)?)
}

pub async fn commit(e: &Engine, a: CommitArgs) -> Result<()> {
    let q = commit_query(&a)?;
    let resp = e
        .raw(
            Method::POST,
            &format!("/commit?{q}"),
            full_body("{}"),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body)?;
    emit(&format!("{}\n", v["Id"].as_str().unwrap_or_default()))
}

// ---- update ----

pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let mut m = Map::new();
    let flag_err = |flag: &str, v: &str, e: anyhow::Error| {
        anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {e}")
    };
    if let Some(v) = &a.resources.memory {
        let n = crate::opts::ram_in_bytes(v).map_err(|e| flag_err("-m, --memory", v, e))?;
        m.insert("Memory".into(), json!(n));
    }
    if let Some(v) = &a.resources.memory_swap {
        let n = crate::opts::memory_swap(v).map_err(|e| flag_err("--memory-swap", v, e))?;
        m.insert("MemorySwap".into(), json!(n));
    }
    if let Some(v) = &a.resources.memory_reservation {
        let n = crate::opts::ram_in_bytes(v).map_err(|e| flag_err("--memory-reservation", v, e))?;
        m.insert("MemoryReservation".into(), json!(n));
    }
    if let Some(v) = &a.resources.cpus {
        let n = crate::opts::nano_cpus(v).map_err(|e| flag_err("--cpus", v, e))?;
        m.insert("NanoCpus".into(), json!(n));
    }
    if let Some(v) = a.resources.cpu_shares {
        m.insert("CpuShares".into(), json!(v));
    }
    if let Some(v) = &a.resources.cpuset_cpus {
        m.insert("CpusetCpus".into(), json!(v));
    }
    if let Some(v) = a.resources.pids_limit {
        m.insert("PidsLimit".into(), json!(v));
    }
    if let Some(r) = &a.restart {
        m.insert(
            "RestartPolicy".into(),
            serde_json::to_value(crate::opts::parse_restart(r)?)?,
        );
    }
    if m.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(Value::Object(m))
}

pub async fn update(e: &Engine, a: UpdateArgs) -> Result<()> {
    let body = serde_json::to_vec(&update_body(&a)?)?;
    let mut errors = Vec::new();
    for c in &a.containers {
        let r = e
            .raw(
                Method::POST,
                &format!("/containers/{}/update", escape(c)),
                full_body(body.clone()),
                &[("Content-Type", "application/json".to_string())],
            )
            .await;
        match r {
            Ok(resp) => {
                let raw = resp.into_body().collect().await?.to_bytes();
                let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    if let Some(w) = w.as_str() {
                        eprintln!("{w}");
                    }
                }
                emit(&format!("{c}\n"))?;
            }
            Err(err) => errors.push(format!("{err:#}")),
        }
    }
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

// ---- prune ----

pub async fn prune(e: &Engine, a: ContainerPruneArgs) -> Result<()> {
    if !a.force {
        emit("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return emit("Total reclaimed space: 0B\n");
        }
    }
    let filters = parse_filters(&a.filter)?;
    let q = if filters.is_empty() {
        String::new()
    } else {
        query(&[("filters", serde_json::to_string(&filters)?)])
    };
    let resp = e
        .raw(
            Method::POST,
            &format!("/containers/prune{q}"),
            empty_body(),
            &[],
        )
        .await?;
    let raw = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&raw)?;
    let mut out = String::new();
    let deleted = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Containers:\n");
        for d in deleted {
            out.push_str(d.as_str().unwrap_or_default());
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    ));
    emit(&out)
}

// ---- top ----

/// Docker prints `top` through `tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)`.
pub fn top_table(v: &Value) -> String {
    let mut tw = TabWriter::new(20, 3);
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    tw.push_str(&titles.join("\t"));
    tw.push_str("\n");
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        tw.push_str(&cells.join("\t"));
        tw.push_str("\n");
    }
    tw.finish()
}

pub async fn top(e: &Engine, a: TopArgs) -> Result<()> {
    let mut path = format!("/containers/{}/top", escape(&a.container));
    if !a.ps_args.is_empty() {
        path.push_str(&query(&[("ps_args", a.ps_args.join(" "))]));
    }
    let v = e.get_json(&path).await?;
    emit(&top_table(&v))
}

// ---- inspect ----

pub async fn inspect(e: &Engine, a: ContainerInspectArgs) -> Result<()> {
    use super::image::{inspect_objects, ObjectKind};
    inspect_objects(
        e,
        &a.names,
        a.format.as_deref(),
        false,
        &[ObjectKind::Container],
        a.size,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_render_like_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9000/tcp": null
        });
        assert_eq!(
            port_lines(&ports, None).unwrap(),
            vec![
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        assert_eq!(port_lines(&ports, Some("80")).unwrap().len(), 2);
        assert!(port_lines(&ports, Some("9000")).unwrap().is_empty());
    }

    #[test]
    fn diff_kinds() {
        assert_eq!(diff_line(&json!({"Path": "/tmp", "Kind": 0})), "C /tmp");
        assert_eq!(diff_line(&json!({"Path": "/x", "Kind": 1})), "A /x");
        assert_eq!(diff_line(&json!({"Path": "/y", "Kind": 2})), "D /y");
    }

    #[test]
    fn commit_and_update_requests() {
        let a = CommitArgs {
            container: "c1".into(),
            reference: Some("me/app:v1".into()),
            author: Some("A <a@b>".into()),
            change: vec!["CMD [\"sh\"]".into()],
            message: Some("m".into()),
            pause: true,
        };
        assert_eq!(
            commit_query(&a).unwrap(),
            "container=c1&repo=me%2Fapp&tag=v1&comment=m&author=A+%3Ca%40b%3E&pause=true&changes=CMD+%5B%22sh%22%5D"
        );
        let u = UpdateArgs {
            containers: vec!["c".into()],
            resources: crate::cli::container::ResourceArgs {
                memory: Some("64m".into()),
                memory_swap: Some("-1".into()),
                memory_reservation: None,
                cpus: Some("0.5".into()),
                cpu_shares: None,
                cpuset_cpus: None,
                pids_limit: Some(20),
            },
            restart: Some("on-failure:2".into()),
        };
        assert_eq!(
            update_body(&u).unwrap(),
            json!({"Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500000000, "PidsLimit": 20,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        );
    }

    #[test]
    fn top_uses_wide_columns() {
        let v = json!({"Titles": ["UID", "PID", "CMD"], "Processes": [["root", "1", "sleep 100"]]});
        assert_eq!(
            top_table(&v),
            "UID                 PID                 CMD\nroot                1                   sleep 100\n"
        );
    }

    #[test]
    fn escapes_names() {
        assert_eq!(escape("web_1"), "web_1");
        assert_eq!(escape("a/b"), "a%2Fb");
    }
}
