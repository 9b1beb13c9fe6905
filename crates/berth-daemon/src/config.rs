//! Daemon configuration: command-line settings merged with
//! `/etc/berth/daemon.json`, which uses Docker's daemon.json keys where they
//! apply. As dockerd does, a setting given both as a flag and in the file is
//! an error rather than a silent override.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::DaemonError;

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
pub const DEFAULT_SOCKET: &str = "unix:///run/berth/berth.sock";

/// Settings as given on the command line (`None` = not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Vec<String>,
    pub config_file: Option<PathBuf>,
    pub log_level: Option<String>,
    /// `--bridge`: name of the default bridge's Linux bridge.
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's address and prefix (its gateway).
    pub bip: Option<String>,
}

/// The subset of Docker's daemon.json berth reads now. Unknown keys are
/// reported in the log and ignored, so a Docker config file can be reused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileConfig {
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    #[serde(default)]
    hosts: Vec<String>,
    log_level: Option<String>,
    bridge: Option<String>,
    bip: Option<String>,
    build_trust_host_ca: Option<bool>,
    debug: Option<bool>,
    live_restore: Option<bool>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub hosts: Vec<String>,
    pub log_level: String,
    pub bridge: String,
    pub bip: Option<String>,
    /// `build-trust-host-ca`: every build's RUN steps trust the host's CAs.
    pub build_trust_host_ca: bool,
    pub live_restore: bool,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Keys of the config file berth does not use.
    pub ignored_keys: Vec<String>,
}

impl DaemonConfig {
    pub fn resolve(flags: Flags) -> Result<DaemonConfig, DaemonError> {
        let explicit = flags.config_file.is_some();
        let path = flags
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let file = read_file(&path, explicit)?;
        let mut conflicts = Vec::new();
        if flags.data_root.is_some() && file.data_root.is_some() {
            conflicts.push("data-root");
        }
        if flags.exec_root.is_some() && file.exec_root.is_some() {
            conflicts.push("exec-root");
        }
        if !flags.hosts.is_empty() && !file.hosts.is_empty() {
            conflicts.push("hosts");
        }
        if flags.log_level.is_some() && file.log_level.is_some() {
            conflicts.push("log-level");
        }
        if flags.bridge.is_some() && file.bridge.is_some() {
            conflicts.push("bridge");
        }
        if flags.bip.is_some() && file.bip.is_some() {
            conflicts.push("bip");
        }
        if !conflicts.is_empty() {
            return Err(DaemonError::Config(format!(
                "the following directives are specified both as a flag and in the configuration file {}: {}",
                path.display(),
                conflicts.join(", ")
            )));
        }
        let log_level = flags
            .log_level
            .or(file.log_level)
            .or_else(|| file.debug.filter(|d| *d).map(|_| "debug".to_string()))
            .unwrap_or_else(|| "info".into());
        if !matches!(
            log_level.as_str(),
            "debug" | "info" | "warn" | "error" | "fatal" | "trace"
        ) {
            return Err(DaemonError::Config(format!(
                "invalid log level {log_level:?}: use debug, info, warn, error or fatal"
            )));
        }
        let mut hosts = if !flags.hosts.is_empty() {
            flags.hosts
        } else {
            file.hosts
        };
        if hosts.is_empty() {
            hosts.push(DEFAULT_SOCKET.to_string());
        }
        for h in &hosts {
            parse_host(h)?;
        }
        Ok(DaemonConfig {
            data_root: absolute(
                flags
                    .data_root
                    .or(file.data_root)
                    .unwrap_or_else(|| DEFAULT_DATA_ROOT.into()),
            )?,
            exec_root: absolute(
                flags
                    .exec_root
                    .or(file.exec_root)
                    .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into()),
            )?,
            hosts,
            log_level,
            bridge: {
                let b = flags
                    .bridge
                    .or(file.bridge)
                    .unwrap_or_else(|| "berth0".into());
                if b.is_empty() || b.len() > 15 || b.contains(['/', ' ']) {
                    return Err(DaemonError::Config(format!(
                        "invalid bridge name {b:?}: 1 to 15 characters, no '/' or spaces"
                    )));
                }
                b
            },
            bip: flags.bip.or(file.bip),
            build_trust_host_ca: file.build_trust_host_ca.unwrap_or(false),
            live_restore: file.live_restore.unwrap_or(true),
            registry_mirrors: file.registry_mirrors,
            insecure_registries: file.insecure_registries,
            ignored_keys: file.other.keys().cloned().collect(),
        })
    }
}

fn absolute(p: PathBuf) -> Result<PathBuf, DaemonError> {
    if p.is_absolute() {
        Ok(p)
    } else {
        std::env::current_dir()
            .map(|c| c.join(&p))
            .map_err(|e| DaemonError::Config(format!("resolving {}: {e}", p.display())))
    }
}

fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, DaemonError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(FileConfig::default()),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            DaemonError::Config(format!(
                "invalid configuration file {}: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(DaemonError::Config(format!(
            "reading configuration file {}: {e}",
            path.display()
        ))),
    }
}

/// Where the API listens.
#[derive(Debug, Clone, PartialEq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

pub fn parse_host(h: &str) -> Result<Host, DaemonError> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(DaemonError::Config(format!(
                "invalid host {h:?}: a unix socket needs an absolute path"
            )));
        }
        return Ok(Host::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        if a.is_empty() {
            return Err(DaemonError::Config(format!(
                "invalid host {h:?}: missing address"
            )));
        }
        let addr = if a.contains(':') {
            a.to_string()
        } else {
            format!("{a}:2375")
        };
        return Ok(Host::Tcp(addr));
    }
    if h.starts_with('/') {
        return Ok(Host::Unix(PathBuf::from(h)));
    }
    Err(DaemonError::Config(format!(
        "invalid host {h:?}: use unix:///path or tcp://addr:port"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_file_merge_and_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"data-root":"/tmp/x","log-level":"debug","storage-driver":"overlay2"}"#,
        )
        .unwrap();
        let c = DaemonConfig::resolve(Flags {
            config_file: Some(f.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/tmp/x"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.hosts, vec![DEFAULT_SOCKET.to_string()]);
        assert_eq!(c.ignored_keys, vec!["storage-driver".to_string()]);
        let e = DaemonConfig::resolve(Flags {
            config_file: Some(f),
            data_root: Some("/y".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("data-root"), "{e}");
    }

    #[test]
    fn bad_files_and_hosts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, "{not json").unwrap();
        let e = DaemonConfig::resolve(Flags {
            config_file: Some(f.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains(&f.display().to_string()));
        let missing = DaemonConfig::resolve(Flags {
            config_file: Some(dir.path().join("nope.json")),
            ..Default::default()
        });
        assert!(missing.is_err());
        assert!(parse_host("unix://relative").is_err());
        assert_eq!(
            parse_host("tcp://127.0.0.1").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert!(parse_host("ftp://x").is_err());
    }
}
