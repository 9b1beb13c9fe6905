//! The `/networks` endpoints and the network parts of container inspect
//! and list, in Docker's JSON shapes.

use berth_api::backend::NetworkBackend;
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::ApiError;
use berth_core::HasKind;
use serde_json::{json, Map, Value};

use super::Api;
use crate::containers::record::Endpoint;
use crate::containers::ContainerRecord;
use crate::network::{CreateRequest, NetworkRecord, BRIDGE};

fn api<E: HasKind + std::fmt::Display>(e: E) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        berth_core::ErrorKind::NotFound,
        format!("network {name} not found"),
    )
}

impl Api {
    fn network(&self, name: &str) -> ApiResult<NetworkRecord> {
        self.networks.find(name).ok_or_else(|| not_found(name))
    }

    fn network_json(&self, n: &NetworkRecord, with_containers: bool) -> Value {
        let mut containers = Map::new();
        if with_containers {
            for c in self.containers.store().all() {
                let r = c.record();
                if let Some(ep) = r.networks.get(&n.name).filter(|ep| !ep.ip.is_empty()) {
                    containers.insert(
                        r.id.clone(),
                        json!({
                            "Name": r.name,
                            "EndpointID": ep.endpoint_id,
                            "MacAddress": ep.mac,
                            "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                            "IPv6Address": "",
                        }),
                    );
                }
            }
        }
        let mut cfg = Map::new();
        if let Some(s) = &n.subnet {
            cfg.insert("Subnet".into(), json!(s));
        }
        if let Some(r) = &n.ip_range {
            cfg.insert("IPRange".into(), json!(r));
        }
        if let Some(g) = &n.gateway {
            cfg.insert("Gateway".into(), json!(g));
        }
        let config = if cfg.is_empty() {
            json!([])
        } else {
            json!([cfg])
        };
        json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": if n.is_swarm() { "swarm" } else { "local" },
            "Driver": n.driver,
            "EnableIPv4": true,
            "EnableIPv6": false,
            "IPAM": { "Driver": "default", "Options": null, "Config": config },
            "Internal": n.internal,
            "Attachable": n.attachable,
            "Ingress": false,
            "ConfigFrom": { "Network": "" },
            "ConfigOnly": false,
            "Containers": containers,
            "Options": n.options,
            "Labels": n.labels,
        })
    }

    /// Containers with a live endpoint on the network.
    fn active_on(&self, n: &NetworkRecord) -> Vec<ContainerRecord> {
        self.containers
            .store()
            .all()
            .into_iter()
            .map(|c| c.record())
            .filter(|r| r.networks.get(&n.name).is_some_and(|ep| !ep.ip.is_empty()))
            .collect()
    }

    /// A swarm network whose only endpoints are tasks on their way out
    /// (their service was just removed, as `docker stack rm` does right
    /// before removing the stack's networks) is removed once they are
    /// gone, as swarm removes it: wait for them, a while.
    fn wait_for_departing_tasks(&self, n: &NetworkRecord) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let active = self.active_on(n);
            let departing = |r: &ContainerRecord| {
                let task = r
                    .config
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("com.docker.swarm.task.id"));
                match task {
                    None => false,
                    Some(id) => self
                        .swarm
                        .task(id)
                        .map(|t| t.desired() > berth_swarm::objects::TaskState::Running)
                        .unwrap_or(true),
                }
            };
            if active.is_empty()
                || !active.iter().all(departing)
                || std::time::Instant::now() > deadline
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `NetworkSettings` of container inspect.
    pub(crate) fn network_settings(&self, r: &ContainerRecord, sandbox: bool) -> Value {
        let mut networks = Map::new();
        for (name, ep) in &r.networks {
            networks.insert(
                name.clone(),
                endpoint_json(r, name, ep, self.is_user_network(&ep.network_id)),
            );
        }
        let bridge = r.networks.get(BRIDGE).cloned().unwrap_or_default();
        let running = r.state.status.is_running();
        json!({
            "Bridge": "",
            "SandboxID": if running && sandbox { r.id.clone() } else { String::new() },
            "SandboxKey": if running && sandbox { self.networks.netns_path(&r.id).display().to_string() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_map(r),
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": bridge.endpoint_id,
            "Gateway": bridge.gateway,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": bridge.ip,
            "IPPrefixLen": bridge.prefix,
            "IPv6Gateway": "",
            "MacAddress": bridge.mac,
            "Networks": networks,
        })
    }

    /// `NetworkSettings` of container list.
    pub(crate) fn network_summary(&self, r: &ContainerRecord) -> Value {
        let mut networks = Map::new();
        for (name, ep) in &r.networks {
            networks.insert(
                name.clone(),
                endpoint_json(r, name, ep, self.is_user_network(&ep.network_id)),
            );
        }
        json!({ "Networks": networks })
    }

    fn is_user_network(&self, id: &str) -> bool {
        self.networks.find(id).is_some_and(|n| !n.is_builtin())
    }
}

fn endpoint_json(r: &ContainerRecord, name: &str, ep: &Endpoint, user: bool) -> Value {
    let mut dns_names = Value::Null;
    if user {
        let mut names = vec![json!(r.name), json!(r.id[..12])];
        names.extend(ep.aliases.iter().map(|a| json!(a)));
        dns_names = Value::Array(names);
    }
    let _ = name;
    json!({
        "IPAMConfig": if ep.ipam_ipv4.is_empty() { Value::Null } else { json!({ "IPv4Address": ep.ipam_ipv4 }) },
        "Links": null,
        "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
        "MacAddress": ep.mac,
        "DriverOpts": null,
        "GwPriority": 0,
        "NetworkID": ep.network_id,
        "EndpointID": ep.endpoint_id,
        "Gateway": ep.gateway,
        "IPAddress": ep.ip,
        "IPPrefixLen": ep.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": dns_names,
    })
}

/// `NetworkSettings.Ports`: every exposed or published port; bindings
/// while running, `null` otherwise.
fn ports_map(r: &ContainerRecord) -> Value {
    let mut m = Map::new();
    for k in r.config.exposed_ports.clone().unwrap_or_default().keys() {
        let key = if k.contains('/') {
            k.clone()
        } else {
            format!("{k}/tcp")
        };
        m.insert(key, Value::Null);
    }
    for p in &r.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let e = m.entry(key).or_insert_with(|| json!([]));
        if e.is_null() {
            *e = json!([]);
        }
        if let Some(a) = e.as_array_mut() {
            a.push(json!({ "HostIp": p.host_ip, "HostPort": p.host_port.to_string() }));
        }
    }
    Value::Object(m)
}

/// `Ports` of container list.
pub(crate) fn ports_summary(r: &ContainerRecord) -> Vec<Value> {
    if !r.state.status.is_running() {
        return vec![];
    }
    let mut out: Vec<Value> = r
        .ports
        .iter()
        .map(|p| json!({ "IP": p.host_ip, "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto }))
        .collect();
    for k in r.config.exposed_ports.clone().unwrap_or_default().keys() {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !r
            .ports
            .iter()
            .any(|p| p.container_port == port && p.proto == proto)
        {
            out.push(json!({ "PrivatePort": port, "Type": proto }));
        }
    }
    out
}

fn matches_filters(n: &NetworkRecord, f: &Filters) -> bool {
    let name_ok =
        f.get("name").is_empty() || f.get("name").iter().any(|x| n.name.contains(x.as_str()));
    let id_ok = f.get("id").is_empty() || f.get("id").iter().any(|x| n.id.starts_with(x.as_str()));
    let driver_ok = f.get("driver").is_empty() || f.get("driver").contains(&n.driver);
    let type_ok = f.get("type").iter().all(|t| match t.as_str() {
        "builtin" => n.is_builtin(),
        "custom" => !n.is_builtin(),
        _ => false,
    });
    let label_ok = f.get("label").iter().all(|l| match l.split_once('=') {
        Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
        None => n.labels.contains_key(l.as_str()),
    });
    name_ok && id_ok && driver_ok && type_ok && label_ok
}

impl NetworkBackend for Api {
    fn list_networks(&self, filters: &Filters) -> ApiResult<Vec<Value>> {
        for t in filters.get("type") {
            if t != "builtin" && t != "custom" {
                return Err(ApiError::bad_request(format!(
                    "invalid filter: 'type'='{t}'"
                )));
            }
        }
        let dangling = filters
            .get("dangling")
            .first()
            .map(|d| d == "true" || d == "1");
        Ok(self
            .networks
            .list()
            .iter()
            .filter(|n| matches_filters(n, filters))
            .filter(|n| match dangling {
                Some(d) => d == (!n.is_builtin() && self.active_on(n).is_empty()),
                None => true,
            })
            .map(|n| self.network_json(n, false))
            .collect())
    }

    fn inspect_network(&self, name: &str, _verbose: bool) -> ApiResult<Value> {
        let n = self.network(name)?;
        Ok(self.network_json(&n, true))
    }

    fn create_network(&self, body: Value) -> ApiResult<Value> {
        let req: CreateRequest = serde_json::from_value(body)
            .map_err(|e| ApiError::bad_request(format!("invalid network config: {e}")))?;
        if req.driver == "overlay" {
            // Overlay networks belong to the swarm; on one node a bridge
            // carries them.
            self.swarm.active().map_err(ApiError::from_err)?;
        }
        let n = self.networks.create(req).map_err(api)?;
        self.events
            .network(crate::events::NetworkAction::Create, &n.id, &n.name);
        Ok(json!({ "Id": n.id, "Warning": "" }))
    }

    fn remove_network(&self, name: &str) -> ApiResult<()> {
        let n = self.network(name)?;
        if n.is_builtin() {
            return Err(ApiError::new(
                berth_core::ErrorKind::Forbidden,
                format!("{} is a pre-defined network and cannot be removed", n.name),
            ));
        }
        if n.is_swarm() {
            self.wait_for_departing_tasks(&n);
        }
        if !self.active_on(&n).is_empty() {
            return Err(ApiError::new(
                berth_core::ErrorKind::Forbidden,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                ),
            ));
        }
        self.networks.remove(&n.id).map_err(api)?;
        self.events
            .network(crate::events::NetworkAction::Destroy, &n.id, &n.name);
        Ok(())
    }

    fn connect_network(&self, name: &str, body: Value) -> ApiResult<()> {
        let n = self.network(name)?;
        self.containers.connect_network(&n, &body).map_err(api)
    }

    fn disconnect_network(&self, name: &str, body: Value) -> ApiResult<()> {
        let n = self.network(name)?;
        self.containers.disconnect_network(&n, &body).map_err(api)
    }

    fn prune_networks(&self, filters: &Filters) -> ApiResult<Value> {
        let mut deleted = Vec::new();
        for n in self.networks.list() {
            if n.is_builtin() || !self.active_on(&n).is_empty() {
                continue;
            }
            let label_ok = filters
                .get("label")
                .iter()
                .all(|l| match l.split_once('=') {
                    Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
                    None => n.labels.contains_key(l.as_str()),
                });
            if !label_ok {
                continue;
            }
            // Attached stopped containers still use it, as in Docker's prune.
            let used = self
                .containers
                .store()
                .all()
                .iter()
                .any(|c| c.record().networks.contains_key(&n.name));
            if used {
                continue;
            }
            if self.networks.remove(&n.id).is_ok() {
                self.events
                    .network(crate::events::NetworkAction::Destroy, &n.id, &n.name);
                deleted.push(n.name.clone());
            }
        }
        Ok(
            json!({ "NetworksDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) } }),
        )
    }
}
