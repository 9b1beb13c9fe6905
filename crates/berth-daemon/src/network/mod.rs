//! Networks of the engine: the built-in `bridge`, `host` and `none`, and
//! user-defined bridge networks.
//!
//! A network record lives in `<data-root>/networks/<id>.json`. Its live
//! side — the Linux bridge, the address pool, the embedded DNS resolver —
//! is rebuilt at every daemon start; which addresses are taken comes from
//! the endpoints of the containers that still run, so addresses and rules
//! are stable across restarts and anything a crashed daemon left for
//! containers that are gone is swept: the nftables table is recomputed from
//! what runs, and namespaces of dead containers are unpinned.
//!
//! Lifecycle of a container's networking (see `sandbox.rs`): start →
//! namespace pinned, one veth per network, addresses from the pools, ports
//! reserved and forwarded, names registered in the resolvers, hosts and
//! resolv.conf written; exit → all of it undone, in reverse.

pub(crate) mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_net::dns::DnsServer;
use berth_net::ipam::{self, Pool};
use berth_net::nft::{self, Balancer, FirewallState, NetRules, PortForward, Proto};
use berth_net::ports::Reservation;
use berth_net::NetError;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::containers::ContainerError;

pub const BRIDGE: &str = "bridge";

/// A network as persisted (and, reshaped, as `network inspect` shows it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub ip_range: Option<String>,
    /// The Linux bridge's name (bridge driver only).
    #[serde(default)]
    pub bridge: String,
}

impl NetworkRecord {
    /// A Linux bridge carries it: the bridge driver, and on one node the
    /// overlay driver too.
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge" || self.driver == "overlay"
    }
    /// Swarm-scoped (an overlay network, made while in a swarm).
    pub fn is_swarm(&self) -> bool {
        self.driver == "overlay"
    }
    pub fn is_builtin(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
    pub fn subnet_net(&self) -> Option<Ipv4Net> {
        self.subnet.as_deref().and_then(|s| s.parse().ok())
    }
    pub fn gateway_ip(&self) -> Option<Ipv4Addr> {
        self.gateway.as_deref().and_then(|s| s.parse().ok())
    }
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!(".{}.tmp", self.id));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("serializes"))?;
        std::fs::rename(&tmp, dir.join(format!("{}.json", self.id)))
    }
}

struct Live {
    pool: Pool,
    dns: Option<DnsServer>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<String, NetworkRecord>,
    live: HashMap<String, Live>,
    reservations: HashMap<String, Vec<Reservation>>,
    forwards: HashMap<String, Vec<PortForward>>,
    /// Load-balanced ports, by service.
    balancers: HashMap<String, Vec<Balancer>>,
    /// Host ports held for services' ingress-published ports.
    ingress_ports: HashMap<(Proto, u16), (String, Reservation)>,
}

pub struct Networks {
    dir: PathBuf,
    pub(crate) netns_dir: PathBuf,
    table: String,
    upstreams: Vec<std::net::SocketAddr>,
    state: Mutex<State>,
    /// Runs the DNS resolvers, apart from the API's runtime.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Networks {
    fn drop(&mut self) {
        // The engine may be dropped inside the API's runtime, where a
        // runtime cannot be dropped by blocking on its threads.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn new_id() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

fn now() -> String {
    berth_image::config::now_rfc3339()
}

pub(crate) fn net_err(e: NetError) -> ContainerError {
    use berth_core::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::InvalidArgument => ContainerError::InvalidArgument(e.to_string()),
        ErrorKind::Conflict | ErrorKind::FailedPrecondition => {
            ContainerError::Conflict(e.to_string())
        }
        _ => ContainerError::Runtime(e.to_string()),
    }
}

/// Body of `POST /networks/create`, the parts berth uses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRequest {
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    #[serde(default, rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamRequest {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

impl Networks {
    /// Loads the records, creates the built-in networks on first start and
    /// brings every bridge up with its pool and resolver. The firewall is
    /// applied by [`Networks::apply_firewall`] once running containers are
    /// restored.
    pub fn open(
        data_root: &Path,
        exec_root: &Path,
        bridge: &str,
        bip: Option<&str>,
    ) -> Result<Networks, NetError> {
        let dir = data_root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| NetError::Io {
            context: format!("creating {}", dir.display()),
            source: e,
        })?;
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("berth-dns")
            .enable_all()
            .build()
            .map_err(|e| NetError::Io {
                context: "starting the DNS runtime".into(),
                source: e,
            })?;
        let table = if bridge == "berth0" {
            "berth".to_string()
        } else {
            format!("berth_{}", bridge.replace('-', "_"))
        };
        for chain in nft::forward_drop_chains(&table) {
            tracing::warn!(
                chain = %chain,
                "this forward chain drops by policy: containers reach other hosts only if it accepts traffic from berth's bridges"
            );
        }
        let nets = Networks {
            netns_dir: exec_root.join("netns"),
            dir,
            table,
            upstreams: berth_net::dns::upstreams_from(&resolv),
            state: Mutex::new(State::default()),
            rt: Some(rt),
        };
        let mut records = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&nets.dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    match std::fs::read(&p)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).ok())
                    {
                        Some(r) => {
                            records.insert(r.id.clone(), r);
                        }
                        None => {
                            tracing::warn!(file = %p.display(), "unreadable network record skipped")
                        }
                    }
                }
            }
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !records.values().any(|r| r.name == name) {
                let r = NetworkRecord {
                    id: new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: now(),
                    internal: false,
                    attachable: false,
                    labels: Default::default(),
                    options: Default::default(),
                    subnet: None,
                    gateway: None,
                    ip_range: None,
                    bridge: String::new(),
                };
                r.save(&nets.dir).map_err(|e| NetError::Io {
                    context: "saving a network".into(),
                    source: e,
                })?;
                records.insert(r.id.clone(), r);
            }
        }
        // The default bridge follows the daemon's flags at every start.
        let (subnet, gateway) = match bip {
            Some(b) => {
                let n: Ipv4Net = b.parse().map_err(|_| {
                    NetError::InvalidArgument(format!(
                        "invalid --bip {b:?}: want an address with a prefix, e.g. 172.17.0.1/16"
                    ))
                })?;
                (n.trunc(), n.addr())
            }
            None => {
                let existing = records
                    .values()
                    .find(|r| r.name == BRIDGE && r.bridge == bridge);
                match existing.and_then(|r| Some((r.subnet_net()?, r.gateway_ip()?))) {
                    Some(x) => x,
                    None => {
                        let mut taken = berth_net::link::host_routes();
                        taken.extend(
                            records
                                .values()
                                .filter(|r| r.name != BRIDGE)
                                .filter_map(|r| r.subnet_net()),
                        );
                        let s = ipam::pick_subnet(&ipam::default_candidates(), &taken).ok_or_else(
                            || {
                                NetError::Exhausted(
                                    "no free subnet for the default bridge: set --bip".into(),
                                )
                            },
                        )?;
                        (s, ipam::first_host(s))
                    }
                }
            }
        };
        let old = records.values().find(|r| r.name == BRIDGE).cloned();
        let br = NetworkRecord {
            id: old.as_ref().map(|r| r.id.clone()).unwrap_or_else(new_id),
            name: BRIDGE.into(),
            driver: "bridge".into(),
            created: old.as_ref().map(|r| r.created.clone()).unwrap_or_else(now),
            internal: false,
            attachable: false,
            labels: Default::default(),
            options: [
                (
                    "com.docker.network.bridge.default_bridge".to_string(),
                    "true".to_string(),
                ),
                (
                    "com.docker.network.bridge.name".to_string(),
                    bridge.to_string(),
                ),
            ]
            .into(),
            subnet: Some(subnet.to_string()),
            gateway: Some(gateway.to_string()),
            ip_range: None,
            bridge: bridge.to_string(),
        };
        br.save(&nets.dir).map_err(|e| NetError::Io {
            context: "saving the bridge network".into(),
            source: e,
        })?;
        records.insert(br.id.clone(), br);
        {
            let mut st = nets.state.lock().expect("net state");
            for r in records.values().filter(|r| r.is_bridge()) {
                let live = nets.bring_up(r)?;
                st.live.insert(r.id.clone(), live);
            }
            st.records = records;
        }
        Ok(nets)
    }

    fn bring_up(&self, r: &NetworkRecord) -> Result<Live, NetError> {
        let subnet = r.subnet_net().ok_or_else(|| {
            NetError::InvalidArgument(format!("network {} has no subnet", r.name))
        })?;
        let gw = r.gateway_ip().ok_or_else(|| {
            NetError::InvalidArgument(format!("network {} has no gateway", r.name))
        })?;
        let range = r.ip_range.as_deref().and_then(|s| s.parse().ok());
        let pool = Pool::new(subnet, range, gw)?;
        berth_net::link::ensure_bridge(&r.bridge, gw, subnet.prefix_len())?;
        // Every bridge network gets a resolver: user networks for their
        // names, the default bridge as the forwarder that replaces host
        // resolvers a container cannot reach (loopback ones).
        let rt = self
            .rt
            .as_ref()
            .expect("DNS runtime lives as long as the networks");
        let dns = match DnsServer::start(
            rt.handle(),
            SocketAddrV4::new(gw, 53),
            self.upstreams.clone(),
        ) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(network = %r.name, error = %e, "embedded DNS resolver not started");
                None
            }
        };
        Ok(Live { pool, dns })
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        self.state
            .lock()
            .expect("net state")
            .records
            .values()
            .cloned()
            .collect()
    }

    /// By exact name, full ID, or unique ID prefix.
    pub fn find(&self, key: &str) -> Option<NetworkRecord> {
        let st = self.state.lock().expect("net state");
        if let Some(r) = st.records.values().find(|r| r.name == key) {
            return Some(r.clone());
        }
        if let Some(r) = st.records.get(key) {
            return Some(r.clone());
        }
        let matches: Vec<_> = st
            .records
            .values()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        (matches.len() == 1).then(|| matches[0].clone())
    }

    pub fn create(&self, req: CreateRequest) -> Result<NetworkRecord, NetError> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(NetError::InvalidArgument("network name is required".into()));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" && driver != "overlay" {
            return Err(NetError::InvalidArgument(format!(
                "plugin \"{driver}\" not found: berth supports the bridge and overlay drivers"
            )));
        }
        if matches!(name.as_str(), "bridge" | "host" | "none" | "default") {
            return Err(NetError::InvalidArgument(format!(
                "operation is not permitted on predefined {name} network "
            )));
        }
        if req.enable_ipv6 == Some(true) {
            return Err(NetError::InvalidArgument(
                "berth networks are IPv4 only: IPv6 cannot be enabled".into(),
            ));
        }
        if let Some(d) = req.ipam.as_ref().and_then(|i| i.driver.as_deref()) {
            if d != "default" && !d.is_empty() {
                return Err(NetError::InvalidArgument(format!(
                    "IPAM driver {d:?} is not supported: use default"
                )));
            }
        }
        let configs = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        if configs.len() > 1 {
            return Err(NetError::InvalidArgument(
                "berth supports one IPv4 subnet per network".into(),
            ));
        }
        let cfg = configs.into_iter().next().unwrap_or_default();
        let mut st = self.state.lock().expect("net state");
        if st.records.values().any(|r| r.name == name) {
            return Err(NetError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let others: Vec<Ipv4Net> = st.records.values().filter_map(|r| r.subnet_net()).collect();
        let subnet: Ipv4Net = match &cfg.subnet {
            Some(s) => {
                let n: Ipv4Net = s
                    .parse()
                    .map_err(|_| NetError::InvalidArgument(format!("invalid subnet {s:?}")))?;
                if n.trunc() != n {
                    return Err(NetError::InvalidArgument(format!(
                        "invalid subnet {s}: it should be {}",
                        n.trunc()
                    )));
                }
                if let Some(o) = others
                    .iter()
                    .find(|o| o.contains(&n.network()) || n.contains(&o.network()))
                {
                    return Err(NetError::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({o})"
                    )));
                }
                n
            }
            None => {
                if cfg.gateway.is_some() || cfg.ip_range.is_some() {
                    return Err(NetError::InvalidArgument(
                        "gateway and ip-range need a subnet".into(),
                    ));
                }
                let mut taken = berth_net::link::host_routes();
                taken.extend(others.iter().copied());
                ipam::pick_subnet(&ipam::default_candidates(), &taken).ok_or_else(|| {
                    NetError::Exhausted(
                        "all predefined address pools have been fully subnetted".into(),
                    )
                })?
            }
        };
        let gateway = match &cfg.gateway {
            Some(g) => g
                .parse::<Ipv4Addr>()
                .map_err(|_| NetError::InvalidArgument(format!("invalid gateway {g:?}")))?,
            None => ipam::first_host(subnet),
        };
        if let Some(r) = &cfg.ip_range {
            r.parse::<Ipv4Net>()
                .map_err(|_| NetError::InvalidArgument(format!("invalid ip-range {r:?}")))?;
        }
        let id = new_id();
        let options = req.options.clone().unwrap_or_default();
        let bridge = options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.len() > 15 {
            return Err(NetError::InvalidArgument(format!(
                "bridge name {bridge:?} is longer than 15 bytes"
            )));
        }
        let rec = NetworkRecord {
            id: id.clone(),
            name,
            driver,
            created: now(),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels.clone().unwrap_or_default(),
            options,
            subnet: Some(subnet.to_string()),
            gateway: Some(gateway.to_string()),
            ip_range: cfg.ip_range.clone(),
            bridge,
        };
        // Validates gateway and range against the subnet before anything is made.
        Pool::new(
            subnet,
            rec.ip_range.as_deref().and_then(|s| s.parse().ok()),
            gateway,
        )?;
        let live = self.bring_up(&rec)?;
        if let Err(e) = rec.save(&self.dir) {
            let _ = berth_net::link::delete_link(&rec.bridge);
            return Err(NetError::Io {
                context: "saving the network".into(),
                source: e,
            });
        }
        st.live.insert(id.clone(), live);
        st.records.insert(id, rec.clone());
        let fw = self.firewall_state(&st);
        drop(st);
        self.apply(&fw)?;
        Ok(rec)
    }

    /// Removes a user network (the caller checked it has no endpoints).
    pub fn remove(&self, id: &str) -> Result<(), NetError> {
        let mut st = self.state.lock().expect("net state");
        let Some(rec) = st.records.get(id).cloned() else {
            return Ok(());
        };
        if rec.is_builtin() {
            return Err(NetError::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                rec.name
            )));
        }
        st.live.remove(id);
        st.records.remove(id);
        let fw = self.firewall_state(&st);
        drop(st);
        let mut failures = Vec::new();
        let record = self.dir.join(format!("{id}.json"));
        if let Err(source) = std::fs::remove_file(&record) {
            failures.push(NetError::Io {
                context: format!("removing {}", record.display()),
                source,
            });
        }
        if let Err(e) = berth_net::link::delete_link(&rec.bridge) {
            failures.push(e);
        }
        if let Err(e) = self.apply(&fw) {
            failures.push(e);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NetError::Teardown {
                what: format!("network {}", rec.name),
                failures,
            })
        }
    }

    fn firewall_state(&self, st: &State) -> FirewallState {
        FirewallState {
            networks: st
                .records
                .values()
                .filter(|r| r.is_bridge())
                .filter_map(|r| {
                    Some(NetRules {
                        bridge: r.bridge.clone(),
                        subnet: r.subnet_net()?,
                        internal: r.internal,
                    })
                })
                .collect(),
            ports: st.forwards.values().flatten().cloned().collect(),
            balancers: st.balancers.values().flatten().cloned().collect(),
        }
    }

    fn apply(&self, fw: &FirewallState) -> Result<(), NetError> {
        nft::apply(&self.table, fw)
    }

    pub fn apply_firewall(&self) -> Result<(), NetError> {
        let fw = self.firewall_state(&self.state.lock().expect("net state"));
        self.apply(&fw)
    }

    /// An address on `net_id`: `want` if given (`--ip`, or a restored
    /// endpoint), else the pool's next.
    pub fn allocate(&self, net_id: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, NetError> {
        let mut st = self.state.lock().expect("net state");
        let live = st.live.get_mut(net_id).ok_or_else(|| {
            NetError::InvalidArgument(format!("network {net_id} is not a bridge network"))
        })?;
        match want {
            Some(ip) => live.pool.reserve(ip).map(|_| ip),
            None => live.pool.allocate(),
        }
    }

    pub fn release(&self, net_id: &str, ip: Ipv4Addr) {
        if let Some(l) = self.state.lock().expect("net state").live.get_mut(net_id) {
            l.pool.release(ip);
        }
    }

    pub fn dns_add(&self, net_id: &str, names: &[String], ip: Ipv4Addr) {
        if let Some(d) = self
            .state
            .lock()
            .expect("net state")
            .live
            .get(net_id)
            .and_then(|l| l.dns.as_ref())
        {
            for n in names {
                d.add(n, ip);
            }
        }
    }

    pub fn dns_remove(&self, net_id: &str, names: &[String], ip: Ipv4Addr) {
        if let Some(d) = self
            .state
            .lock()
            .expect("net state")
            .live
            .get(net_id)
            .and_then(|l| l.dns.as_ref())
        {
            for n in names {
                d.remove(n, ip);
            }
        }
    }

    pub fn has_dns(&self, net_id: &str) -> bool {
        self.state
            .lock()
            .expect("net state")
            .live
            .get(net_id)
            .is_some_and(|l| l.dns.is_some())
    }

    /// Holds the host ports and installs the forwards of one container.
    pub fn publish(
        &self,
        container: &str,
        reservations: Vec<Reservation>,
        forwards: Vec<PortForward>,
    ) -> Result<(), NetError> {
        let mut st = self.state.lock().expect("net state");
        st.reservations.insert(container.to_string(), reservations);
        st.forwards.insert(container.to_string(), forwards);
        let fw = self.firewall_state(&st);
        drop(st);
        self.apply(&fw)
    }

    /// Drops a container's forwards and port reservations.
    pub fn unpublish(&self, container: &str) -> Result<(), NetError> {
        let mut st = self.state.lock().expect("net state");
        let had = st.forwards.remove(container).is_some_and(|f| !f.is_empty());
        st.reservations.remove(container);
        let fw = self.firewall_state(&st);
        drop(st);
        if had {
            self.apply(&fw)?;
        }
        Ok(())
    }

    /// Sets the load-balanced ports of `service` (a swarm service ID),
    /// replacing its previous set; the firewall is reloaded only when
    /// they changed.
    pub fn set_balancers(
        &self,
        service: &str,
        mut balancers: Vec<Balancer>,
    ) -> Result<(), NetError> {
        balancers.sort();
        let mut st = self.state.lock().expect("net state");
        let old = st.balancers.get(service);
        if old == Some(&balancers) || (old.is_none() && balancers.is_empty()) {
            return Ok(());
        }
        if balancers.is_empty() {
            st.balancers.remove(service);
        } else {
            st.balancers.insert(service.to_string(), balancers);
        }
        let fw = self.firewall_state(&st);
        drop(st);
        self.apply(&fw)
    }

    /// Holds host port `port` on every address for `service`'s
    /// ingress-published port, as a published container port is held: a
    /// port another program, container or service has is refused.
    pub fn reserve_ingress(&self, service: &str, proto: Proto, port: u16) -> Result<(), NetError> {
        let mut st = self.state.lock().expect("net state");
        if let Some((owner, _)) = st.ingress_ports.get(&(proto, port)) {
            if owner == service {
                return Ok(());
            }
            return Err(NetError::Conflict(format!(
                "port '{port}' is already in use by service '{owner}'"
            )));
        }
        let held = berth_net::ports::reserve(proto, Ipv4Addr::UNSPECIFIED, port)?;
        st.ingress_ports
            .insert((proto, port), (service.to_string(), held));
        Ok(())
    }

    /// Releases the host ports of `service` not in `keep`.
    pub fn release_ingress(&self, service: &str, keep: &[(Proto, u16)]) {
        self.state
            .lock()
            .expect("net state")
            .ingress_ports
            .retain(|k, (owner, _)| owner != service || keep.contains(k));
    }

    /// A virtual IP on `net_id` (`want` when restoring one): taken from the
    /// network's pool and added to its bridge as a /32, so that the host
    /// answers for it and the balancer sees its traffic.
    pub fn add_vip(&self, net_id: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr, NetError> {
        let bridge = self
            .find(net_id)
            .map(|r| r.bridge)
            .ok_or_else(|| NetError::InvalidArgument(format!("network {net_id} not found")))?;
        let ip = match self.allocate(net_id, want) {
            Ok(ip) => ip,
            // Restoring: the address may already be held from before.
            Err(_) if want.is_some() => want.expect("checked"),
            Err(e) => return Err(e),
        };
        if let Err(e) = berth_net::link::bridge_address(&bridge, ip, true) {
            self.release(net_id, ip);
            return Err(e);
        }
        Ok(ip)
    }

    /// Gives a virtual IP back.
    pub fn remove_vip(&self, net_id: &str, ip: Ipv4Addr) {
        if let Some(r) = self.find(net_id) {
            if let Err(e) = berth_net::link::bridge_address(&r.bridge, ip, false) {
                tracing::warn!(network = %r.name, %ip, error = %e, "removing a virtual IP");
            }
        }
        self.release(net_id, ip);
    }

    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir.join(&container_id[..16])
    }
}
