//! A container's network sandbox: its namespace, interfaces, addresses,
//! published ports, resolver names and name-resolution files — made when
//! it starts, undone when it exits, re-adopted after a daemon restart.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_api::container_types::{HostConfig, NetworkingConfig};
use berth_net::link::Attachment;
use berth_net::nft::{PortForward, Proto};
use berth_net::{files, ipam, netns, ports};
use berth_oci::{MountKind, MountSpec, NetworkMode};
use serde_json::Value;

use super::NetworkRecord;
use super::{net_err, BRIDGE};
use crate::containers::record::{Endpoint, PublishedPort};
use crate::containers::ContainerService;
use crate::containers::{io, Container, ContainerError};

fn strings(list: &Option<Vec<String>>) -> Vec<String> {
    list.clone().unwrap_or_default()
}

/// `""`/`default` mean the default bridge.
pub(crate) fn mode_name(h: &HostConfig) -> String {
    match h.network_mode.as_str() {
        "" | "default" => BRIDGE.to_string(),
        m => m.to_string(),
    }
}

/// The container's first (primary) network, as `attach_all` left it.
#[derive(Default)]
struct Primary {
    ip: Option<Ipv4Addr>,
    gateway: Option<Ipv4Addr>,
    /// A user network: its gateway's resolver knows the containers' names.
    resolves_names: bool,
    /// A resolver runs on the gateway (at least forwarding to the host's).
    forwarder: bool,
}

impl Primary {
    /// The nameserver for resolv.conf: the network's resolver on user
    /// networks; on the default bridge only when nothing else would work —
    /// no `--dns` and the host's resolvers are all loopback ones.
    fn resolver(&self, host_resolv: &str, dns: &[String]) -> Option<Ipv4Addr> {
        if self.resolves_names {
            return self.gateway;
        }
        let reachable = files::host_nameservers(host_resolv).iter().any(|n| {
            n.parse::<std::net::IpAddr>()
                .is_ok_and(|a| !a.is_loopback())
        });
        (self.forwarder && dns.is_empty() && !reachable)
            .then_some(self.gateway)
            .flatten()
    }
}

/// What `start` needs from the sandbox.
pub(crate) struct Sandbox {
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
}

fn file_mounts(dir: &Path) -> Vec<MountSpec> {
    ["hosts", "resolv.conf", "hostname"]
        .iter()
        .map(|f| MountSpec {
            source: dir.join(f).display().to_string(),
            destination: format!("/etc/{f}"),
            kind: MountKind::Bind,
            readonly: false,
            options: vec![],
        })
        .collect()
}

fn port_key(key: &str) -> Result<(u16, Proto), ContainerError> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = p
        .parse::<u16>()
        .map_err(|_| ContainerError::InvalidArgument(format!("invalid port {key:?}")))?;
    Ok((port, proto.parse().map_err(net_err)?))
}

/// The endpoint a client asks for on `net` (`EndpointConfig`: aliases and
/// `--ip`), checked as dockerd checks it.
pub(crate) fn requested_endpoint(
    net: &super::NetworkRecord,
    cfg: &Value,
) -> Result<Endpoint, ContainerError> {
    let aliases: Vec<String> = cfg["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ip = cfg["IPAMConfig"]["IPv4Address"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if !ip.is_empty() {
        if net.is_builtin() {
            return Err(ContainerError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let a: Ipv4Addr = ip
            .parse()
            .map_err(|_| ContainerError::InvalidArgument(format!("invalid IPv4 address: {ip}")))?;
        if !net.subnet_net().is_some_and(|s| s.contains(&a)) {
            return Err(ContainerError::InvalidArgument(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    if !aliases.is_empty() && net.is_builtin() {
        return Err(ContainerError::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    Ok(Endpoint {
        network_id: net.id.clone(),
        aliases,
        ipam_ipv4: ip,
        ..Default::default()
    })
}

impl ContainerService {
    /// At create: the networks the container joins, from `NetworkMode` and
    /// `NetworkingConfig.EndpointsConfig` (aliases, `--ip`).
    pub(crate) fn initial_networks(
        &self,
        h: &HostConfig,
        networking: Option<&NetworkingConfig>,
    ) -> Result<BTreeMap<String, Endpoint>, ContainerError> {
        let mode = mode_name(h);
        let mut out = BTreeMap::new();
        if let Some(target) = mode.strip_prefix("container:") {
            self.containers.get(target)?;
            return Ok(out);
        }
        let net = self
            .networks
            .find(&mode)
            .ok_or_else(|| ContainerError::NotFoundOther(format!("network {mode} not found")))?;
        let cfg = networking
            .map(|n| &n.endpoints_config)
            .and_then(|e| e.get(&net.name).or_else(|| e.get(&mode)))
            .map(|ep| serde_json::to_value(ep).unwrap_or_default())
            .unwrap_or(Value::Null);
        out.insert(net.name.clone(), requested_endpoint(&net, &cfg)?);
        Ok(out)
    }

    /// The primary network first (the one `NetworkMode` names), then the
    /// others by name.
    fn ordered_endpoints(&self, c: &Container) -> Vec<(String, Endpoint)> {
        let r = c.record();
        let primary = mode_name(&r.host_config);
        let mut eps: Vec<(String, Endpoint)> = r.networks.clone().into_iter().collect();
        eps.sort_by_key(|(n, _)| (*n != primary, n.clone()));
        eps
    }

    fn write_files(
        &self,
        c: &Container,
        hosts: &str,
        resolv: &str,
        hostname: &str,
    ) -> Result<(), ContainerError> {
        for (f, text) in [
            ("hosts", hosts),
            ("resolv.conf", resolv),
            ("hostname", hostname),
        ] {
            let p = c.dir.join(f);
            std::fs::write(&p, text).map_err(io(format!("writing {}", p.display())))?;
        }
        Ok(())
    }

    fn extra_hosts(&self, h: &HostConfig) -> Result<Vec<(String, String)>, ContainerError> {
        let gw = self
            .networks
            .find(BRIDGE)
            .and_then(|b| b.gateway)
            .unwrap_or_default();
        strings(&h.extra_hosts)
            .into_iter()
            .map(|e| {
                let (name, ip) = e.split_once(':').ok_or_else(|| {
                    ContainerError::InvalidArgument(format!(
                        "invalid extra host {e:?}: want NAME:IP"
                    ))
                })?;
                let ip = if ip == "host-gateway" {
                    gw.clone()
                } else {
                    ip.to_string()
                };
                Ok((name.to_string(), ip))
            })
            .collect()
    }

    /// Makes the sandbox of a starting container.
    pub(crate) fn network_setup(&self, c: &Container) -> Result<Sandbox, ContainerError> {
        let r = c.record();
        let h = &r.host_config;
        let mode = mode_name(h);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let dns = strings(&h.dns);
        let search = strings(&h.dns_search);
        let options = strings(&h.dns_options);
        let extra = self.extra_hosts(h)?;
        let hostname = format!("{}\n", r.config.hostname);
        let domain = r.config.domainname.clone();
        if mode == "host" {
            let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for (n, ip) in &extra {
                hosts.push_str(&format!("{ip}\t{n}\n"));
            }
            let resolv = if dns.is_empty() && search.is_empty() && options.is_empty() {
                host_resolv
            } else {
                files::resolv_conf(&host_resolv, &dns, &search, &options, None)
            };
            self.write_files(c, &hosts, &resolv, &hostname)?;
            return Ok(Sandbox {
                network: NetworkMode::Host,
                mounts: file_mounts(&c.dir),
            });
        }
        if let Some(target) = mode.strip_prefix("container:") {
            let t = self.containers.get(target)?;
            let tr = t.record();
            if !tr.state.status.is_running() {
                return Err(ContainerError::Conflict(format!(
                    "cannot join network namespace of a non running container: container {} is {}",
                    tr.id,
                    tr.state.status.as_str()
                )));
            }
            let ns = self.networks.netns_path(&tr.id);
            let path = if ns.exists() {
                ns
            } else {
                PathBuf::from(format!("/proc/{}/ns/net", tr.state.pid))
            };
            let mounts = if t.dir.join("hosts").exists() {
                file_mounts(&t.dir)
            } else {
                vec![]
            };
            return Ok(Sandbox {
                network: NetworkMode::Path(path),
                mounts,
            });
        }
        let ns = self.networks.netns_path(&r.id);
        let _ = netns::remove(&ns);
        netns::create(&ns).map_err(net_err)?;
        match self.attach_all(c, &ns) {
            Ok(primary) => {
                let hosts = files::hosts(&r.config.hostname, &domain, primary.ip, &extra);
                let resolver = primary.resolver(&host_resolv, &dns);
                let resolv = files::resolv_conf(&host_resolv, &dns, &search, &options, resolver);
                if let Err(e) = self.write_files(c, &hosts, &resolv, &hostname) {
                    self.network_teardown(c);
                    return Err(e);
                }
                Ok(Sandbox {
                    network: NetworkMode::Path(ns.clone()),
                    mounts: file_mounts(&c.dir),
                })
            }
            Err(e) => {
                self.network_teardown(c);
                Err(e)
            }
        }
    }

    /// Connects every endpoint and publishes the ports. Returns the
    /// primary address and the resolver to use (user networks).
    fn attach_all(&self, c: &Container, ns: &Path) -> Result<Primary, ContainerError> {
        let mut primary = Primary::default();
        let mut default_route_set = false;
        let bridged = self.ordered_endpoints(c).into_iter().filter(|(_, ep)| {
            self.networks
                .find(&ep.network_id)
                .is_some_and(|n| n.is_bridge())
        });
        for (i, (name, ep)) in bridged.enumerate() {
            let (ip, gw, names) =
                self.attach_one(c, ns, &name, &format!("eth{i}"), &mut default_route_set)?;
            if i == 0 {
                primary = Primary {
                    ip: Some(ip),
                    gateway: Some(gw),
                    resolves_names: names,
                    forwarder: self.networks.has_dns(&ep.network_id),
                };
            }
        }
        // With `--network none` there is no interface and nothing to publish.
        if let Some(ip) = primary.ip {
            self.publish_ports(c, ip)?;
        }
        Ok(primary)
    }

    /// One veth onto network `name`; records the endpoint. Returns the
    /// address, the gateway, and whether the network's resolver answers
    /// container names (user networks).
    fn attach_one(
        &self,
        c: &Container,
        ns: &Path,
        name: &str,
        ifname: &str,
        default_route_set: &mut bool,
    ) -> Result<(Ipv4Addr, Ipv4Addr, bool), ContainerError> {
        let r = c.record();
        let ep = r.networks.get(name).cloned().unwrap_or_default();
        let net = self
            .networks
            .find(&ep.network_id)
            .ok_or_else(|| ContainerError::NotFoundOther(format!("network {name} not found")))?;
        if !net.is_bridge() {
            return Err(ContainerError::InvalidArgument(format!(
                "container cannot be connected to network {name}: it is not a bridge network"
            )));
        }
        let subnet = net
            .subnet_net()
            .ok_or_else(|| ContainerError::Runtime(format!("network {name} has no subnet")))?;
        let gw = net
            .gateway_ip()
            .ok_or_else(|| ContainerError::Runtime(format!("network {name} has no gateway")))?;
        let want = if ep.ipam_ipv4.is_empty() {
            None
        } else {
            Some(ep.ipam_ipv4.parse().map_err(|_| {
                ContainerError::InvalidArgument(format!("invalid IPv4 address: {}", ep.ipam_ipv4))
            })?)
        };
        let ip = self.networks.allocate(&net.id, want).map_err(net_err)?;
        let suffix = format!("{:07x}", rand::random::<u32>() & 0x0fff_ffff);
        let host_veth = format!("veth{suffix}");
        let mac = ipam::mac_for(ip);
        let default_gateway = if !net.internal && !*default_route_set {
            *default_route_set = true;
            Some(gw)
        } else {
            None
        };
        let att = Attachment {
            bridge: net.bridge.clone(),
            host_veth: host_veth.clone(),
            ifname: ifname.to_string(),
            ip,
            prefix: subnet.prefix_len(),
            mac,
            default_gateway,
        };
        // Record first, so teardown finds what to undo if attach fails midway.
        c.update(|r| {
            let e = r.networks.entry(name.to_string()).or_default();
            e.network_id = net.id.clone();
            e.ip = ip.to_string();
            e.prefix = subnet.prefix_len();
            e.gateway = gw.to_string();
            e.mac = ipam::mac_string(mac);
            e.host_veth = host_veth.clone();
            e.ifname = ifname.to_string();
            e.endpoint_id = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
        })?;
        berth_net::link::attach(ns, &att).map_err(net_err)?;
        let dns = !net.is_builtin() && self.networks.has_dns(&net.id);
        if !net.is_builtin() {
            self.networks.dns_add(&net.id, &dns_names(&r, name), ip);
        }
        Ok((ip, gw, dns))
    }

    /// Reserves the host ports of `-p`/`-P` and forwards them to `ip`.
    fn publish_ports(&self, c: &Container, ip: Ipv4Addr) -> Result<(), ContainerError> {
        let r = c.record();
        let h = &r.host_config;
        let mut wanted: Vec<(u16, Proto, Ipv4Addr, String)> = Vec::new();
        for (key, binds) in h.port_bindings.clone().unwrap_or_default() {
            let (port, proto) = port_key(&key)?;
            for b in binds.unwrap_or_default() {
                let host_ip = b.host_ip.as_str();
                if host_ip.contains(':') {
                    continue; // IPv6 bindings: not yet
                }
                let host_ip: Ipv4Addr = if host_ip.is_empty() {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    host_ip.parse().map_err(|_| {
                        ContainerError::InvalidArgument(format!("invalid host IP {host_ip:?}"))
                    })?
                };
                wanted.push((port, proto, host_ip, b.host_port.clone()));
            }
        }
        if h.publish_all_ports {
            for key in r.config.exposed_ports.clone().unwrap_or_default().keys() {
                let (port, proto) = port_key(key)?;
                if !wanted.iter().any(|w| w.0 == port && w.1 == proto) {
                    wanted.push((port, proto, Ipv4Addr::UNSPECIFIED, String::new()));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut reservations = Vec::new();
        let mut forwards = Vec::new();
        let mut published = Vec::new();
        for (port, proto, host_ip, host_port) in wanted {
            let (lo, hi) = match host_port.split_once('-') {
                Some((a, b)) => (a.parse::<u16>().ok(), b.parse::<u16>().ok()),
                None if host_port.is_empty() => (Some(0), Some(0)),
                None => (host_port.parse().ok(), host_port.parse().ok()),
            };
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return Err(ContainerError::InvalidArgument(format!(
                    "invalid host port {host_port:?}"
                )));
            };
            let mut last_err = None;
            let mut got = None;
            for p in lo..=hi.max(lo) {
                match ports::reserve(proto, host_ip, p) {
                    Ok(res) => {
                        got = Some(res);
                        break;
                    }
                    Err(e) => last_err = Some((p, e)),
                }
            }
            let res = got.ok_or_else(|| {
                let (p, e) = last_err.expect("tried at least one port");
                ContainerError::Conflict(format!(
                    "driver failed programming external connectivity on endpoint {} ({}): Bind for {host_ip}:{p} failed: port is already allocated ({e})",
                    r.name, r.id
                ))
            })?;
            forwards.push(PortForward {
                proto,
                host_ip,
                host_port: res.host_port,
                container_ip: ip,
                container_port: port,
            });
            published.push(PublishedPort {
                proto: proto.as_str().into(),
                host_ip: host_ip.to_string(),
                host_port: res.host_port,
                container_port: port,
            });
            reservations.push(res);
        }
        self.networks
            .publish(&r.id, reservations, forwards)
            .map_err(net_err)?;
        c.update(|r| r.ports = published)?;
        Ok(())
    }

    /// `network connect` of a running container: one more interface.
    pub(crate) fn connect_live(&self, c: &Container, name: &str) -> Result<(), ContainerError> {
        let r = c.record();
        let ns = self.networks.netns_path(&r.id);
        if !ns.exists() {
            return Err(ContainerError::Conflict(format!(
                "container {} has no network namespace of its own",
                r.id
            )));
        }
        let used: Vec<String> = r.networks.values().map(|e| e.ifname.clone()).collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(n))
            .expect("a free interface name");
        // A default route exists already unless every network so far is internal.
        let mut route_set = r.networks.values().any(|e| {
            !e.ip.is_empty()
                && self
                    .networks
                    .find(&e.network_id)
                    .is_some_and(|n| !n.internal)
        });
        match self.attach_one(c, &ns, name, &ifname, &mut route_set) {
            Ok(_) => Ok(()),
            Err(e) => {
                let ep = c.record().networks.get(name).cloned().unwrap_or_default();
                self.disconnect_live(c, name, &ep);
                Err(e)
            }
        }
    }

    /// `network disconnect` of a running container.
    pub(crate) fn disconnect_live(&self, c: &Container, name: &str, ep: &Endpoint) {
        let r = c.record();
        if let Ok(ip) = ep.ip.parse::<Ipv4Addr>() {
            self.networks
                .dns_remove(&ep.network_id, &dns_names(&r, name), ip);
            self.networks.release(&ep.network_id, ip);
        }
        if !ep.ifname.is_empty() {
            if let Err(e) = berth_net::link::detach_in(&self.networks.netns_path(&r.id), &ep.ifname)
            {
                tracing::warn!(container = %r.id, error = %e, "removing interface");
            }
        }
        if !ep.host_veth.is_empty() {
            let _ = berth_net::link::delete_link(&ep.host_veth);
        }
    }

    /// Undoes everything `network_setup` made; keeps going past failures.
    pub(crate) fn network_teardown(&self, c: &Container) {
        let r = c.record();
        if let Err(e) = self.networks.unpublish(&r.id) {
            tracing::warn!(container = %r.id, error = %e, "removing port forwards");
        }
        for (name, ep) in &r.networks {
            if let Ok(ip) = ep.ip.parse::<Ipv4Addr>() {
                self.networks
                    .dns_remove(&ep.network_id, &dns_names(&r, name), ip);
                self.networks.release(&ep.network_id, ip);
            }
            if !ep.host_veth.is_empty() {
                if let Err(e) = berth_net::link::delete_link(&ep.host_veth) {
                    tracing::warn!(container = %r.id, error = %e, "deleting veth");
                }
            }
        }
        if let Err(e) = netns::remove(&self.networks.netns_path(&r.id)) {
            tracing::warn!(container = %r.id, error = %e, "removing the network namespace");
        }
        let _ = c.update(|r| {
            r.ports.clear();
            for ep in r.networks.values_mut() {
                let keep = Endpoint {
                    network_id: ep.network_id.clone(),
                    aliases: ep.aliases.clone(),
                    ipam_ipv4: ep.ipam_ipv4.clone(),
                    ..Default::default()
                };
                *ep = keep;
            }
        });
    }

    /// Re-adopts the sandbox of a container that kept running while the
    /// daemon was down: its addresses, ports and names.
    pub(crate) fn network_restore(&self, c: &Container) {
        let r = c.record();
        for (name, ep) in &r.networks {
            let Ok(ip) = ep.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            if let Err(e) = self.networks.allocate(&ep.network_id, Some(ip)) {
                tracing::warn!(container = %r.id, error = %e, "re-reserving address");
            }
            if self
                .networks
                .find(&ep.network_id)
                .is_some_and(|n| !n.is_builtin())
            {
                self.networks
                    .dns_add(&ep.network_id, &dns_names(&r, name), ip);
            }
        }
        if r.ports.is_empty() {
            return;
        }
        let Some(ip) = self
            .ordered_endpoints(c)
            .first()
            .and_then(|(_, ep)| ep.ip.parse::<Ipv4Addr>().ok())
        else {
            return;
        };
        let mut reservations = Vec::new();
        let mut forwards = Vec::new();
        for p in &r.ports {
            let (Ok(proto), Ok(host_ip)) =
                (p.proto.parse::<Proto>(), p.host_ip.parse::<Ipv4Addr>())
            else {
                continue;
            };
            match ports::reserve(proto, host_ip, p.host_port) {
                Ok(res) => reservations.push(res),
                Err(e) => {
                    tracing::warn!(container = %r.id, error = %e, "re-reserving a published port")
                }
            }
            forwards.push(PortForward {
                proto,
                host_ip,
                host_port: p.host_port,
                container_ip: ip,
                container_port: p.container_port,
            });
        }
        if let Err(e) = self.networks.publish(&r.id, reservations, forwards) {
            tracing::warn!(container = %r.id, error = %e, "restoring port forwards");
        }
    }

    /// After restore: unpins namespaces of containers that no longer run
    /// and rewrites the firewall from what does.
    pub(crate) fn network_sweep(&self) {
        let running: std::collections::HashSet<String> = self
            .containers
            .all()
            .into_iter()
            .map(|c| c.record())
            .filter(|r| r.state.status.is_running())
            .map(|r| r.id[..16].to_string())
            .collect();
        let removed = netns::sweep(&self.networks.netns_dir, |n| running.contains(n));
        if !removed.is_empty() {
            tracing::info!(
                count = removed.len(),
                "removed network namespaces of containers that are gone"
            );
        }
        if let Err(e) = self.networks.apply_firewall() {
            tracing::error!(error = %e, "applying the firewall");
        }
    }

    /// Connects a container to network `n` (`POST /networks/{id}/connect`),
    /// live when it runs.
    pub(crate) fn connect_network(
        &self,
        n: &NetworkRecord,
        body: &Value,
    ) -> Result<(), ContainerError> {
        let name = body["Container"].as_str().unwrap_or("");
        let c = self.containers.get(name)?;
        let _op = c.op.lock().expect("op lock");
        let r = c.record();
        let mode = mode_name(&r.host_config);
        if mode == "host" || mode == "none" || mode.starts_with("container:") || !n.is_bridge() {
            return Err(ContainerError::InvalidArgument(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        if r.networks.contains_key(&n.name) {
            return Err(ContainerError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                r.name, n.name
            )));
        }
        let ep = requested_endpoint(n, &body["EndpointConfig"])?;
        c.update(|r| {
            r.networks.insert(n.name.clone(), ep);
        })?;
        if r.state.status.is_running() {
            if let Err(e) = self.connect_live(&c, &n.name) {
                let _ = c.update(|r| {
                    r.networks.remove(&n.name);
                });
                return Err(e);
            }
        }
        self.events.network(
            crate::events::NetworkAction::Connect {
                container: r.id.clone(),
            },
            &n.id,
            &n.name,
        );
        Ok(())
    }

    /// Disconnects a container from network `n`, live when it runs.
    pub(crate) fn disconnect_network(
        &self,
        n: &NetworkRecord,
        body: &Value,
    ) -> Result<(), ContainerError> {
        let name = body["Container"].as_str().unwrap_or("");
        let c = self.containers.get(name)?;
        let _op = c.op.lock().expect("op lock");
        let r = c.record();
        let Some(ep) = r.networks.get(&n.name).cloned() else {
            return Err(ContainerError::Conflict(format!(
                "container {} is not connected to network {}",
                r.id, n.name
            )));
        };
        if r.state.status.is_running() && !ep.ip.is_empty() {
            self.disconnect_live(&c, &n.name, &ep);
        }
        c.update(|r| {
            r.networks.remove(&n.name);
        })?;
        self.events.network(
            crate::events::NetworkAction::Disconnect {
                container: r.id.clone(),
            },
            &n.id,
            &n.name,
        );
        Ok(())
    }
}

/// The names a container answers to on a user network: its name, its
/// aliases and its short ID.
fn dns_names(r: &crate::containers::ContainerRecord, network: &str) -> Vec<String> {
    let mut names = vec![r.name.clone(), r.id[..12].to_string()];
    if let Some(ep) = r.networks.get(network) {
        names.extend(ep.aliases.iter().cloned());
    }
    names
}
