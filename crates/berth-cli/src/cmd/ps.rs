//! `ps` / `container ls`: `GET /containers/json`, rendered through Docker's
//! container formatter (truncated IDs and commands, grouped port ranges).

use std::collections::BTreeMap;

use anyhow::Result;
use berth_wire::container_types::ContainerSummary;
use serde_json::{json, Value};

use super::{ellipsis, emit, parse_filters, short_id};
use crate::cli::PsArgs;
use crate::conn::Engine;
use crate::format::ListFormat;
use crate::units::{go_time_string, human_duration, human_size_with_precision, now_unix};

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub use berth_core::text::go_quote;

/// The `COMMAND` column: quoted, at most 20 characters unless `--no-trunc`.
pub fn command_column(command: &str, trunc: bool) -> String {
    if trunc {
        go_quote(&ellipsis(command, 20))
    } else {
        go_quote(command)
    }
}

#[derive(Debug, Clone)]
struct Port {
    ip: String,
    private: u64,
    public: u64,
    kind: String,
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Docker's `DisplayablePorts`: `0.0.0.0:8080->80/tcp, 443/tcp`, with
/// consecutive ports folded into ranges.
pub fn displayable_ports(ports: &[Value]) -> String {
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind))
    });
    let mut groups: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let form = |key: &str, first: u64, last: u64| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join_host_port(ip, &group));
        }
        format!("{group}/{kind}")
    };
    for p in &ports {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, &p.public.to_string()),
                    p.private,
                    p.kind
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (p.private, p.private));
                order.push(key);
            }
            Some(g) if p.private == g.1 + 1 => g.1 = p.private,
            Some(g) => {
                result.push(form(&key, g.0, g.1));
                *g = (p.private, p.private);
            }
        }
    }
    for key in &order {
        let (first, last) = groups[key];
        result.push(form(key, first, last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// The `NAMES` column: without the leading `/`, links hidden when truncating.
pub fn names_column(names: &[String], trunc: bool) -> String {
    let names: Vec<String> = names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')) {
            return n.clone();
        }
    }
    names.join(",")
}

/// The `IMAGE` column: an image ID shortened, a digest dropped, when truncating.
pub fn image_column(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    if short_id(image_id) == short_id(image) {
        return short_id(image);
    }
    match berth_core::Reference::parse_name_only_ok(image) {
        Ok(r) => match r.tag() {
            Some(t) => format!("{}:{t}", r.familiar_name()),
            None => r.familiar_name(),
        },
        Err(_) => image.to_string(),
    }
}

/// One row of `ps`, with every field Docker's container context offers.
pub fn ps_context(c: &ContainerSummary, trunc: bool, now: i64) -> Value {
    let created = c.created;
    let id = c.id.clone();
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c
        .mounts
        .iter()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let mut networks: Vec<String> = c.network_settings["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size_rw = c.size_rw.unwrap_or(0) as f64;
    let size_root = c.size_root_fs.unwrap_or(0) as f64;
    let mut size = human_size_with_precision(size_rw, 3);
    if size_root > 0.0 {
        size = format!(
            "{size} (virtual {})",
            human_size_with_precision(size_root, 3)
        );
    }
    json!({
        "Command": command_column(&c.command, trunc),
        "CreatedAt": go_time_string(created),
        "ID": if trunc { short_id(&id) } else { id },
        "Image": image_column(&c.image, &c.image_id, trunc),
        "Labels": labels.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names_column(&c.names, trunc),
        "Networks": networks.join(","),
        "Ports": displayable_ports(&c.ports),
        "RunningFor": format!("{} ago", human_duration(std::time::Duration::from_secs((now - created).max(0) as u64))),
        "Size": size,
        "State": c.state,
        "Status": c.status,
    })
}

pub fn ps_header() -> Value {
    json!({
        "Command": "COMMAND",
        "CreatedAt": "CREATED AT",
        "ID": "CONTAINER ID",
        "Image": "IMAGE",
        "Labels": "LABELS",
        "LocalVolumes": "LOCAL VOLUMES",
        "Mounts": "MOUNTS",
        "Names": "NAMES",
        "Networks": "NETWORKS",
        "Ports": "PORTS",
        "RunningFor": "CREATED",
        "Size": "SIZE",
        "State": "STATE",
        "Status": "STATUS",
    })
}

/// The query of `GET /containers/json`.
pub fn ps_query(a: &PsArgs, want_size: bool) -> Result<String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if a.all {
        q.push(("all", "1".into()));
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if want_size {
        q.push(("size", "1".into()));
    }
    let filters = parse_filters(&a.filter)?;
    if !filters.is_empty() {
        let sorted: BTreeMap<_, _> = filters.into_iter().collect();
        q.push(("filters", serde_json::to_string(&sorted)?));
    }
    Ok(serde_urlencoded::to_string(&q)?)
}

pub async fn ps(e: &Engine, a: PsArgs) -> Result<()> {
    let user_format = match a.format.as_deref() {
        Some("table") | Some("") | None if a.quiet => Some("{{.ID}}"),
        f => f,
    };
    let default = if a.size {
        format!("{PS_TABLE}\t{{{{.Size}}}}")
    } else {
        PS_TABLE.to_string()
    };
    // Docker asks for sizes when the template shows them.
    let want_size = a.size || user_format.is_some_and(|f| f.contains(".Size"));
    let format = ListFormat::new(user_format, &default)?;
    let q = ps_query(&a, want_size)?;
    let path = if q.is_empty() {
        "/containers/json".to_string()
    } else {
        format!("/containers/json?{q}")
    };
    let list: Vec<ContainerSummary> = e.get_as(&path).await?;
    let now = now_unix();
    let rows: Vec<Value> = list
        .iter()
        .map(|c| ps_context(c, !a.no_trunc, now))
        .collect();
    emit(&format.render(&ps_header(), &rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_truncated() {
        assert_eq!(command_column("sleep 100", true), "\"sleep 100\"");
        assert_eq!(
            command_column("sh -c 'while true; do echo hi; done'", true),
            "\"sh -c 'while true; …\""
        );
        assert_eq!(
            command_column("echo \"a\"\tb", false),
            "\"echo \\\"a\\\"\\tb\""
        );
    }

    #[test]
    fn ports_group_like_docker() {
        let p = json!([
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"PrivatePort": 443, "Type": "tcp"},
            {"PrivatePort": 444, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
        ]);
        assert_eq!(
            displayable_ports(p.as_array().unwrap()),
            "127.0.0.1:53->53/udp, 443-444/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn row_and_table() {
        let c = json!({
            "Id": "4554e14e08932da341c9078f58eb71fc67de008e8695b88967bbc50b6d7c7ea5",
            "Names": ["/web", "/other/alias"],
            "Image": "busybox",
            "ImageID": "sha256:aaaa",
            "Command": "sleep 1000",
            "Created": 1000,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "State": "running",
            "Status": "Up 3 seconds",
            "Labels": {"b": "2", "a": "1"},
        });
        let row = ps_context(&serde_json::from_value(c).unwrap(), true, 1010);
        assert_eq!(row["Names"], "web");
        assert_eq!(row["Labels"], "a=1,b=2");
        let f = ListFormat::new(None, PS_TABLE).unwrap();
        assert_eq!(
            f.render(&ps_header(), &[row]).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND        CREATED          STATUS         PORTS                  NAMES\n\
             4554e14e0893   busybox   \"sleep 1000\"   10 seconds ago   Up 3 seconds   0.0.0.0:8080->80/tcp   web\n"
        );
        let f = ListFormat::new(None, PS_TABLE).unwrap();
        assert_eq!(
            f.render(&ps_header(), &[]).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn image_column_truncation() {
        let id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(image_column(id, id, true), "0123456789ab");
        assert_eq!(
            image_column("docker.io/library/busybox:1.36", "sha256:ff", true),
            "busybox:1.36"
        );
        assert_eq!(image_column("", "", true), "<no image>");
    }

    #[test]
    fn queries() {
        let a = PsArgs {
            all: false,
            quiet: false,
            last: -1,
            latest: true,
            size: false,
            no_trunc: false,
            filter: vec!["status=exited".into()],
            format: None,
        };
        assert_eq!(
            ps_query(&a, true).unwrap(),
            "limit=1&size=1&filters=%7B%22status%22%3A%5B%22exited%22%5D%7D"
        );
    }
}
