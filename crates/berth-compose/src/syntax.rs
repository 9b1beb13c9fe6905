//! The short syntaxes of `ports` and `volumes` (Compose Specification,
//! services: ports, volumes), rewritten into their long forms.

use serde_json::{json, Map, Value};

/// `[[HOST_IP:]PUBLISHED:]TARGET[-RANGE][/PROTOCOL]` → one long-syntax
/// entry per target port (a target range expands, paired with a published
/// range of the same length).
pub fn port(s: &str) -> Result<Vec<Value>, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_string()),
        None => (s, "tcp".to_string()),
    };
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {s:?}: unclosed [ of an IPv6 address"))?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(format!("invalid port {s:?}: too many colons")),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest.as_str()),
    };
    let targets = range(target).map_err(|e| format!("invalid port {s:?}: {e}"))?;
    let published = match published {
        Some("") | None => None,
        Some(p) => Some((p, range(p).map_err(|e| format!("invalid port {s:?}: {e}"))?)),
    };
    let mut out = Vec::new();
    for (i, t) in (targets.0..=targets.1).enumerate() {
        let mut m = Map::new();
        m.insert("target".into(), json!(t));
        if let Some((text, (lo, hi))) = &published {
            let n = targets.1 - targets.0;
            let p = if hi - lo == n && n > 0 {
                (lo + i as u32).to_string()
            } else {
                text.to_string()
            };
            m.insert("published".into(), json!(p));
        }
        if let Some(ip) = &host_ip {
            m.insert("host_ip".into(), json!(ip));
        }
        m.insert("protocol".into(), json!(protocol));
        m.insert("mode".into(), json!("ingress"));
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn range(s: &str) -> Result<(u32, u32), String> {
    let num = |p: &str| {
        p.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("{p:?} is not a port number"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("range {s} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let n = num(s)?;
            Ok((n, n))
        }
    }
}

/// `[SOURCE:]TARGET[:MODE]` → a long-syntax volume. A source that is a
/// path (`/`, `.`, `~`) makes a bind mount, a name a named volume, none an
/// anonymous volume.
pub fn volume(s: &str) -> Result<Value, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return Err(format!("invalid volume {s:?}: too many colons")),
    };
    if target.is_empty() {
        return Err(format!("invalid volume {s:?}: no target"));
    }
    let mut m = Map::new();
    let kind = match source {
        None => "volume",
        Some(src) if src.starts_with(['/', '.', '~']) => "bind",
        Some(_) => "volume",
    };
    m.insert("type".into(), json!(kind));
    if let Some(src) = source {
        m.insert("source".into(), json!(src));
    }
    m.insert("target".into(), json!(target));
    let mut bind = Map::new();
    let mut volume = Map::new();
    for opt in mode.into_iter().flat_map(|m| m.split(',')) {
        match opt {
            "ro" => {
                m.insert("read_only".into(), json!(true));
            }
            "rw" => {}
            "nocopy" => {
                volume.insert("nocopy".into(), json!(true));
            }
            "z" | "Z" => {
                bind.insert("selinux".into(), json!(opt));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.insert("propagation".into(), json!(opt));
            }
            "cached" | "delegated" | "consistent" => {
                m.insert("consistency".into(), json!(opt));
            }
            other => return Err(format!("invalid volume {s:?}: unknown mode {other:?}")),
        }
    }
    if kind == "bind" {
        bind.insert("create_host_path".into(), json!(true));
        m.insert("bind".into(), Value::Object(bind));
    } else if !volume.is_empty() {
        m.insert("volume".into(), Value::Object(volume));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            port("80").unwrap(),
            vec![json!({"target": 80, "protocol": "tcp", "mode": "ingress"})]
        );
        assert_eq!(
            port("127.0.0.1:8080:80/udp").unwrap(),
            vec![
                json!({"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "udp", "mode": "ingress"})
            ]
        );
        assert_eq!(port("[::1]:8080:80").unwrap()[0]["host_ip"], json!("::1"));
        let r = port("9090-9091:8080-8081").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1]["published"], json!("9091"));
        assert_eq!(r[1]["target"], json!(8081));
        assert_eq!(
            port("5000-5010:80").unwrap()[0]["published"],
            json!("5000-5010")
        );
        assert!(port("a:b").is_err());
        assert!(port("99999").is_err());
    }

    #[test]
    fn volumes() {
        assert_eq!(
            volume("/data").unwrap(),
            json!({"type": "volume", "target": "/data"})
        );
        assert_eq!(
            volume("db:/var/lib/db:ro,nocopy").unwrap(),
            json!({"type": "volume", "source": "db", "target": "/var/lib/db", "read_only": true, "volume": {"nocopy": true}})
        );
        assert_eq!(
            volume("./conf:/etc/conf:rslave").unwrap(),
            json!({"type": "bind", "source": "./conf", "target": "/etc/conf", "bind": {"propagation": "rslave", "create_host_path": true}})
        );
        assert!(volume("a:b:c:d").is_err());
        assert!(volume("a:b:bogus").is_err());
    }
}
