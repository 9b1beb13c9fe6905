//! How a registry server is configured (`berth registry serve` flags).

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::ConfigError;
pub use crate::proxy::ProxyConfig;

/// The default listen address: all interfaces on port 5000, like
/// distribution's registry (clients assume :5000 for local registries).
pub const DEFAULT_ADDR: &str = "0.0.0.0:5000";
/// The default storage root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth/registry";
/// The `service` name in token challenges and the tokens' audience.
pub const TOKEN_SERVICE: &str = "berth-registry";

#[derive(Debug, Clone)]
pub struct Config {
    /// `host:port` to bind; port 0 picks a free port ([`crate::ServerHandle::local_addr`]).
    pub addr: String,
    pub root: PathBuf,
    pub auth: AuthConfig,
    pub tls: Option<TlsConfig>,
    /// Refuse every write (405 UNSUPPORTED).
    pub read_only: bool,
    /// Be a pull-through cache of this remote (writes refused).
    pub proxy: Option<ProxyConfig>,
}

impl Config {
    /// No auth, no TLS, writable, on `addr` with storage under `root`.
    pub fn new(addr: impl Into<String>, root: impl Into<PathBuf>) -> Config {
        Config {
            addr: addr.into(),
            root: root.into(),
            auth: AuthConfig::None,
            tls: None,
            read_only: false,
            proxy: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// Everyone may do everything.
    None,
    /// HTTP Basic against an htpasswd file of bcrypt entries (`htpasswd -B`);
    /// every authenticated user may do everything.
    Htpasswd(PathBuf),
    /// Docker's token flow: the registry answers 401 `Bearer realm=…/token`;
    /// `GET /token` authenticates users against `htpasswd` and grants what
    /// the ACL allows ([`crate::auth::Acl`]; the default when `acl` is None).
    Token {
        htpasswd: PathBuf,
        acl: Option<PathBuf>,
    },
}

impl FromStr for AuthConfig {
    type Err = ConfigError;
    /// `none`, `htpasswd:FILE`, `token:FILE` (FILE is an htpasswd file).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "none" => Ok(AuthConfig::None),
            Some(("htpasswd", f)) if !f.is_empty() => Ok(AuthConfig::Htpasswd(f.into())),
            Some(("token", f)) if !f.is_empty() => Ok(AuthConfig::Token {
                htpasswd: f.into(),
                acl: None,
            }),
            _ => Err(ConfigError::AuthSpec(s.to_string())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_specs() {
        assert_eq!("none".parse::<AuthConfig>().unwrap(), AuthConfig::None);
        assert_eq!(
            "htpasswd:/x".parse::<AuthConfig>().unwrap(),
            AuthConfig::Htpasswd("/x".into())
        );
        assert!(matches!(
            "token:/h".parse::<AuthConfig>().unwrap(),
            AuthConfig::Token { .. }
        ));
        for bad in ["", "htpasswd", "htpasswd:", "basic:x", "token"] {
            assert!(bad.parse::<AuthConfig>().is_err(), "{bad}");
        }
    }
}
