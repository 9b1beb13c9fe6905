//! `stats`: `GET /containers/{id}/stats?stream=0|1` per container, reduced
//! the way Docker's CLI reduces the stats JSON (CPU % from the delta against
//! `precpu_stats`, memory without the inactive page cache), shown as a table
//! that is redrawn every half second on a terminal.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use super::container::escape;
use super::{emit, is_terminal, short_id};
use crate::cli::StatsArgs;
use crate::conn::{empty_body, Engine};
use crate::format::ListFormat;
use crate::units::{bytes_size, human_size_with_precision};

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// One container's figures, as Docker's `StatsEntry`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsEntry {
    pub container: String,
    pub name: String,
    pub id: String,
    pub cpu_percent: f64,
    pub memory: f64,
    pub memory_limit: f64,
    pub memory_percent: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub block_read: f64,
    pub block_write: f64,
    pub pids: u64,
    pub valid: bool,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `calculateCPUPercentUnix`.
pub fn cpu_percent(s: &Value) -> f64 {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let system_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let mut online = f(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// `calculateMemUsageUnixNoCache`: usage minus inactive file pages
/// (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub fn memory_usage(mem: &Value) -> f64 {
    let usage = f(&mem["usage"]);
    if let Some(v) = mem["stats"]["total_inactive_file"].as_f64() {
        if v < usage {
            return usage - v;
        }
    }
    let inactive = f(&mem["stats"]["inactive_file"]);
    if inactive < usage {
        return usage - inactive;
    }
    usage
}

/// Reduces one stats JSON document.
pub fn entry_from_stats(container: &str, s: &Value) -> StatsEntry {
    let mem = memory_usage(&s["memory_stats"]);
    let limit = f(&s["memory_stats"]["limit"]);
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += f(&n["rx_bytes"]);
            tx += f(&n["tx_bytes"]);
        }
    }
    let (mut read, mut write) = (0.0, 0.0);
    for b in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match b["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => read += f(&b["value"]),
            Some("write") => write += f(&b["value"]),
            _ => {}
        }
    }
    let name = s["name"].as_str().unwrap_or("");
    StatsEntry {
        container: container.to_string(),
        name: name.strip_prefix('/').unwrap_or(name).to_string(),
        id: s["id"].as_str().unwrap_or("").to_string(),
        cpu_percent: cpu_percent(s),
        memory: mem,
        memory_limit: limit,
        memory_percent: if limit != 0.0 {
            mem / limit * 100.0
        } else {
            0.0
        },
        net_rx: rx,
        net_tx: tx,
        block_read: read,
        block_write: write,
        pids: s["pids_stats"]["current"].as_u64().unwrap_or(0),
        valid: true,
    }
}

/// The template context of one row (`--` until the first sample).
pub fn stats_context(e: &StatsEntry, trunc: bool) -> Value {
    let na = |s: String| if e.valid { s } else { "--".to_string() };
    let pair = |a: f64, b: f64| {
        na(format!(
            "{} / {}",
            human_size_with_precision(a, 3),
            human_size_with_precision(b, 3)
        ))
    };
    let name = if e.valid || !e.name.is_empty() {
        e.name.clone()
    } else {
        "--".into()
    };
    json!({
        "BlockIO": pair(e.block_read, e.block_write),
        "CPUPerc": na(format!("{:.2}%", e.cpu_percent)),
        "Container": e.container,
        "ID": if trunc { short_id(&e.id) } else { e.id.clone() },
        "MemPerc": na(format!("{:.2}%", e.memory_percent)),
        "MemUsage": na(format!("{} / {}", bytes_size(e.memory), bytes_size(e.memory_limit))),
        "Name": name,
        "NetIO": pair(e.net_rx, e.net_tx),
        "PIDs": na(e.pids.to_string()),
    })
}

pub fn stats_header() -> Value {
    json!({
        "BlockIO": "BLOCK I/O",
        "CPUPerc": "CPU %",
        "Container": "CONTAINER",
        "ID": "CONTAINER ID",
        "MemPerc": "MEM %",
        "MemUsage": "MEM USAGE / LIMIT",
        "Name": "NAME",
        "NetIO": "NET I/O",
        "PIDs": "PIDS",
    })
}

async fn one_shot(e: &Engine, c: &str) -> Result<StatsEntry> {
    let resp = e
        .raw(
            Method::GET,
            &format!("/containers/{}/stats?stream=0", escape(c)),
            empty_body(),
            &[],
        )
        .await?;
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body)?;
    Ok(entry_from_stats(c, &v))
}

/// Follows one container's stream, updating its slot until it ends.
async fn follow(e: Engine, c: String, slot: Arc<Mutex<BTreeMap<String, StatsEntry>>>) {
    let path = format!("/containers/{}/stats?stream=1", escape(&c));
    let Ok(resp) = e.raw(Method::GET, &path, empty_body(), &[]).await else {
        return;
    };
    let mut body = resp.into_body();
    let mut msgs = crate::stream::JsonMessages::default();
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            msgs.push(data);
            let Ok(values) = msgs.drain() else { return };
            for v in values {
                let entry = entry_from_stats(&c, &v);
                if let Ok(mut m) = slot.lock() {
                    m.insert(c.clone(), entry);
                }
            }
        }
    }
}

pub async fn stats(e: &Engine, a: StatsArgs) -> Result<()> {
    let format = ListFormat::new(a.format.as_deref(), STATS_TABLE)?;
    let trunc = !a.no_trunc;
    let containers: Vec<String> = if a.containers.is_empty() {
        let list = e
            .get_json(if a.all {
                "/containers/json?all=1"
            } else {
                "/containers/json"
            })
            .await?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };

    if a.no_stream {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for c in &containers {
            match one_shot(e, c).await {
                Ok(entry) => rows.push(stats_context(&entry, trunc)),
                Err(err) => errors.push(format!("{err:#}")),
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("\n"));
        }
        return emit(&format.render(&stats_header(), &rows)?);
    }

    let slots: Arc<Mutex<BTreeMap<String, StatsEntry>>> = Arc::new(Mutex::new(
        containers
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    StatsEntry {
                        container: c.clone(),
                        id: c.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    ));
    for c in &containers {
        tokio::spawn(follow(e.clone(), c.clone(), slots.clone()));
    }
    let terminal = is_terminal(1);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let rows: Vec<Value> = {
            let m = slots
                .lock()
                .map_err(|_| anyhow::anyhow!("stats state poisoned"))?;
            containers
                .iter()
                .filter_map(|c| m.get(c))
                .map(|entry| stats_context(entry, trunc))
                .collect()
        };
        let table = format.render(&stats_header(), &rows)?;
        if terminal {
            // Docker's cleanScreen: clear, then home the cursor.
            emit(&format!("\x1b[2J\x1b[H{table}"))?;
        } else {
            emit(&table)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "id": "4554e14e08932da341c9078f58eb71fc67de008e8695b88967bbc50b6d7c7ea5",
            "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 18_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 700}, "eth1": {"rx_bytes": 500, "tx_bytes": 300}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Read", "value": 4096}
            ]},
            "pids_stats": {"current": 3}
        })
    }

    #[test]
    fn calculations_match_docker() {
        let e = entry_from_stats("web", &sample());
        // (0.2e9 / 2e9) * 2 CPUs * 100
        assert!((e.cpu_percent - 20.0).abs() < 1e-9);
        assert_eq!(e.memory, 8_388_608.0);
        assert!((e.memory_percent - 8.0).abs() < 1e-9);
        assert_eq!((e.net_rx, e.net_tx), (2000.0, 1000.0));
        assert_eq!((e.block_read, e.block_write), (8192.0, 8192.0));
        assert_eq!(e.pids, 3);
        let v1 = json!({"usage": 100, "stats": {"total_inactive_file": 30, "inactive_file": 50}});
        assert_eq!(memory_usage(&v1), 70.0);
        assert_eq!(
            memory_usage(&json!({"usage": 10, "stats": {"inactive_file": 50}})),
            10.0
        );
        let no_delta = json!({"cpu_stats": {"cpu_usage": {"total_usage": 5}}, "precpu_stats": {}});
        assert_eq!(cpu_percent(&no_delta), 0.0);
    }

    #[test]
    fn table_row() {
        let e = entry_from_stats("web", &sample());
        let f = ListFormat::new(None, STATS_TABLE).unwrap();
        assert_eq!(
            f.render(&stats_header(), &[stats_context(&e, true)]).unwrap(),
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O         PIDS\n\
             4554e14e0893   web       20.00%    8MiB / 100MiB       8.00%     2kB / 1kB   8.19kB / 8.19kB   3\n"
        );
        let pending = StatsEntry {
            container: "x".into(),
            id: "x".into(),
            ..Default::default()
        };
        assert_eq!(stats_context(&pending, true)["CPUPerc"], "--");
    }
}
