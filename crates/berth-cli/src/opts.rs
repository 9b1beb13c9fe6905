//! Parsers for the container flags whose values have a grammar of their
//! own (`-p`, `-v`, `--mount`, `--ulimit`, sizes, durations, `--env-file`,
//! `--restart`, …), worded and shaped as Docker's CLI (`opts`, `go-units`,
//! `go-connections/nat`) parses them. Pure functions returning the
//! `berth_wire` parts (`Mount`, `Ulimit`, `RestartPolicy`, …); the create
//! request is assembled from them in `cmd::create`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use berth_wire::container_types::{
    BindOptions, DeviceMapping, HealthConfig, Mount, PortBinding, RestartPolicy, TmpfsOptions,
    Ulimit, VolumeOptions,
};

/// `units.RAMInBytes`: `32m` → 33554432; binary multiples, optional `i`/`b`.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let invalid = || anyhow!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let mult: i64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => return Err(invalid()),
            };
            (&t[..t.len() - 1], mult)
        }
        _ => (t, 1),
    };
    // go-units allows one space between the number and the unit.
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid());
    }
    if !num.chars().all(|c| c.is_ascii_digit() || c == '.') || num.ends_with('.') {
        return Err(invalid());
    }
    let v: f64 = num.parse().map_err(|_| invalid())?;
    Ok((v * mult as f64) as i64)
}

/// `--memory-swap`: `-1` means unlimited.
pub fn memory_swap(s: &str) -> Result<i64> {
    if s == "-1" {
        Ok(-1)
    } else {
        ram_in_bytes(s)
    }
}

/// `--cpus 1.5` → NanoCpus, exactly (Docker uses a rational number).
pub fn nano_cpus(s: &str) -> Result<i64> {
    let bad = || anyhow!("failed to parse {s} as a rational number");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        bail!("value is too precise");
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    let n = int
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_nanos))
        .ok_or_else(bad)?;
    Ok(if neg { -n } else { n })
}

/// Go's `time.ParseDuration`, in nanoseconds (`berth_core::units`).
pub fn go_duration(s: &str) -> Result<i64> {
    berth_core::units::go_duration(s).map_err(|e| anyhow!(e))
}

/// One `-p` mapping: the port key (`80/tcp`) and its host binding.
#[derive(Debug, Clone, PartialEq)]
pub struct PortMapping {
    pub port: String,
    pub binding: PortBinding,
}

fn port_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a.parse().ok()?;
    let b: u64 = b.parse().ok()?;
    (a <= b && b <= 65535).then_some((a, b))
}

/// `nat.ParsePortSpec`: `[ip:][hostPort:]containerPort[/proto]`, ranges allowed.
pub fn parse_port_spec(raw: &str) -> Result<Vec<PortMapping>> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((p, proto)) => (p, proto.to_string()),
        None => (container, "tcp".to_string()),
    };
    if let Some(inner) = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        ip = inner.to_string();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {raw}<empty>");
    }
    let (start, end) =
        port_range(container).ok_or_else(|| anyhow!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        port_range(host_port).ok_or_else(|| anyhow!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != hend - hstart && end != start {
        bail!("invalid ranges specified for container and host Ports: {container} and {host_port}");
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut hp = if host_port.is_empty() {
            String::new()
        } else {
            (hstart + i).to_string()
        };
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push(PortMapping {
            port: format!("{}/{proto}", start + i),
            binding: PortBinding {
                host_ip: ip.clone(),
                host_port: hp,
            },
        });
    }
    Ok(out)
}

/// `--expose 80` / `--expose 7000-7010/udp` → port keys.
pub fn parse_expose(raw: &str) -> Result<Vec<String>> {
    let (ports, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let (a, b) =
        port_range(ports).ok_or_else(|| anyhow!("invalid range format for --expose: {raw}"))?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// Splits `-v` values into binds (`src:dst[:mode]`) and anonymous volumes
/// (`/dst`), as Docker's CLI does before the daemon validates them.
pub fn split_volumes(specs: &[String], cwd: &str) -> (Vec<String>, Vec<String>) {
    let mut binds = Vec::new();
    let mut anon = Vec::new();
    for spec in specs {
        match spec.split_once(':') {
            None => anon.push(spec.clone()),
            Some((host, rest)) => {
                if host == "." || host.starts_with("./") || host == ".." || host.starts_with("../")
                {
                    let abs = clean_path(&format!("{cwd}/{host}"));
                    binds.push(format!("{abs}:{rest}"));
                } else {
                    binds.push(spec.clone());
                }
            }
        }
    }
    (binds, anon)
}

/// Lexically cleans an absolute path (`filepath.Clean`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Splits a CSV record (Go's `encoding/csv` with default settings).
fn csv_fields(s: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == ',' {
            fields.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        bail!("extraneous or missing \" in quoted-field");
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_bool(v: &str, key: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => bail!("invalid value for {key}: {v}"),
    }
}

/// `--mount type=bind,source=/x,target=/y,readonly` → a `Mount`.
pub fn parse_mount(value: &str, cwd: &str) -> Result<Mount> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    // An option group given at all, even with zero values, fixes the type.
    let mut bind: Option<BindOptions> = None;
    let mut volume: Option<VolumeOptions> = None;
    let mut tmpfs: Option<TmpfsOptions> = None;
    let mut has_target = false;
    for field in csv_fields(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume.get_or_insert_default().no_copy = true,
                _ => bail!("invalid field '{field}' must be a key=value pair"),
            }
            continue;
        };
        match key.as_str() {
            "type" => m.kind = val.to_lowercase(),
            "source" | "src" => {
                m.source = if val.starts_with('.') {
                    clean_path(&format!("{cwd}/{val}"))
                } else {
                    val
                };
            }
            "target" | "dst" | "destination" => {
                m.target = val;
                has_target = true;
            }
            "readonly" | "ro" => m.read_only = parse_bool(&val, &key)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => {
                bind.get_or_insert_default().propagation = val.to_lowercase();
            }
            "volume-nocopy" => {
                volume.get_or_insert_default().no_copy = parse_bool(&val, &key)?;
            }
            "volume-subpath" => volume.get_or_insert_default().subpath = val,
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                volume
                    .get_or_insert_default()
                    .labels
                    .get_or_insert_default()
                    .insert(k.into(), v.into());
            }
            "volume-driver" => {
                let v = volume.get_or_insert_default();
                v.driver_config.get_or_insert_default().name = val;
            }
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((&val, ""));
                volume
                    .get_or_insert_default()
                    .driver_config
                    .get_or_insert_default()
                    .options
                    .get_or_insert_default()
                    .insert(k.into(), v.into());
            }
            "tmpfs-size" => tmpfs.get_or_insert_default().size_bytes = ram_in_bytes(&val)?,
            "tmpfs-mode" => {
                tmpfs.get_or_insert_default().mode = u32::from_str_radix(&val, 8)
                    .map_err(|_| anyhow!("invalid value for {key}: {val}"))?;
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    let kind = m.kind.clone();
    if kind.is_empty() {
        bail!("type is required");
    }
    if !has_target {
        bail!("target is required");
    }
    if volume.is_some() && kind != "volume" {
        bail!("cannot mix 'volume-*' options with mount type '{kind}'");
    }
    if bind.is_some() && kind != "bind" {
        bail!("cannot mix 'bind-*' options with mount type '{kind}'");
    }
    if tmpfs.is_some() && kind != "tmpfs" {
        bail!("cannot mix 'tmpfs-*' options with mount type '{kind}'");
    }
    m.bind_options = bind;
    m.volume_options = volume;
    m.tmpfs_options = tmpfs;
    Ok(m)
}

/// `units.ParseUlimit`: `nofile=1024[:2048]`.
pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    const KNOWN: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !KNOWN.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let parts: Vec<&str> = limits.split(':').collect();
    if parts.len() > 2 {
        bail!("too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`");
    }
    let num = |p: &str| -> Result<i64> {
        p.parse()
            .map_err(|_| anyhow!("invalid ulimit argument: {s}"))
    };
    let soft = num(parts[0])?;
    let hard = match parts.get(1) {
        Some(h) => num(h)?,
        None => soft,
    };
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn parse_device(s: &str) -> Result<DeviceMapping> {
    let valid_mode =
        |m: &str| !m.is_empty() && m.len() <= 3 && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let arr: Vec<&str> = s.split(':').collect();
    let (src, mut dst, mut perms) = (arr[0], "", "rwm");
    match arr.len() {
        1 => {}
        2 => {
            if valid_mode(arr[1]) {
                perms = arr[1];
            } else {
                dst = arr[1];
            }
        }
        3 => {
            dst = arr[1];
            perms = arr[2];
            if !valid_mode(perms) {
                bail!("invalid device mode: {perms}");
            }
        }
        _ => bail!("invalid device specification: {s}"),
    }
    if dst.is_empty() {
        dst = src;
    }
    Ok(DeviceMapping {
        path_on_host: src.into(),
        path_in_container: dst.into(),
        cgroup_permissions: perms.into(),
    })
}

/// `-e NAME` takes the value from the CLI's environment when it has one.
pub fn expand_env(val: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let (k, _) = val.split_once('=').unwrap_or((val, ""));
    if k.is_empty() {
        bail!("invalid environment variable: {val}");
    }
    if val.contains('=') {
        return Ok(val.to_string());
    }
    Ok(match lookup(k) {
        Some(v) => format!("{k}={v}"),
        None => val.to_string(),
    })
}

/// Docker's `kvfile.Parse`: `#` comments and blank lines skipped, `NAME`
/// alone taken from the environment (dropped when unset).
pub fn parse_env_file(
    content: &str,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, raw) in content.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t']);
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let var = var.trim_start();
        if var.is_empty() {
            bail!("no variable name on line '{line}'");
        }
        if var.contains(char::is_whitespace) {
            bail!("variable '{var}' contains whitespaces");
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(var.trim()) {
                    out.push(format!("{}={v}", var.trim()));
                }
            }
        }
    }
    let _ = path;
    Ok(out)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn parse_restart(policy: &str) -> Result<RestartPolicy> {
    if policy.is_empty() {
        return Ok(RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        });
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        bail!("invalid restart policy format: no policy provided before colon");
    }
    let count: i64 = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            anyhow!("invalid restart policy format: maximum retry count must be an integer")
        })?
    };
    Ok(RestartPolicy {
        name: name.into(),
        maximum_retry_count: count,
    })
}

/// True for the restart policies that do not restart (`no` or unset).
pub fn restart_is_none(policy: &RestartPolicy) -> bool {
    matches!(policy.name.as_str(), "no" | "")
}

/// Health-check flags as given.
#[derive(Debug, Default, Clone)]
pub struct HealthFlags<'a> {
    pub cmd: Option<&'a str>,
    pub interval: Option<&'a str>,
    pub timeout: Option<&'a str>,
    pub start_period: Option<&'a str>,
    pub start_interval: Option<&'a str>,
    pub retries: Option<i64>,
    pub none: bool,
}

/// Builds `Config.Healthcheck` as Docker's `parse` does; `None` keeps the image's.
pub fn parse_health(h: &HealthFlags) -> Result<Option<HealthConfig>> {
    let any = h.cmd.is_some_and(|c| !c.is_empty())
        || h.interval.is_some()
        || h.timeout.is_some()
        || h.start_period.is_some()
        || h.start_interval.is_some()
        || h.retries.is_some_and(|r| r != 0);
    if h.none {
        if any {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    let duration = |flag: &str, v: Option<&str>| -> Result<i64> {
        let Some(v) = v else { return Ok(0) };
        let d = go_duration(v)
            .map_err(|e| anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {e}"))?;
        if d < 0 {
            bail!("{flag} cannot be negative");
        }
        Ok(d)
    };
    let mut out = HealthConfig {
        test: match h.cmd.filter(|c| !c.is_empty()) {
            Some(c) => vec!["CMD-SHELL".into(), c.into()],
            None => Vec::new(),
        },
        interval: duration("--health-interval", h.interval)?,
        timeout: duration("--health-timeout", h.timeout)?,
        start_period: duration("--health-start-period", h.start_period)?,
        start_interval: duration("--health-start-interval", h.start_interval)?,
        retries: 0,
    };
    out.retries = h.retries.unwrap_or(0);
    if out.retries < 0 {
        bail!("--health-retries cannot be negative");
    }
    Ok(Some(out))
}

/// `k=v` list → map; `k` alone maps to "".
pub fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

/// `--cap-add net_admin` → `CAP_NET_ADMIN` (`ALL` stays).
pub fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn js<T: serde::Serialize>(v: T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(ram_in_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(ram_in_bytes("32MB").unwrap(), 32 << 20);
        assert_eq!(ram_in_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("64KiB").unwrap(), 64 << 10);
        assert!(ram_in_bytes("32x").is_err());
        assert!(ram_in_bytes("m").is_err());
        assert_eq!(memory_swap("-1").unwrap(), -1);
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(nano_cpus("0.000000001").unwrap(), 1);
        assert_eq!(nano_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(nano_cpus(".5").unwrap(), 500_000_000);
        assert!(nano_cpus("0.0000000001").is_err());
        assert!(nano_cpus("abc").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("5s").unwrap(), 5_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("100ms").unwrap(), 100_000_000);
        assert_eq!(go_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("5").is_err());
        assert!(go_duration("x").is_err());
        assert!(go_duration("5d").is_err());
    }

    fn pm(port: &str, ip: &str, hp: &str) -> PortMapping {
        PortMapping {
            port: port.into(),
            binding: PortBinding {
                host_ip: ip.into(),
                host_port: hp.into(),
            },
        }
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port_spec("8080:80").unwrap(),
            vec![pm("80/tcp", "", "8080")]
        );
        assert_eq!(
            parse_port_spec("127.0.0.1:8080:80/udp").unwrap(),
            vec![pm("80/udp", "127.0.0.1", "8080")]
        );
        assert_eq!(parse_port_spec("80").unwrap(), vec![pm("80/tcp", "", "")]);
        assert_eq!(
            parse_port_spec("0.0.0.0::80").unwrap(),
            vec![pm("80/tcp", "0.0.0.0", "")]
        );
        assert_eq!(
            parse_port_spec("[::1]:53:53/udp").unwrap(),
            vec![pm("53/udp", "::1", "53")]
        );
        assert_eq!(
            parse_port_spec("8000-8001:80-81").unwrap(),
            vec![pm("80/tcp", "", "8000"), pm("81/tcp", "", "8001")]
        );
        assert_eq!(
            parse_port_spec("8000-8010:80").unwrap(),
            vec![pm("80/tcp", "", "8000-8010")]
        );
        assert!(parse_port_spec("1.2.3:80:80").is_err());
        assert!(parse_port_spec("80/xyz").is_err());
        assert!(parse_port_spec("8000-8001:80-83").is_err());
        assert_eq!(
            parse_port_spec("x:80").unwrap_err().to_string(),
            "invalid hostPort: x"
        );
        assert_eq!(
            parse_expose("7000-7001/udp").unwrap(),
            vec!["7000/udp", "7001/udp"]
        );
    }

    #[test]
    fn volumes() {
        let specs: Vec<String> = ["/tmp:/data:ro", "vol:/v", "/anon", "./rel:/r"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (binds, anon) = split_volumes(&specs, "/home/u");
        assert_eq!(binds, vec!["/tmp:/data:ro", "vol:/v", "/home/u/rel:/r"]);
        assert_eq!(anon, vec!["/anon"]);
    }

    #[test]
    fn mounts() {
        assert_eq!(
            js(parse_mount("type=bind,source=/x,target=/y,readonly", "/").unwrap()),
            json!({"Type": "bind", "Source": "/x", "Target": "/y", "ReadOnly": true})
        );
        assert_eq!(
            js(parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", "/").unwrap()),
            json!({"Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": false,
                   "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1016}})
        );
        assert_eq!(
            js(parse_mount("src=v,target=/v,ro=false,volume-opt=o=1", "/").unwrap()),
            json!({"Type": "volume", "Source": "v", "Target": "/v", "ReadOnly": false,
                   "VolumeOptions": {"DriverConfig": {"Options": {"o": "1"}}}})
        );
        assert_eq!(
            parse_mount("\"type=bind\",src=./a,dst=/a", "/w")
                .unwrap()
                .source,
            "/w/a"
        );
        // A zero-valued option still ties the mount to its type.
        assert_eq!(
            js(parse_mount("target=/v,volume-nocopy=false", "/").unwrap()),
            json!({"Type": "volume", "Source": "", "Target": "/v", "ReadOnly": false,
                   "VolumeOptions": {}})
        );
        assert!(parse_mount("type=bind,target=/v,volume-nocopy=false", "/").is_err());
        assert_eq!(
            parse_mount("type=bind,src=/a", "/")
                .unwrap_err()
                .to_string(),
            "target is required"
        );
        assert!(parse_mount("type=tmpfs,target=/t,volume-nocopy", "/").is_err());
        assert!(parse_mount("type=bind,target=/t,bogus=1", "/").is_err());
        assert!(parse_mount("type=bind,target=/t,ro=maybe", "/").is_err());
    }

    #[test]
    fn ulimits_devices() {
        assert_eq!(
            js(parse_ulimit("nofile=1024:2048").unwrap()),
            json!({"Name": "nofile", "Hard": 2048, "Soft": 1024})
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap().hard, 10);
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
        assert_eq!(
            js(parse_device("/dev/sda:/dev/xvda:r").unwrap()),
            json!({"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda", "CgroupPermissions": "r"})
        );
        assert_eq!(
            parse_device("/dev/fuse").unwrap().path_in_container,
            "/dev/fuse"
        );
        assert_eq!(
            parse_device("/dev/fuse:rw").unwrap().cgroup_permissions,
            "rw"
        );
    }

    #[test]
    fn env_files() {
        let lookup = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let content = "\u{feff}A=1\n  # comment\n\nB=two words \nHOME_X\nUNSET\n\tC==x\n";
        assert_eq!(
            parse_env_file(content, "f", &lookup).unwrap(),
            vec!["A=1", "B=two words ", "HOME_X=/root", "C==x"]
        );
        assert!(parse_env_file("BAD VAR=1\n", "f", &lookup).is_err());
        assert_eq!(expand_env("HOME_X", &lookup).unwrap(), "HOME_X=/root");
        assert_eq!(expand_env("UNSET", &lookup).unwrap(), "UNSET");
        assert_eq!(expand_env("A=", &lookup).unwrap(), "A=");
        assert!(expand_env("=x", &lookup).is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            js(parse_restart("on-failure:3").unwrap()),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(parse_restart("always").unwrap().maximum_retry_count, 0);
        assert_eq!(parse_restart("").unwrap().name, "no");
        assert!(restart_is_none(&parse_restart("no").unwrap()));
        assert!(!restart_is_none(&parse_restart("unless-stopped").unwrap()));
        assert!(parse_restart(":3").is_err());
        assert!(parse_restart("on-failure:x").is_err());
    }

    #[test]
    fn healthchecks() {
        let h = HealthFlags {
            cmd: Some("curl -f localhost"),
            interval: Some("5s"),
            timeout: Some("1s"),
            start_period: Some("0s"),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            js(parse_health(&h).unwrap().unwrap()),
            json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000i64,
                   "Timeout": 1_000_000_000, "Retries": 3})
        );
        assert_eq!(parse_health(&HealthFlags::default()).unwrap(), None);
        let none = HealthFlags {
            none: true,
            ..Default::default()
        };
        assert_eq!(
            js(parse_health(&none).unwrap().unwrap()),
            json!({"Test": ["NONE"]})
        );
        let both = HealthFlags {
            none: true,
            retries: Some(1),
            ..Default::default()
        };
        assert!(parse_health(&both).is_err());
        let neg = HealthFlags {
            retries: Some(-1),
            ..Default::default()
        };
        assert!(parse_health(&neg).is_err());
        let bad = HealthFlags {
            interval: Some("5"),
            ..Default::default()
        };
        assert!(parse_health(&bad).is_err());
    }

    #[test]
    fn caps_and_kv() {
        assert_eq!(normalize_cap("net_admin"), "CAP_NET_ADMIN");
        assert_eq!(normalize_cap("all"), "ALL");
        assert_eq!(normalize_cap("CAP_SYS_ADMIN"), "CAP_SYS_ADMIN");
        let m = kv_map(&["a=b".into(), "c".into(), "d=e=f".into()]);
        assert_eq!(m["a"], "b");
        assert_eq!(m["c"], "");
        assert_eq!(m["d"], "e=f");
    }
}
