//! `RUN --mount=[type=TYPE][,option=value…]`: bind (default), cache,
//! tmpfs, secret and ssh mounts with the options and defaults of the
//! Dockerfile reference ("RUN --mount"). The value is CSV: a field may be
//! double-quoted to hold a comma.

use serde::Serialize;

use crate::flags::{parse_bool, parse_size};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a `RUN`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// Stage, image or named context for bind/cache mounts.
    pub from: Option<String>,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub required: bool,
    pub readonly: bool,
    pub size: Option<u64>,
    /// Secret exposed as this environment variable.
    pub env: Option<String>,
}

fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn bool_opt(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some(v) => parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v:?}")),
    }
}

fn number(key: &str, value: Option<&str>, radix: u32) -> Result<u32, String> {
    let v = value.ok_or_else(|| format!("mount option {key} requires a value"))?;
    u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {key}: {v:?}"))
}

/// Parses one `--mount` value.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        readonly: true,
        size: None,
        env: None,
    };
    let fields = csv_fields(value);
    // The type decides the defaults, so read it first.
    let mut readonly: Option<bool> = None;
    for field in &fields {
        if let Some(("type", t)) = field.split_once('=') {
            m.kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                _ => return Err(format!("unsupported mount type {t:?}")),
            };
        }
    }
    for field in fields.iter().filter(|f| !f.is_empty()) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let text = || {
            val.map(str::to_string)
                .ok_or_else(|| format!("mount option {key} requires a value"))
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = Some(text()?),
            "source" | "src" => m.source = Some(text()?),
            "from" => m.from = Some(text()?),
            "id" => m.id = Some(text()?),
            "env" => m.env = Some(text()?),
            "sharing" => {
                m.sharing = match text()?.as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => return Err(format!("unsupported sharing value {other:?}")),
                }
            }
            "mode" => m.mode = Some(number(&key, val, 8)?),
            "uid" => m.uid = Some(number(&key, val, 10)?),
            "gid" => m.gid = Some(number(&key, val, 10)?),
            "required" => m.required = bool_opt(&key, val)?,
            "ro" | "readonly" => readonly = Some(bool_opt(&key, val)?),
            "rw" | "readwrite" => readonly = Some(!bool_opt(&key, val)?),
            "size" => {
                let v = text()?;
                m.size = Some(parse_size(&v).ok_or_else(|| format!("invalid size {v:?}"))?);
            }
            _ => return Err(format!("unexpected key {key:?} in {field:?}")),
        }
    }
    m.readonly = readonly.unwrap_or(matches!(
        m.kind,
        MountType::Bind | MountType::Secret | MountType::Ssh
    ));
    match m.kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs if m.target.is_none() => {
            return Err(format!(
                "mount type {:?} requires a target",
                kind_name(m.kind)
            ));
        }
        MountType::Cache if m.id.is_none() => m.id = m.target.clone(),
        MountType::Secret => {
            if m.id.is_none() {
                m.id = m
                    .target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').find(|s| !s.is_empty()))
                    .map(str::to_string);
            }
            let Some(id) = m.id.clone() else {
                return Err("secret mount requires an id or a target".into());
            };
            if m.target.is_none() && m.env.is_none() {
                m.target = Some(format!("/run/secrets/{id}"));
            }
        }
        MountType::Ssh if m.id.is_none() => m.id = Some("default".into()),
        _ => {}
    }
    Ok(m)
}

fn kind_name(k: MountType) -> &'static str {
    match k {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_defaults() {
        let m =
            parse_mount("type=cache,target=/var/cache/apt,sharing=locked,mode=0700,uid=1").unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.id.as_deref(), Some("/var/cache/apt"));
        assert_eq!(m.sharing, Sharing::Locked);
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.uid, Some(1));
        assert!(!m.readonly);
    }

    #[test]
    fn bind_and_secret_and_ssh() {
        let m = parse_mount("target=.,from=build,source=/out,rw").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.from.as_deref(), Some("build"));
        assert!(!m.readonly);
        let m = parse_mount("type=secret,id=aws,required").unwrap();
        assert_eq!(m.target.as_deref(), Some("/run/secrets/aws"));
        assert!(m.required);
        let m = parse_mount("type=secret,target=/root/.aws/credentials").unwrap();
        assert_eq!(m.id.as_deref(), Some("credentials"));
        let m = parse_mount("type=secret,id=API_KEY,env=API_KEY").unwrap();
        assert_eq!(m.target, None);
        assert_eq!(
            parse_mount("type=ssh").unwrap().id.as_deref(),
            Some("default")
        );
        let m = parse_mount("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = parse_mount("\"target=/a,b\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn mount_errors() {
        assert!(parse_mount("type=nfs,target=/x").is_err());
        assert!(parse_mount("type=cache").is_err());
        assert!(parse_mount("type=cache,target=/x,sharing=no").is_err());
        assert!(parse_mount("type=cache,target=/x,bogus=1")
            .unwrap_err()
            .contains("bogus"));
        assert!(parse_mount("type=cache,target=/x,mode=999").is_err());
    }
}
