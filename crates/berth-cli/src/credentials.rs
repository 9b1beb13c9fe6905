//! Registry credentials in docker's client config (`$DOCKER_CONFIG/config.json`,
//! default `~/.docker/config.json`): `auths` maps a registry (Docker Hub
//! is `https://index.docker.io/v1/`) to `{"auth": base64("user:pass")}`.
//! The CLI reads them to send `X-Registry-Auth` and writes them on login.

use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

pub fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn read_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if !b.iter().all(u8::is_ascii_whitespace) => {
            match serde_json::from_slice::<Value>(&b)
                .with_context(|| format!("reading {}", p.display()))?
            {
                Value::Object(m) => Ok(m),
                _ => anyhow::bail!("{} is not a JSON object", p.display()),
            }
        }
        Ok(_) => Ok(Map::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn write_config(m: &Map<String, Value>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = config_path();
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = p.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::io::Write::write_all(&mut f, serde_json::to_string_pretty(m)?.as_bytes())?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// The `auths` key of a registry domain or login server argument.
pub fn key_for(server: &str) -> String {
    let s = server.trim();
    let host = s.split_once("://").map_or(s, |(_, r)| r);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.into(),
        h => h.to_string(),
    }
}

/// (username, password) stored for `key`.
pub fn lookup(key: &str) -> Option<(String, String)> {
    let m = read_config().ok()?;
    let auths = m.get("auths")?.as_object()?;
    let entry = auths.get(key).or_else(|| {
        // Entries are sometimes written with a scheme: `http://h:5000`.
        auths
            .iter()
            .find(|(k, _)| key_for(k) == key)
            .map(|(_, v)| v)
    })?;
    let auth = entry.get("auth")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub fn store(key: &str, user: &str, password: &str) -> Result<()> {
    let mut m = read_config()?;
    let auths = m.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    auths
        .as_object_mut()
        .expect("object")
        .insert(key.to_string(), json!({ "auth": enc }));
    write_config(&m)
}

/// Removes the entry; false when there was none.
pub fn erase(key: &str) -> Result<bool> {
    let mut m = read_config()?;
    let removed = m
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .map(|a| a.remove(key).is_some())
        .unwrap_or(false);
    if removed {
        write_config(&m)?;
    }
    Ok(removed)
}

/// The `X-Registry-Auth` header value for an image reference's registry
/// (base64url JSON, as docker sends it); `None` without stored credentials.
pub fn registry_auth_header(domain: &str) -> Option<String> {
    let key = key_for(domain);
    let (u, p) = lookup(&key)?;
    let v = json!({"username": u, "password": p, "serveraddress": key});
    Some(base64::engine::general_purpose::URL_SAFE.encode(v.to_string()))
}
