//! The firewall: one nftables table owned by berth, computed from the
//! networks and published ports that exist, and replaced as a whole.
//!
//! [`ruleset`] is a pure function of [`FirewallState`]; [`apply`] loads it
//! in one `nft -f -` transaction (`add table` + `delete table` + the new
//! table), so the kernel swaps old for new atomically and a rule set left by
//! a crashed daemon is replaced by the first apply after restart. Rules of
//! the host and of other tools live in other tables and are never touched.
//!
//! Why the `nft` program rather than netlink: nf_tables' netlink messages
//! are a bytecode that only libnftnl/nft assemble; the Rust crates for it
//! either shell out to `nft` themselves or are unmaintained. A text rule set
//! is also what an operator reads with `nft list table ip berth`.
//!
//! Chains:
//! - `prerouting`/`output` (nat): traffic to a local address jumps to
//!   `ports`, where each published port is a DNAT to the container. Output
//!   covers connections made on the host itself, 127.0.0.1 included (the
//!   bridge gets `route_localnet` so such packets may leave loopback).
//! - `postrouting` (nat): masquerade of each non-internal network's traffic
//!   leaving by another interface (outbound NAT); masquerade of DNAT'd
//!   connections from loopback or from the same subnet (hairpin), so the
//!   answers come back through the host.
//! - `forward` (filter): drops traffic between two berth bridges (networks
//!   are isolated) and anything in or out of an internal network's bridge.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::NetError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Proto, NetError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NetError::InvalidArgument(format!(
                "invalid proto: {other} (tcp and udp are supported)"
            ))),
        }
    }
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub internal: bool,
}

/// A published port: host address and port → container address and port.
/// `host_ip` 0.0.0.0 means every local address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortForward {
    pub proto: Proto,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// A load-balanced port of a service: connections to `daddr` (a service's
/// virtual IP) or, without one, to any local address (an ingress-published
/// port) on `port` are spread round-robin over `backends`' `target_port`
/// by DNAT alone, so a backend sees the client's own address. `port` 0
/// with a `daddr` balances the whole address (every port, kept as it is).
/// With no backend the rule is left out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Balancer {
    pub proto: Proto,
    pub daddr: Option<Ipv4Addr>,
    pub port: u16,
    pub target_port: u16,
    pub backends: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Default)]
pub struct FirewallState {
    pub networks: Vec<NetRules>,
    pub ports: Vec<PortForward>,
    pub balancers: Vec<Balancer>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', ""))
}

/// The whole table as `nft -f` input (without the replace preamble).
pub fn ruleset(table: &str, st: &FirewallState) -> String {
    let mut nets = st.networks.clone();
    nets.sort_by(|a, b| a.bridge.cmp(&b.bridge));
    let mut ports = st.ports.clone();
    ports.sort();
    let mut s = String::new();
    let _ = writeln!(s, "table ip {table} {{");
    s.push_str("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump ports\n\t}\n");
    s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump ports\n\t}\n");
    s.push_str("\tchain ports {\n");
    for p in &ports {
        let daddr = if p.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", p.host_ip)
        };
        let _ = writeln!(
            s,
            "\t\t{daddr}{proto} dport {} dnat to {}:{}",
            p.host_port,
            p.container_ip,
            p.container_port,
            proto = p.proto.as_str()
        );
    }
    let mut balancers = st.balancers.clone();
    balancers.sort();
    for b in balancers.iter().filter(|b| !b.backends.is_empty()) {
        let daddr = b
            .daddr
            .map(|d| format!("ip daddr {d} "))
            .unwrap_or_default();
        let targets: Vec<String> = b
            .backends
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("{i} : {ip}"))
            .collect();
        // `numgen inc` counts per rule: successive connections take the
        // backends in turn (kernel-only round robin; no IPVS needed).
        if b.port == 0 {
            // A virtual IP as a whole: every port, each kept.
            let _ = writeln!(
                s,
                "\t\t{daddr}dnat to numgen inc mod {} map {{ {} }}",
                b.backends.len(),
                targets.join(", "),
            );
            continue;
        }
        let _ = writeln!(
            s,
            "\t\t{daddr}{proto} dport {} dnat to numgen inc mod {} map {{ {} }} : {}",
            b.port,
            b.backends.len(),
            targets.join(", "),
            b.target_port,
            proto = b.proto.as_str()
        );
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in &nets {
        let br = quote(&n.bridge);
        if !n.internal {
            let _ = writeln!(s, "\t\tip saddr {} oifname != {br} masquerade", n.subnet);
        }
        let _ = writeln!(
            s,
            "\t\toifname {br} ct status dnat ip saddr 127.0.0.0/8 masquerade"
        );
        let _ = writeln!(
            s,
            "\t\toifname {br} ct status dnat ip saddr {} masquerade",
            n.subnet
        );
    }
    s.push_str("\t}\n");
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for n in &nets {
        let br = quote(&n.bridge);
        if n.internal {
            let _ = writeln!(s, "\t\tiifname {br} oifname != {br} drop");
            let _ = writeln!(s, "\t\toifname {br} iifname != {br} drop");
            continue;
        }
        let others: Vec<String> = nets
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| quote(&o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "\t\tiifname {br} oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    s.push_str("\t}\n}\n");
    s
}

fn nft(script: &str) -> Result<(), NetError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetError::Firewall(format!("running nft (install the nftables package): {e}"))
        })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| NetError::Firewall(format!("writing to nft: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Firewall(format!("waiting for nft: {e}")))?;
    if !out.status.success() {
        return Err(NetError::Firewall(format!(
            "nft refused berth's rule set: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Replaces berth's table with the rule set for `st`, atomically.
pub fn apply(table: &str, st: &FirewallState) -> Result<(), NetError> {
    let script = format!(
        "add table ip {table}\ndelete table ip {table}\n{}",
        ruleset(table, st)
    );
    nft(&script)
}

/// Chains of other tables that drop forwarded traffic by policy (such as
/// iptables' `FORWARD` after `iptables -P FORWARD DROP`), as
/// `family table chain`. A drop verdict in any base chain is final in
/// nftables, so an accept in berth's table cannot override it: containers
/// then reach the outside only if that chain accepts their traffic.
pub fn forward_drop_chains(table: &str) -> Vec<String> {
    let Ok(out) = Command::new("nft").args(["list", "chains"]).output() else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    let (mut cur_table, mut cur_chain) = (String::new(), String::new());
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("table ") {
            cur_table = rest.trim_end_matches(" {").to_string();
        } else if let Some(rest) = line.strip_prefix("chain ") {
            cur_chain = rest.trim_end_matches(" {").to_string();
        } else if line.contains("hook forward")
            && line.contains("policy drop")
            && !cur_table.ends_with(&format!(" {table}"))
        {
            found.push(format!("{cur_table} {cur_chain}"));
        }
    }
    found
}

/// Removes berth's table (no error if it is absent).
pub fn remove(table: &str) -> Result<(), NetError> {
    nft(&format!("add table ip {table}\ndelete table ip {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_ruleset() {
        let st = FirewallState {
            networks: vec![
                NetRules {
                    bridge: "berth0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                },
                NetRules {
                    bridge: "br-aaa".into(),
                    subnet: "10.9.0.0/24".parse().unwrap(),
                    internal: true,
                },
            ],
            ports: vec![
                PortForward {
                    proto: Proto::Udp,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 53,
                    container_ip: Ipv4Addr::new(172, 17, 0, 3),
                    container_port: 5353,
                },
                PortForward {
                    proto: Proto::Tcp,
                    host_ip: Ipv4Addr::LOCALHOST,
                    host_port: 5002,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 5000,
                },
            ],
            balancers: vec![
                Balancer {
                    proto: Proto::Tcp,
                    daddr: None,
                    port: 8080,
                    target_port: 80,
                    backends: vec![Ipv4Addr::new(172, 17, 0, 5), Ipv4Addr::new(172, 17, 0, 6)],
                },
                Balancer {
                    proto: Proto::Tcp,
                    daddr: Some(Ipv4Addr::new(10, 9, 0, 200)),
                    port: 0,
                    target_port: 0,
                    backends: vec![Ipv4Addr::new(10, 9, 0, 7), Ipv4Addr::new(10, 9, 0, 8)],
                },
                Balancer {
                    proto: Proto::Udp,
                    daddr: None,
                    port: 9999,
                    target_port: 9,
                    backends: vec![],
                },
            ],
        };
        let want = "\
table ip berth {
\tchain prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tfib daddr type local jump ports
\t}
\tchain output {
\t\ttype nat hook output priority -100; policy accept;
\t\tfib daddr type local jump ports
\t}
\tchain ports {
\t\tip daddr 127.0.0.1 tcp dport 5002 dnat to 172.17.0.2:5000
\t\tudp dport 53 dnat to 172.17.0.3:5353
\t\ttcp dport 8080 dnat to numgen inc mod 2 map { 0 : 172.17.0.5, 1 : 172.17.0.6 } : 80
\t\tip daddr 10.9.0.200 dnat to numgen inc mod 2 map { 0 : 10.9.0.7, 1 : 10.9.0.8 }
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade
\t\toifname \"berth0\" ct status dnat ip saddr 127.0.0.0/8 masquerade
\t\toifname \"berth0\" ct status dnat ip saddr 172.17.0.0/16 masquerade
\t\toifname \"br-aaa\" ct status dnat ip saddr 127.0.0.0/8 masquerade
\t\toifname \"br-aaa\" ct status dnat ip saddr 10.9.0.0/24 masquerade
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname \"berth0\" oifname { \"br-aaa\" } drop
\t\tiifname \"br-aaa\" oifname != \"br-aaa\" drop
\t\toifname \"br-aaa\" iifname != \"br-aaa\" drop
\t}
}
";
        assert_eq!(ruleset("berth", &st), want);
    }

    /// As root: the kernel accepts the rule set, a second apply replaces the
    /// first, and remove leaves no table behind.
    #[test]
    fn kernel_accepts_and_replaces_the_table() {
        let table = format!("berth_unit_{}", std::process::id());
        let mut st = FirewallState {
            networks: vec![NetRules {
                bridge: "bu0".into(),
                subnet: "10.200.0.0/24".parse().unwrap(),
                internal: false,
            }],
            ports: vec![PortForward {
                proto: Proto::Tcp,
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 40999,
                container_ip: Ipv4Addr::new(10, 200, 0, 2),
                container_port: 80,
            }],
            balancers: vec![Balancer {
                proto: Proto::Tcp,
                daddr: Some(Ipv4Addr::new(10, 200, 0, 250)),
                port: 80,
                target_port: 8080,
                backends: vec![Ipv4Addr::new(10, 200, 0, 2), Ipv4Addr::new(10, 200, 0, 3)],
            }],
        };
        apply(&table, &st).unwrap();
        let list = |t: &str| {
            let o = Command::new("nft")
                .args(["list", "table", "ip", t])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).to_string()
        };
        assert!(list(&table).contains("tcp dport 40999 dnat to 10.200.0.2:80"));
        st.ports.clear();
        apply(&table, &st).unwrap();
        let l = list(&table);
        assert!(!l.contains("40999"), "{l}");
        assert!(l.contains("masquerade"));
        remove(&table).unwrap();
        assert_eq!(list(&table), "");
    }

    #[test]
    fn empty_state_still_has_chains() {
        let r = ruleset("t", &FirewallState::default());
        assert!(r.contains("chain ports {\n\t}"));
        assert!(r.starts_with("table ip t {"));
    }
}
