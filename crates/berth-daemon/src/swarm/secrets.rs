//! Swarm secrets and configs: named blobs that services mount into their
//! tasks.
//!
//! Both are created once (name unique among their kind, data required),
//! may change only their labels afterwards, and cannot be removed while a
//! service refers to them. A secret's data is sealed with the swarm's key
//! ([`super::vault`]) before it is stored and is never returned: inspect
//! and list show its spec without `Data`. A config's data is stored and
//! returned as is. Services name them by ID and name (the docker CLI sends
//! both); [`SwarmService::resolve_file_refs`] checks that they exist and
//! fills in what the client left out, and the executor writes them into
//! each task's tmpfs ([`super::task_files`]).

use base64::Engine;
use berth_swarm::{Kind, Op};
use berth_wire::swarm::{
    Config, ConfigSpec, FileTarget, ObjectVersion, Secret, SecretSpec, Service, ServiceSpec,
};
use serde::{Deserialize, Serialize};

use super::vault::{Vault, CIPHER};
use super::{
    find, format_time, list, new_id, now_nanos, out_of_sequence, Active, Found, SwarmError,
    SwarmResult, SwarmService, Versioned,
};

/// swarmkit's `MaxSecretSize`.
pub const MAX_SECRET_SIZE: usize = 500 * 1024;
/// swarmkit's `MaxConfigSize`.
pub const MAX_CONFIG_SIZE: usize = 1000 * 1024;

/// Where a secret with a relative target is mounted.
pub const SECRETS_DIR: &str = "/run/secrets";

/// A secret as stored: its wire object without `Data`, and the data
/// sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSecret {
    #[serde(flatten)]
    pub secret: Secret,
    /// base64 of `nonce ‖ ciphertext ‖ tag`.
    #[serde(rename = "Sealed")]
    pub sealed: String,
    #[serde(rename = "Cipher")]
    pub cipher: String,
}

impl Versioned for StoredSecret {
    fn set_version(&mut self, v: u64) {
        self.secret.version.index = v;
    }
}

impl Versioned for Config {
    fn set_version(&mut self, v: u64) {
        self.version.index = v;
    }
}

impl StoredSecret {
    pub fn name(&self) -> &str {
        self.secret.spec.name.as_deref().unwrap_or_default()
    }

    /// The plaintext, for a task's tmpfs only.
    pub fn open(&self, vault: &Vault) -> SwarmResult<Vec<u8>> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&self.sealed)
            .map_err(|_| SwarmError::Corrupt {
                kind: "secret",
                id: self.secret.id.clone(),
                reason: "sealed data is not base64".into(),
            })?;
        Ok(vault.open(&self.secret.id, &sealed)?)
    }
}

/// swarmkit's rule for secret and config names.
fn check_name(name: Option<&str>) -> SwarmResult<String> {
    let name = name.unwrap_or_default();
    if name.is_empty() {
        return Err(SwarmError::Invalid("name must be provided".into()));
    }
    let b = name.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    let ok = name.len() <= 64
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    if !ok {
        return Err(SwarmError::Invalid(format!(
            "invalid name {name:?}, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]"
        )));
    }
    Ok(name.to_string())
}

/// base64 as Go's `[]byte` JSON fields carry it (standard alphabet, line
/// breaks ignored), or the URL-safe alphabet the swagger describes.
fn base64_bytes(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let s: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    [STANDARD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s.trim()).ok())
}

/// `Data` as bytes. The decoder's own message is left out: it quotes the
/// offending byte, which would put part of a secret into an error.
fn decode_data(what: &str, data: Option<&str>, max: usize) -> SwarmResult<Vec<u8>> {
    let bytes = base64_bytes(data.unwrap_or_default())
        .ok_or_else(|| SwarmError::Invalid(format!("{what} Data is not valid base64")))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(SwarmError::Invalid(format!(
            "{what} data must be larger than 0 and less than {max} bytes"
        )));
    }
    Ok(bytes)
}

fn unsupported_driver(
    what: &str,
    field: &str,
    d: Option<&berth_wire::swarm::Driver>,
) -> SwarmResult<()> {
    match d {
        Some(d) if !d.name.is_empty() => Err(SwarmError::NotImplemented(format!(
            "{what} {field} {:?} is not supported by berth",
            d.name
        ))),
        _ => Ok(()),
    }
}

fn lookup_error(what: &str, key: &str, e: Found) -> SwarmError {
    match e {
        Found::None => SwarmError::NotFound(format!("{what} {key} not found")),
        Found::Many => SwarmError::Invalid(format!(
            "{what} {key} is ambiguous (more than one {what} has this ID prefix)"
        )),
    }
}

/// swarmkit's refusal to remove an object a service uses.
fn in_use(what: &str, name: &str, users: &[Service]) -> SwarmResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = users
        .iter()
        .map(|s| s.spec.name.clone().unwrap_or_else(|| s.id.clone()))
        .collect();
    Err(SwarmError::Invalid(format!(
        "{what} '{name}' is in use by the following {}: {}",
        if names.len() == 1 {
            "service"
        } else {
            "services"
        },
        names.join(", ")
    )))
}

/// The path a secret is mounted at in the container.
pub fn secret_target(file: &FileTarget) -> String {
    if file.name.starts_with('/') {
        file.name.clone()
    } else {
        format!("{SECRETS_DIR}/{}", file.name)
    }
}

/// The path a config is mounted at in the container.
pub fn config_target(file: &FileTarget) -> String {
    if file.name.starts_with('/') {
        file.name.clone()
    } else {
        format!("/{}", file.name)
    }
}

fn default_file(name: &str) -> FileTarget {
    FileTarget {
        name: name.to_string(),
        uid: "0".into(),
        gid: "0".into(),
        mode: 0o444,
    }
}

fn not_found(what: &str, missing: &[String]) -> SwarmError {
    SwarmError::Invalid(format!(
        "{} not found: {}",
        if missing.len() == 1 {
            what.to_string()
        } else {
            format!("{what}s")
        },
        missing.join(", ")
    ))
}

fn check_targets<'a>(what: &str, refs: impl Iterator<Item = (&'a str, String)>) -> SwarmResult<()> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    for (name, target) in refs {
        if let Some((other, _)) = seen.iter().find(|(_, t)| *t == target) {
            return Err(SwarmError::Invalid(format!(
                "{what} references '{other}' and '{name}' have a conflicting target: '{target}'"
            )));
        }
        seen.push((name, target));
    }
    Ok(())
}

impl SwarmService {
    /// The swarm's data key, made on first use.
    pub(crate) fn vault(&self) -> SwarmResult<Vault> {
        Ok(Vault::open_or_create(&self.dir.join("key"))?)
    }

    fn stored_secret(&self, a: &Active, key: &str) -> SwarmResult<StoredSecret> {
        find(
            list::<StoredSecret>(a.store.as_ref(), Kind::Secret)?,
            key,
            |s| s.secret.id.as_str(),
            |s| s.name().to_string(),
        )
        .map_err(|e| lookup_error("secret", key, e))
    }

    /// Every secret, without data.
    pub fn secrets(&self) -> SwarmResult<Vec<Secret>> {
        let a = self.active()?;
        let mut out: Vec<Secret> = list::<StoredSecret>(a.store.as_ref(), Kind::Secret)?
            .into_iter()
            .map(|s| s.secret)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    /// A secret by ID, name or unique ID prefix, without data.
    pub fn secret(&self, key: &str) -> SwarmResult<Secret> {
        let a = self.active()?;
        Ok(self.stored_secret(&a, key)?.secret)
    }

    pub fn create_secret(&self, spec: SecretSpec) -> SwarmResult<String> {
        let a = self.active()?;
        let name = check_name(spec.name.as_deref())?;
        unsupported_driver("secret", "Driver", spec.driver.as_ref())?;
        unsupported_driver("secret", "Templating", spec.templating.as_ref())?;
        let data = decode_data("secret", spec.data.as_deref(), MAX_SECRET_SIZE)?;
        let vault = self.vault()?;
        let _g = self.objects.lock().expect("objects lock");
        if list::<StoredSecret>(a.store.as_ref(), Kind::Secret)?
            .iter()
            .any(|s| s.name() == name)
        {
            return Err(SwarmError::Conflict(format!(
                "secret {name} already exists"
            )));
        }
        let id = new_id();
        let sealed = vault.seal(&id, &data)?;
        drop(data);
        let now = format_time(now_nanos());
        let stored = StoredSecret {
            secret: Secret {
                id: id.clone(),
                version: ObjectVersion::default(),
                created_at: now.clone(),
                updated_at: now,
                spec: SecretSpec {
                    name: Some(name.clone()),
                    labels: Some(spec.labels.unwrap_or_default()),
                    data: None,
                    driver: None,
                    templating: None,
                },
            },
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
            cipher: CIPHER.into(),
        };
        a.store.apply(vec![Op::Create {
            kind: Kind::Secret,
            id: id.clone(),
            value: super::encode(&stored),
        }])?;
        tracing::info!(secret = %id, name = %name, "secret created");
        Ok(id)
    }

    /// Only the labels may change (swarmkit's rule).
    pub fn update_secret(&self, key: &str, version: u64, spec: SecretSpec) -> SwarmResult<()> {
        let a = self.active()?;
        let _g = self.objects.lock().expect("objects lock");
        let mut s = self.stored_secret(&a, key)?;
        if s.secret.version.index != version {
            return Err(out_of_sequence());
        }
        let renamed = spec
            .name
            .as_deref()
            .is_some_and(|n| !n.is_empty() && n != s.name());
        // As swarmkit: the data sent back unchanged is not a change.
        let changed = match spec.data.as_deref().filter(|d| !d.is_empty()) {
            None => false,
            Some(d) => {
                let sent = base64_bytes(d);
                sent.as_deref() != Some(s.open(&self.vault()?)?.as_slice())
            }
        };
        if renamed || changed {
            return Err(SwarmError::Invalid(
                "only updates to Labels are allowed".into(),
            ));
        }
        s.secret.spec.labels = Some(spec.labels.unwrap_or_default());
        s.secret.updated_at = format_time(now_nanos());
        a.store.apply(vec![Op::Update {
            kind: Kind::Secret,
            id: s.secret.id.clone(),
            expect: version,
            value: super::encode(&s),
        }])?;
        Ok(())
    }

    pub fn remove_secret(&self, key: &str) -> SwarmResult<()> {
        let a = self.active()?;
        let _g = self.objects.lock().expect("objects lock");
        let s = self.stored_secret(&a, key)?;
        let users: Vec<Service> = list::<Service>(a.store.as_ref(), Kind::Service)?
            .into_iter()
            .filter(|svc| {
                svc.spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .and_then(|c| c.secrets.as_ref())
                    .is_some_and(|r| r.iter().any(|r| r.secret_id == s.secret.id))
            })
            .collect();
        in_use("secret", s.name(), &users)?;
        a.store.apply(vec![Op::Delete {
            kind: Kind::Secret,
            id: s.secret.id.clone(),
            expect: Some(s.secret.version.index),
        }])?;
        tracing::info!(secret = %s.secret.id, "secret removed");
        Ok(())
    }

    // ---------------------------------------------------------------- configs

    fn stored_config(&self, a: &Active, key: &str) -> SwarmResult<Config> {
        find(
            list::<Config>(a.store.as_ref(), Kind::Config)?,
            key,
            |c| c.id.as_str(),
            |c| c.spec.name.clone().unwrap_or_default(),
        )
        .map_err(|e| lookup_error("config", key, e))
    }

    pub fn configs(&self) -> SwarmResult<Vec<Config>> {
        let a = self.active()?;
        let mut out = list::<Config>(a.store.as_ref(), Kind::Config)?;
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(out)
    }

    pub fn config(&self, key: &str) -> SwarmResult<Config> {
        let a = self.active()?;
        self.stored_config(&a, key)
    }

    pub fn create_config(&self, spec: ConfigSpec) -> SwarmResult<String> {
        let a = self.active()?;
        let name = check_name(spec.name.as_deref())?;
        unsupported_driver("config", "Templating", spec.templating.as_ref())?;
        let data = decode_data("config", spec.data.as_deref(), MAX_CONFIG_SIZE)?;
        let _g = self.objects.lock().expect("objects lock");
        let existing = list::<Config>(a.store.as_ref(), Kind::Config)?;
        if existing
            .iter()
            .any(|c| c.spec.name.as_deref() == Some(&name))
        {
            return Err(SwarmError::Conflict(format!(
                "config {name} already exists"
            )));
        }
        let id = new_id();
        let now = format_time(now_nanos());
        let config = Config {
            id: id.clone(),
            version: ObjectVersion::default(),
            created_at: now.clone(),
            updated_at: now,
            spec: ConfigSpec {
                name: Some(name.clone()),
                labels: Some(spec.labels.unwrap_or_default()),
                data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
                templating: None,
            },
        };
        a.store.apply(vec![Op::Create {
            kind: Kind::Config,
            id: id.clone(),
            value: super::encode(&config),
        }])?;
        tracing::info!(config = %id, name = %name, "config created");
        Ok(id)
    }

    pub fn update_config(&self, key: &str, version: u64, spec: ConfigSpec) -> SwarmResult<()> {
        let a = self.active()?;
        let _g = self.objects.lock().expect("objects lock");
        let mut c = self.stored_config(&a, key)?;
        if c.version.index != version {
            return Err(out_of_sequence());
        }
        let renamed = spec
            .name
            .as_deref()
            .is_some_and(|n| !n.is_empty() && Some(n) != c.spec.name.as_deref());
        // The docker CLI sends the spec it read back, Data included: the
        // same data is not a change.
        let same_data = |d: &str| base64_bytes(d) == c.spec.data.as_deref().and_then(base64_bytes);
        if renamed
            || spec
                .data
                .as_deref()
                .is_some_and(|d| !d.is_empty() && !same_data(d))
        {
            return Err(SwarmError::Invalid(
                "only updates to Labels are allowed".into(),
            ));
        }
        c.spec.labels = Some(spec.labels.unwrap_or_default());
        c.updated_at = format_time(now_nanos());
        a.store.apply(vec![Op::Update {
            kind: Kind::Config,
            id: c.id.clone(),
            expect: version,
            value: super::encode(&c),
        }])?;
        Ok(())
    }

    pub fn remove_config(&self, key: &str) -> SwarmResult<()> {
        let a = self.active()?;
        let _g = self.objects.lock().expect("objects lock");
        let c = self.stored_config(&a, key)?;
        let users: Vec<Service> = list::<Service>(a.store.as_ref(), Kind::Service)?
            .into_iter()
            .filter(|svc| {
                svc.spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .and_then(|s| s.configs.as_ref())
                    .is_some_and(|r| r.iter().any(|r| r.config_id == c.id))
            })
            .collect();
        in_use("config", c.spec.name.as_deref().unwrap_or_default(), &users)?;
        a.store.apply(vec![Op::Delete {
            kind: Kind::Config,
            id: c.id.clone(),
            expect: Some(c.version.index),
        }])?;
        tracing::info!(config = %c.id, "config removed");
        Ok(())
    }

    // ---------------------------------------------------------------- services

    /// Checks that every secret and config a service names exists (by
    /// `SecretID`, else by `SecretName`; both must agree when both are
    /// given), fills in the other and the default file target, and refuses
    /// two references mounted at the same path.
    pub(crate) fn resolve_file_refs(&self, a: &Active, spec: &mut ServiceSpec) -> SwarmResult<()> {
        let Some(c) = spec.task_template.container_spec.as_mut() else {
            return Ok(());
        };
        if let Some(refs) = c.secrets.as_mut().filter(|r| !r.is_empty()) {
            let all = list::<StoredSecret>(a.store.as_ref(), Kind::Secret)?;
            let mut missing = Vec::new();
            for r in refs.iter_mut() {
                let hit = all.iter().find(|s| {
                    if r.secret_id.is_empty() {
                        s.name() == r.secret_name
                    } else {
                        s.secret.id == r.secret_id
                            && (r.secret_name.is_empty() || r.secret_name == s.name())
                    }
                });
                let Some(s) = hit else {
                    missing.push(if r.secret_name.is_empty() {
                        r.secret_id.clone()
                    } else {
                        r.secret_name.clone()
                    });
                    continue;
                };
                r.secret_id = s.secret.id.clone();
                r.secret_name = s.name().to_string();
                let f = r.file.get_or_insert_with(|| default_file(s.name()));
                if f.name.is_empty() {
                    f.name = s.name().to_string();
                }
            }
            if !missing.is_empty() {
                return Err(not_found("secret", &missing));
            }
            check_targets(
                "secret",
                refs.iter().map(|r| {
                    (
                        r.secret_name.as_str(),
                        secret_target(r.file.as_ref().expect("filled")),
                    )
                }),
            )?;
        }
        if let Some(refs) = c.configs.as_mut().filter(|r| !r.is_empty()) {
            let all = list::<Config>(a.store.as_ref(), Kind::Config)?;
            let name_of = |c: &Config| c.spec.name.clone().unwrap_or_default();
            let mut missing = Vec::new();
            for r in refs.iter_mut() {
                let hit = all.iter().find(|c| {
                    if r.config_id.is_empty() {
                        name_of(c) == r.config_name
                    } else {
                        c.id == r.config_id
                            && (r.config_name.is_empty() || r.config_name == name_of(c))
                    }
                });
                let Some(cfg) = hit else {
                    missing.push(if r.config_name.is_empty() {
                        r.config_id.clone()
                    } else {
                        r.config_name.clone()
                    });
                    continue;
                };
                r.config_id = cfg.id.clone();
                r.config_name = name_of(cfg);
                if r.runtime.is_none() {
                    let f = r.file.get_or_insert_with(|| default_file(&name_of(cfg)));
                    if f.name.is_empty() {
                        f.name = name_of(cfg);
                    }
                }
            }
            if !missing.is_empty() {
                return Err(not_found("config", &missing));
            }
            check_targets(
                "config",
                refs.iter().filter_map(|r| {
                    r.file
                        .as_ref()
                        .map(|f| (r.config_name.as_str(), config_target(f)))
                }),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_swarmkit() {
        assert!(check_name(Some("pw")).is_ok());
        assert!(check_name(Some("a.b-c_d9")).is_ok());
        for bad in ["", "-a", "a-", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(check_name(None).is_err());
    }

    #[test]
    fn data_must_be_base64_and_sized() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(
            decode_data("secret", Some(&b64(b"hi")), MAX_SECRET_SIZE).unwrap(),
            b"hi"
        );
        assert!(decode_data("secret", None, MAX_SECRET_SIZE).is_err());
        let big = b64(&vec![0u8; MAX_SECRET_SIZE + 1]);
        assert!(decode_data("secret", Some(&big), MAX_SECRET_SIZE).is_err());
        let e = decode_data("secret", Some("c2VjcmV0!"), MAX_SECRET_SIZE)
            .unwrap_err()
            .to_string();
        assert!(!e.contains('!') && e.contains("base64"), "{e}");
        assert_eq!(base64_bytes("aGk/Pz8+").unwrap(), b"hi???>");
        assert_eq!(base64_bytes("aGk_Pz8-").unwrap(), b"hi???>", "URL-safe");
        assert_eq!(base64_bytes("aG\r\nk=").unwrap(), b"hi");
        assert_eq!(base64_bytes("a!b="), None);
    }

    #[test]
    fn targets_default_under_run_secrets_and_root() {
        assert_eq!(secret_target(&default_file("pw")), "/run/secrets/pw");
        assert_eq!(config_target(&default_file("cfg")), "/cfg");
        let abs = FileTarget {
            name: "/etc/app.conf".into(),
            ..default_file("x")
        };
        assert_eq!(secret_target(&abs), "/etc/app.conf");
        assert_eq!(config_target(&abs), "/etc/app.conf");
    }

    #[test]
    fn stored_secret_holds_no_plaintext() {
        let vault = Vault::from_bytes(&[3; 32]);
        let plain = b"hunter2-is-not-a-password";
        let sealed = vault.seal("id1", plain).unwrap();
        let stored = StoredSecret {
            secret: Secret {
                id: "id1".into(),
                spec: SecretSpec {
                    name: Some("pw".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
            cipher: CIPHER.into(),
        };
        let bytes = super::super::encode(&stored);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("hunter2"), "{text}");
        let plain_b64 = base64::engine::general_purpose::STANDARD.encode(plain);
        assert!(!text.contains(&plain_b64[..12]), "{text}");
        assert!(!text.contains("\"Data\""), "{text}");
        let back: StoredSecret = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.open(&vault).unwrap(), plain);
        assert_eq!(back.secret.spec.name.as_deref(), Some("pw"));
    }
}
