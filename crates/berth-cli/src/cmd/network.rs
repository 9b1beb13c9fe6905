//! Network commands: create, ls, inspect, rm, connect, disconnect, prune,
//! worded and shaped as Docker's CLI 28. Requests go through
//! [`Engine::raw`] so `inspect` can print the engine's JSON as it came.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};
use hyper::Method;
use serde_json::{json, Map, Value};

use super::container::escape;
use super::volume::{
    api_at_least, filters_query, natural_cmp, parse_labels, parse_opts, read_json,
};
use super::{emit, parse_filters, short_id};
use crate::cli::{
    NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs,
    NetworkInspectArgs, NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::conn::{empty_body, full_body, Engine};
use crate::error::{is_status, ExitStatus};
use crate::format::{ListFormat, Template};

const NETWORKS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const NETWORKS_QUIET: &str = "{{.ID}}";
const NETWORKS_RAW: &str =
    "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n";

const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

pub async fn run(e: &Engine, c: NetworkCommand) -> Result<()> {
    match c {
        NetworkCommand::Connect(a) => connect(e, a).await,
        NetworkCommand::Create(a) => create(e, a).await,
        NetworkCommand::Disconnect(a) => disconnect(e, a).await,
        NetworkCommand::Inspect(a) => inspect(e, a).await,
        NetworkCommand::Ls(a) => list(e, a).await,
        NetworkCommand::Prune(a) => prune(e, a).await,
        NetworkCommand::Rm(a) => remove(e, a).await,
    }
}

async fn post_json(e: &Engine, path: &str, body: &Value) -> Result<Value> {
    let resp = e
        .raw(
            Method::POST,
            path,
            full_body(serde_json::to_vec(body)?),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    read_json(resp, path).await
}

// ---- create ----

/// Go's `net.ParseCIDR`: the address as written and its prefix length.
fn parse_cidr(s: &str) -> Result<(IpAddr, u8)> {
    let bad = || anyhow!("invalid CIDR address: {s}");
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

/// Go's `IPNet.Contains` for the network `net`/`len`.
fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    // Go compares IPv4-mapped addresses as IPv4 ones.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Docker's `subnetMatches`: whether `data` (an address, or a CIDR whose
/// address is used) lies within `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool> {
    let (net, len) = parse_cidr(subnet).map_err(|e| anyhow!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(parse_cidr(data)?.0)
    } else {
        data.parse::<IpAddr>().ok()
    };
    Ok(ip.is_some_and(|ip| cidr_contains(net, len, ip)))
}

/// Docker's `createIPAMConfig`: groups ranges, gateways and auxiliary
/// addresses under the subnet that holds them, with Docker's validation
/// and messages. Config entries keep the order of `--subnet`.
pub fn ipam_config(a: &NetworkCreateArgs) -> Result<Value> {
    if a.subnets.len() < a.ip_ranges.len() || a.subnets.len() < a.gateways.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    #[derive(Default)]
    struct Entry {
        range: String,
        gateway: String,
        aux: BTreeMap<String, String>,
    }
    let mut data: Vec<(&str, Entry)> = Vec::new();
    for s in &a.subnets {
        for (k, _) in &data {
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                bail!("multiple overlapping subnet configuration is not supported");
            }
        }
        data.push((s, Entry::default()));
    }
    for r in &a.ip_ranges {
        let mut matched = false;
        for (s, entry) in data.iter_mut() {
            parse_cidr(r)?;
            if !subnet_matches(s, r)? {
                continue;
            }
            if !entry.range.is_empty() {
                bail!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({s})",
                    entry.range
                );
            }
            entry.range = r.clone();
            matched = true;
        }
        if !matched {
            bail!("no matching subnet for range {r}");
        }
    }
    for g in &a.gateways {
        let mut matched = false;
        for (s, entry) in data.iter_mut() {
            if !subnet_matches(s, g)? {
                continue;
            }
            if !entry.gateway.is_empty() {
                bail!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({s})",
                    entry.gateway
                );
            }
            entry.gateway = g.clone();
            matched = true;
        }
        if !matched {
            bail!("no matching subnet for gateway {g}");
        }
    }
    for (key, aa) in parse_opts(&a.aux_addresses) {
        let mut matched = false;
        for (s, entry) in data.iter_mut() {
            if !subnet_matches(s, &aa)? {
                continue;
            }
            entry.aux.insert(key.clone(), aa.clone());
            matched = true;
        }
        if !matched {
            bail!("no matching subnet for aux-address {aa}");
        }
    }
    let config: Vec<Value> = data
        .into_iter()
        .map(|(s, e)| {
            // Go's `omitempty` on every IPAMConfig field.
            let mut c = Map::new();
            c.insert("Subnet".into(), json!(s));
            if !e.range.is_empty() {
                c.insert("IPRange".into(), json!(e.range));
            }
            if !e.gateway.is_empty() {
                c.insert("Gateway".into(), json!(e.gateway));
            }
            if !e.aux.is_empty() {
                c.insert("AuxiliaryAddresses".into(), json!(e.aux));
            }
            Value::Object(c)
        })
        .collect();
    Ok(json!({
        "Driver": a.ipam_driver,
        "Options": parse_opts(&a.ipam_opts),
        "Config": config,
    }))
}

/// The body of `POST /networks/create`, field for field what Docker's CLI
/// sends (`EnableIPv4`/`EnableIPv6` only when the flag was given).
pub fn create_body(a: &NetworkCreateArgs, api_version: &str) -> Result<Value> {
    let ipam = ipam_config(a)?;
    let labels = parse_labels(&a.labels)?;
    let mut body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Scope": a.scope,
        "IPAM": ipam,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "ConfigOnly": a.config_only,
        "ConfigFrom": if a.config_from.is_empty() { Value::Null } else { json!({"Network": a.config_from}) },
        "Options": parse_opts(&a.opts),
        "Labels": labels,
    });
    if let Some(v4) = a.ipv4 {
        body["EnableIPv4"] = json!(v4);
    }
    if let Some(v6) = a.ipv6 {
        body["EnableIPv6"] = json!(v6);
    }
    if !api_at_least(api_version, "1.44") {
        body["CheckDuplicate"] = json!(true);
    }
    Ok(body)
}

pub async fn create(e: &Engine, a: NetworkCreateArgs) -> Result<()> {
    let body = create_body(&a, e.api_version())?;
    let v = post_json(e, "/networks/create", &body).await?;
    let id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("the engine answered without a network ID"))?;
    emit(&format!("{id}\n"))
}

// ---- ls ----

/// Go's `time.Time.String()` of an RFC 3339 timestamp as the engine sends
/// it: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn go_time(rfc3339: &str) -> String {
    use chrono::{DateTime, Timelike};
    let Ok(t) = DateTime::parse_from_rfc3339(rfc3339) else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
    let frac = nanos.trim_end_matches('0');
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{}{frac} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// The fields Docker's `networkContext` offers to `network ls --format`.
pub fn network_context(n: &Value, trunc: bool) -> Value {
    let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
    let b = |k: &str| n[k].as_bool().unwrap_or(false).to_string();
    let id = s("Id");
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Name": s("Name"),
        "Driver": s("Driver"),
        "Scope": s("Scope"),
        "IPv4": b("EnableIPv4"),
        "IPv6": b("EnableIPv6"),
        "Internal": b("Internal"),
        "Labels": labels.join(","),
        "CreatedAt": go_time(n["Created"].as_str().unwrap_or_default()),
    })
}

pub fn network_header() -> Value {
    json!({
        "ID": "NETWORK ID",
        "Name": "NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "IPv4": "IPV4",
        "IPv6": "IPV6",
        "Internal": "INTERNAL",
        "Labels": "LABELS",
        "CreatedAt": "CREATED AT",
    })
}

/// Docker's network `NewFormat`: `-q` only changes `table` and `raw`.
pub fn ls_format(format: Option<&str>, quiet: bool) -> Result<ListFormat> {
    let user = match format {
        None | Some("") | Some("table") if quiet => Some(NETWORKS_QUIET),
        Some("raw") if quiet => Some("network_id: {{.ID}}"),
        Some("raw") => Some(NETWORKS_RAW),
        f => f,
    };
    Ok(ListFormat::new(user, NETWORKS_TABLE)?)
}

/// `network ls` output for the engine's list, sorted by name as Docker does.
pub fn render_list(networks: &Value, format: &ListFormat, trunc: bool) -> Result<String> {
    let mut list: Vec<&Value> = networks.as_array().into_iter().flatten().collect();
    list.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or_default(),
            y["Name"].as_str().unwrap_or_default(),
        )
    });
    let rows: Vec<Value> = list
        .into_iter()
        .map(|n| network_context(n, trunc))
        .collect();
    Ok(format.render(&network_header(), &rows)?)
}

pub async fn list(e: &Engine, a: NetworkLsArgs) -> Result<()> {
    let filters = parse_filters(&a.filter)?;
    let format = ls_format(a.format.as_deref(), a.quiet)?;
    let v = e
        .get_json(&format!("/networks{}", filters_query(&filters)?))
        .await?;
    emit(&render_list(&v, &format, !a.no_trunc)?)
}

// ---- inspect ----

pub fn inspect_path(name: &str, verbose: bool) -> String {
    let q = if verbose { "?verbose=true" } else { "" };
    format!("/networks/{}{q}", escape(name))
}

pub async fn inspect(e: &Engine, a: NetworkInspectArgs) -> Result<()> {
    let template = match a.format.as_deref() {
        Some(f) if !f.is_empty() && f != "json" => Some(Template::parse(f)?),
        _ => None,
    };
    let paths: Vec<String> = a.names.iter().map(|n| inspect_path(n, a.verbose)).collect();
    super::volume::inspect_each(e, &paths, template.as_ref()).await
}

// ---- rm ----

/// Docker prints each failure as it happens, then `exit status 1`.
pub async fn remove(e: &Engine, a: NetworkRmArgs) -> Result<()> {
    let mut failed = false;
    for name in &a.names {
        let path = format!("/networks/{}", escape(name));
        match e.raw(Method::DELETE, &path, empty_body(), &[]).await {
            Ok(_) => emit(&format!("{name}\n"))?,
            Err(err) if a.force && is_status(&err, 404) => {}
            Err(err) => {
                eprintln!("{err:#}");
                failed = true;
            }
        }
    }
    if failed {
        eprintln!("exit status 1");
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

// ---- connect / disconnect ----

/// Docker's `opts.ValidateLink`: `name` or `name:alias`.
fn validate_link(l: &str) -> Result<()> {
    if l.is_empty() {
        bail!("invalid argument \"\" for \"--link\" flag: empty string specified for links");
    }
    if l.split(':').count() > 2 {
        bail!("invalid argument {l:?} for \"--link\" flag: bad format for links: {l}");
    }
    Ok(())
}

/// Docker's `convertDriverOpt`: `k=v` pairs, key and value trimmed.
fn driver_opts(opts: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for o in opts {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => bail!("invalid key/value pair format in driver options"),
        }
    }
    Ok(out)
}

/// The body of `POST /networks/{id}/connect` (the endpoint fields Docker's
/// CLI sets; `omitempty` ones left out when empty).
pub fn connect_body(a: &NetworkConnectArgs) -> Result<Value> {
    let driver_opts = driver_opts(&a.driver_opts)?;
    for l in &a.links {
        validate_link(l)?;
    }
    let mut ipam = Map::new();
    if !a.ip.is_empty() {
        ipam.insert("IPv4Address".into(), json!(a.ip));
    }
    if !a.ip6.is_empty() {
        ipam.insert("IPv6Address".into(), json!(a.ip6));
    }
    if !a.link_local_ips.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(a.link_local_ips));
    }
    Ok(json!({
        "Container": a.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": if a.links.is_empty() { Value::Null } else { json!(a.links) },
            "Aliases": a.aliases,
            "DriverOpts": driver_opts,
            "GwPriority": a.gw_priority,
        },
    }))
}

pub async fn connect(e: &Engine, a: NetworkConnectArgs) -> Result<()> {
    let body = connect_body(&a)?;
    let path = format!("/networks/{}/connect", escape(&a.network));
    post_json(e, &path, &body).await?;
    Ok(())
}

pub fn disconnect_body(a: &NetworkDisconnectArgs) -> Value {
    json!({"Container": a.container, "Force": a.force})
}

pub async fn disconnect(e: &Engine, a: NetworkDisconnectArgs) -> Result<()> {
    let path = format!("/networks/{}/disconnect", escape(&a.network));
    post_json(e, &path, &disconnect_body(&a)).await?;
    Ok(())
}

// ---- prune ----

/// What Docker prints after a prune: nothing when nothing went, else the
/// list and (from `Fprintln`) an empty line.
pub fn prune_report(v: &Value) -> String {
    let deleted: Vec<&str> = v["NetworksDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Networks:\n");
    for d in deleted {
        out.push_str(d);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Docker's `prompt.Confirm`: only `y`/`Y` (after trimming) confirms.
pub fn confirmed(answer: &str) -> bool {
    answer.trim().eq_ignore_ascii_case("y")
}

pub async fn prune(e: &Engine, a: NetworkPruneArgs) -> Result<()> {
    let filters = parse_filters(&a.filter)?;
    if !a.force {
        emit(&format!("{PRUNE_WARNING} [y/N] "))?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !confirmed(&answer) {
            // Docker's "cancelled" error: exit 0, nothing printed.
            return Ok(());
        }
    }
    let path = format!("/networks/prune{}", filters_query(&filters)?);
    let resp = e.raw(Method::POST, &path, empty_body(), &[]).await?;
    let v = read_json(resp, "/networks/prune").await?;
    emit(&prune_report(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::cmd::volume::render_inspect;
    use bytes::Bytes;
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<NetworkCommand, clap::Error> {
        let mut full = vec!["berth", "network"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).map(|c| match c.command {
            Some(Command::Network(n)) => n,
            other => panic!("{other:?}"),
        })
    }

    fn create_args(argv: &[&str]) -> NetworkCreateArgs {
        let mut full = vec!["create"];
        full.extend_from_slice(argv);
        match parse(&full).unwrap() {
            NetworkCommand::Create(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn connect_args(argv: &[&str]) -> NetworkConnectArgs {
        let mut full = vec!["connect"];
        full.extend_from_slice(argv);
        match parse(&full).unwrap() {
            NetworkCommand::Connect(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn create_err(argv: &[&str]) -> String {
        create_body(&create_args(argv), "1.47")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn create_minimal_body() {
        let a = create_args(&["net1"]);
        assert_eq!(
            create_body(&a, "1.47").unwrap(),
            json!({
                "Name": "net1",
                "Driver": "bridge",
                "Scope": "",
                "IPAM": {"Driver": "default", "Options": {}, "Config": []},
                "Internal": false,
                "Attachable": false,
                "Ingress": false,
                "ConfigOnly": false,
                "ConfigFrom": null,
                "Options": {},
                "Labels": {},
            })
        );
        assert_eq!(create_body(&a, "1.43").unwrap()["CheckDuplicate"], true);
    }

    #[test]
    fn create_full_body() {
        let a = create_args(&[
            "-d",
            "bridge",
            "--subnet",
            "172.28.0.0/16",
            "--gateway",
            "172.28.0.1",
            "--ip-range",
            "172.28.5.0/24",
            "--subnet=fd00::/64",
            "--aux-address",
            "host1=172.28.1.5",
            "--internal",
            "--attachable",
            "--label",
            "com.example=1",
            "--label",
            "bare",
            "-o",
            "com.docker.network.bridge.name=br0",
            "--opt",
            "mtu=1400",
            "--ipv6",
            "--ipam-opt",
            "x=y",
            "mynet",
        ]);
        assert_eq!(
            create_body(&a, "1.47").unwrap(),
            json!({
                "Name": "mynet",
                "Driver": "bridge",
                "Scope": "",
                "IPAM": {
                    "Driver": "default",
                    "Options": {"x": "y"},
                    "Config": [
                        {
                            "Subnet": "172.28.0.0/16",
                            "IPRange": "172.28.5.0/24",
                            "Gateway": "172.28.0.1",
                            "AuxiliaryAddresses": {"host1": "172.28.1.5"},
                        },
                        {"Subnet": "fd00::/64"},
                    ],
                },
                "Internal": true,
                "Attachable": true,
                "Ingress": false,
                "ConfigOnly": false,
                "ConfigFrom": null,
                "Options": {"com.docker.network.bridge.name": "br0", "mtu": "1400"},
                "Labels": {"com.example": "1", "bare": ""},
                "EnableIPv6": true,
            })
        );
    }

    #[test]
    fn create_flag_variants() {
        let b = create_body(&create_args(&["--ipv6=false", "--ipv4=false", "n"]), "1.47").unwrap();
        assert_eq!(b["EnableIPv6"], false);
        assert_eq!(b["EnableIPv4"], false);
        let b = create_body(&create_args(&["n"]), "1.47").unwrap();
        assert!(b.get("EnableIPv6").is_none() && b.get("EnableIPv4").is_none());
        let b = create_body(
            &create_args(&[
                "--config-from",
                "base",
                "--scope",
                "local",
                "--driver",
                "macvlan",
                "n",
            ]),
            "1.47",
        )
        .unwrap();
        assert_eq!(b["ConfigFrom"], json!({"Network": "base"}));
        assert_eq!(b["Scope"], "local");
        assert_eq!(b["Driver"], "macvlan");
        // pflag's string slices split on commas.
        let b = create_body(
            &create_args(&[
                "--subnet",
                "10.1.0.0/16,10.2.0.0/16",
                "--gateway",
                "10.2.0.1",
                "n",
            ]),
            "1.47",
        )
        .unwrap();
        assert_eq!(
            b["IPAM"]["Config"],
            json!([{"Subnet": "10.1.0.0/16"}, {"Subnet": "10.2.0.0/16", "Gateway": "10.2.0.1"}])
        );
    }

    #[test]
    fn create_validation_messages() {
        assert_eq!(
            create_err(&["--gateway", "10.0.0.1", "n"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            create_err(&["--ip-range", "10.0.0.0/24", "n"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16", "n"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/8", "--subnet", "10.0.0.0/8", "n"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1", "n"]),
            "no matching subnet for gateway 10.1.0.1"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/24", "--gateway", "bogus", "n"]),
            "no matching subnet for gateway bogus"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/24", "--ip-range", "10.9.0.0/24", "n"]),
            "no matching subnet for range 10.9.0.0/24"
        );
        assert_eq!(
            create_err(&["--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.7", "n"]),
            "invalid CIDR address: 10.0.0.7"
        );
        assert_eq!(
            create_err(&["--subnet", "nope", "--gateway", "10.0.0.1", "n"]),
            "invalid subnet: invalid CIDR address: nope"
        );
        assert_eq!(
            create_err(&[
                "--subnet",
                "10.0.0.0/16",
                "--ip-range",
                "10.0.1.0/24",
                "--ip-range",
                "10.0.2.0/24",
                "n"
            ]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            create_err(&[
                "--subnet",
                "10.0.0.0/16",
                "--subnet",
                "10.9.0.0/16",
                "--gateway",
                "10.0.0.1",
                "--gateway",
                "10.0.0.2",
                "n"
            ]),
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/16)"
        );
        assert_eq!(
            create_err(&[
                "--subnet",
                "10.0.0.0/16",
                "--subnet",
                "10.9.0.0/16",
                "--ip-range",
                "10.0.1.0/24",
                "--ip-range",
                "10.0.2.0/24",
                "n"
            ]),
            "cannot configure multiple ranges (10.0.2.0/24, 10.0.1.0/24) on the same subnet (10.0.0.0/16)"
        );
        assert_eq!(
            create_err(&["--aux-address", "a=10.0.0.5", "n"]),
            "no matching subnet for aux-address 10.0.0.5"
        );
        assert!(create_err(&["--label", "=x", "n"]).contains("empty name"));
    }

    #[test]
    fn cidr_matching() {
        assert!(subnet_matches("10.0.0.0/8", "10.255.1.2").unwrap());
        assert!(!subnet_matches("10.0.0.0/8", "11.0.0.1").unwrap());
        assert!(subnet_matches("10.0.0.5/24", "10.0.0.200").unwrap());
        assert!(subnet_matches("0.0.0.0/0", "1.2.3.4").unwrap());
        assert!(subnet_matches("fd00::/64", "fd00::1").unwrap());
        assert!(!subnet_matches("fd00::/64", "10.0.0.1").unwrap());
        assert!(subnet_matches("10.0.0.0/8", "::ffff:10.0.0.1").unwrap());
        assert!(subnet_matches("10.0.0.0/8", "10.1.0.0/16").unwrap());
        assert!(!subnet_matches("10.1.0.0/16", "10.0.0.0/8").unwrap());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0/").is_err());
        assert!(parse_cidr("10.0.0.0/+8").is_err());
        assert!(parse_cidr("fd00::/128").is_ok());
    }

    #[test]
    fn connect_request_body() {
        let a = connect_args(&[
            "--ip",
            "172.20.0.5",
            "--alias",
            "db",
            "--alias",
            "x,y",
            "--link",
            "other:o",
            "--driver-opt",
            "k = v ",
            "--gw-priority",
            "-3",
            "mynet",
            "web",
        ]);
        assert_eq!(a.network, "mynet");
        assert_eq!(
            connect_body(&a).unwrap(),
            json!({
                "Container": "web",
                "EndpointConfig": {
                    "IPAMConfig": {"IPv4Address": "172.20.0.5"},
                    "Links": ["other:o"],
                    "Aliases": ["db", "x", "y"],
                    "DriverOpts": {"k": "v"},
                    "GwPriority": -3,
                },
            })
        );
        let a = connect_args(&["n", "c"]);
        assert_eq!(
            connect_body(&a).unwrap(),
            json!({
                "Container": "c",
                "EndpointConfig": {
                    "IPAMConfig": {},
                    "Links": null,
                    "Aliases": [],
                    "DriverOpts": {},
                    "GwPriority": 0,
                },
            })
        );
        let a = connect_args(&[
            "--ip6",
            "fd00::5",
            "--link-local-ip",
            "169.254.0.9",
            "n",
            "c",
        ]);
        assert_eq!(
            connect_body(&a).unwrap()["EndpointConfig"]["IPAMConfig"],
            json!({"IPv6Address": "fd00::5", "LinkLocalIPs": ["169.254.0.9"]})
        );
        let e = connect_body(&connect_args(&["--driver-opt", "novalue", "n", "c"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid key/value pair format in driver options"
        );
        let e = connect_body(&connect_args(&["--link", "a:b:c", "n", "c"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
        );
        assert!(parse(&["connect", "n"]).is_err());
    }

    #[test]
    fn disconnect_request_body() {
        let d = |argv: &[&str]| {
            let mut full = vec!["disconnect"];
            full.extend_from_slice(argv);
            match parse(&full).unwrap() {
                NetworkCommand::Disconnect(a) => disconnect_body(&a),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(d(&["n", "c"]), json!({"Container": "c", "Force": false}));
        assert_eq!(
            d(&["-f", "n", "c"]),
            json!({"Container": "c", "Force": true})
        );
    }

    fn net(name: &str, id: &str) -> Value {
        json!({
            "Name": name,
            "Id": id,
            "Created": "2024-05-06T07:08:09.123456789Z",
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv4": true,
            "EnableIPv6": false,
            "Internal": false,
            "Labels": {"b": "2", "a": "1"},
        })
    }

    fn sample() -> Value {
        json!([
            net("web10", "c0ffee0123456789abcdef"),
            net("bridge", "0123456789abcdef0123"),
            net("web2", "fedcba9876543210fedc"),
            net("host", "aaaabbbbccccdddd"),
        ])
    }

    #[test]
    fn ls_table_like_docker() {
        let f = ls_format(None, false).unwrap();
        assert_eq!(
            render_list(&sample(), &f, true).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             0123456789ab   bridge    bridge    local\n\
             aaaabbbbcccc   host      bridge    local\n\
             fedcba987654   web2      bridge    local\n\
             c0ffee012345   web10     bridge    local\n"
        );
        let f = ls_format(None, true).unwrap();
        assert_eq!(
            render_list(&sample(), &f, false).unwrap(),
            "0123456789abcdef0123\naaaabbbbccccdddd\nfedcba9876543210fedc\nc0ffee0123456789abcdef\n"
        );
        let f = ls_format(Some("table"), true).unwrap();
        assert_eq!(
            render_list(&json!([]), &f, true).unwrap(),
            "",
            "quiet table has no header"
        );
        assert_eq!(
            render_list(&json!([]), &ls_format(None, false).unwrap(), true).unwrap(),
            "NETWORK ID   NAME      DRIVER    SCOPE\n"
        );
    }

    #[test]
    fn ls_templates() {
        let one = json!([net("n1", "0123456789abcdef0123")]);
        let f = ls_format(
            Some("{{.Name}} {{.IPv4}} {{.IPv6}} {{.Internal}} {{.Labels}}"),
            true,
        )
        .unwrap();
        assert_eq!(
            render_list(&one, &f, true).unwrap(),
            "n1 true false false a=1,b=2\n"
        );
        let f = ls_format(Some("{{.CreatedAt}}"), false).unwrap();
        assert_eq!(
            render_list(&one, &f, true).unwrap(),
            "2024-05-06 07:08:09.123456789 +0000 UTC\n"
        );
        let f = ls_format(Some("table {{.Name}}\t{{.Internal}}"), false).unwrap();
        assert_eq!(
            render_list(&one, &f, true).unwrap(),
            "NAME      INTERNAL\nn1        false\n"
        );
        let f = ls_format(Some("raw"), false).unwrap();
        assert_eq!(
            render_list(&one, &f, true).unwrap(),
            "network_id: 0123456789ab\nname: n1\ndriver: bridge\nscope: local\n\n"
        );
        let f = ls_format(Some("raw"), true).unwrap();
        assert_eq!(
            render_list(&one, &f, true).unwrap(),
            "network_id: 0123456789ab\n"
        );
        let f = ls_format(Some("json"), false).unwrap();
        let out = render_list(&one, &f, false).unwrap();
        assert_eq!(
            out,
            "{\"CreatedAt\":\"2024-05-06 07:08:09.123456789 +0000 UTC\",\"Driver\":\"bridge\",\
             \"ID\":\"0123456789abcdef0123\",\"IPv4\":\"true\",\"IPv6\":\"false\",\
             \"Internal\":\"false\",\"Labels\":\"a=1,b=2\",\"Name\":\"n1\",\"Scope\":\"local\"}\n"
        );
        let f = ls_format(Some("{{.Bogus}}"), false).unwrap();
        assert!(render_list(&one, &f, true).is_err());
    }

    #[test]
    fn go_time_strings() {
        assert_eq!(
            go_time("2024-05-06T07:08:09Z"),
            "2024-05-06 07:08:09 +0000 UTC"
        );
        assert_eq!(
            go_time("2024-05-06T07:08:09.5+02:00"),
            "2024-05-06 07:08:09.5 +0200 +0200"
        );
        assert_eq!(go_time(""), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn inspect_requests_and_output() {
        assert_eq!(inspect_path("my net", false), "/networks/my%20net");
        assert_eq!(inspect_path("n", true), "/networks/n?verbose=true");
        let raw = vec![Bytes::from(
            r#"{"Name":"n1","Id":"abc","IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"10.0.0.0/24"}]}}"#,
        )];
        assert_eq!(
            render_inspect(&raw, None).unwrap(),
            "[\n    {\n        \"Name\": \"n1\",\n        \"Id\": \"abc\",\n        \"IPAM\": {\n            \
             \"Driver\": \"default\",\n            \"Options\": null,\n            \"Config\": [\n                \
             {\n                    \"Subnet\": \"10.0.0.0/24\"\n                }\n            ]\n        }\n    }\n]\n"
        );
        let t = Template::parse("{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}").unwrap();
        assert_eq!(render_inspect(&raw, Some(&t)).unwrap(), "n1 10.0.0.0/24\n");
    }

    #[test]
    fn prune_output_and_prompt() {
        assert_eq!(
            prune_report(&json!({"NetworksDeleted": ["n1", "n2"]})),
            "Deleted Networks:\nn1\nn2\n\n"
        );
        assert_eq!(prune_report(&json!({"NetworksDeleted": null})), "");
        assert_eq!(prune_report(&json!({"NetworksDeleted": []})), "");
        assert!(confirmed("y\n") && confirmed(" Y ") && !confirmed("yes\n") && !confirmed(""));
        assert!(PRUNE_WARNING.starts_with(
            "WARNING! This will remove all custom networks not used by at least one container.\n"
        ));
        assert!(PRUNE_WARNING.ends_with("Are you sure you want to continue?"));
    }

    #[test]
    fn grammar() {
        assert!(matches!(
            parse(&["ls", "-q", "--no-trunc", "-f", "driver=bridge", "--filter", "name=x"]).unwrap(),
            NetworkCommand::Ls(a) if a.quiet && a.no_trunc && a.filter.len() == 2
        ));
        assert!(matches!(parse(&["list"]).unwrap(), NetworkCommand::Ls(_)));
        assert!(matches!(
            parse(&["remove", "-f", "a", "b"]).unwrap(),
            NetworkCommand::Rm(a) if a.force && a.names == ["a", "b"]
        ));
        assert!(parse(&["rm"]).is_err());
        assert!(parse(&["inspect"]).is_err());
        assert!(parse(&["create"]).is_err());
        assert!(parse(&["create", "a", "b"]).is_err());
        assert!(matches!(
            parse(&["inspect", "-v", "-f", "{{.Name}}", "a", "b"]).unwrap(),
            NetworkCommand::Inspect(a) if a.verbose && a.names.len() == 2 && a.format.is_some()
        ));
        assert!(matches!(
            parse(&["prune", "-f", "--filter", "until=24h", "--filter", "label=a"]).unwrap(),
            NetworkCommand::Prune(a) if a.force && a.filter == ["until=24h", "label=a"]
        ));
        assert!(parse(&["prune", "-a"]).is_err());
        assert!(parse(&["disconnect", "n"]).is_err());
    }
}
