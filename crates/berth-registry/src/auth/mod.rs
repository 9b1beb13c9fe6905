//! Who may call the registry, chosen once from [`AuthConfig`]:
//! - none: everyone may do everything;
//! - htpasswd: HTTP Basic (`WWW-Authenticate: Basic realm=…`); any valid
//!   user may do everything;
//! - token: Docker's Bearer flow (docker-registry auth/token.md). The
//!   registry's 401 names the realm `<scheme>://<Host>/token`, the service
//!   and the scope the request needs; `GET /token` (served by this same
//!   server) checks Basic credentials and signs a token with the granted
//!   subset of the scope ([`token::Acl`]).

pub mod htpasswd;
pub mod token;

use std::path::Path;

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64STD;
use base64::Engine as _;

use crate::config::{AuthConfig, TOKEN_SERVICE};
use crate::error::{ConfigError, RegistryError};
use htpasswd::Htpasswd;
use token::{Acl, Grant, ResourceAccess, TokenSigner};

pub const BASIC_REALM: &str = "berth-registry";

/// What a request needs: `actions` on resource `typ:name`
/// (`repository:<name>` or `registry:catalog`).
#[derive(Debug, Clone)]
pub struct Need {
    pub typ: &'static str,
    pub name: String,
    pub actions: Vec<&'static str>,
}

impl Need {
    pub fn repo(name: &str, actions: &[&'static str]) -> Need {
        Need {
            typ: "repository",
            name: name.to_string(),
            actions: actions.to_vec(),
        }
    }
    pub fn catalog() -> Need {
        Need {
            typ: "registry",
            name: "catalog".into(),
            actions: vec!["*"],
        }
    }
    fn scope(&self) -> String {
        format!("{}:{}:{}", self.typ, self.name, self.actions.join(","))
    }
}

/// The caller, once authenticated.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub user: Option<String>,
    grant: Option<Grant>,
}

impl Identity {
    /// Whether the caller may do `action` on `typ:name` (always, unless the
    /// caller holds a token that does not grant it).
    pub fn allows(&self, typ: &str, name: &str, action: &str) -> bool {
        match &self.grant {
            None => true,
            Some(g) => g.allows(typ, name, action),
        }
    }
}

/// A refusal: the status/code and the `WWW-Authenticate` challenge.
#[derive(Debug)]
pub struct Denial {
    pub challenge: Option<String>,
    pub error: RegistryError,
}

pub enum Authorizer {
    None,
    Basic(Htpasswd),
    Token {
        users: Htpasswd,
        acl: Acl,
        signer: TokenSigner,
    },
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `user:password` from an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(B64STD.decode(rest.trim()).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

impl Authorizer {
    pub fn from_config(auth: &AuthConfig, root: &Path) -> Result<Authorizer, ConfigError> {
        Ok(match auth {
            AuthConfig::None => Authorizer::None,
            AuthConfig::Htpasswd(f) => Authorizer::Basic(Htpasswd::load(f)?),
            AuthConfig::Token { htpasswd, acl } => Authorizer::Token {
                users: Htpasswd::load(htpasswd)?,
                acl: match acl {
                    Some(p) => Acl::load(p)?,
                    None => Acl::default(),
                },
                signer: TokenSigner::load_or_create(root)?,
            },
        })
    }

    pub fn is_token(&self) -> bool {
        matches!(self, Authorizer::Token { .. })
    }

    /// Authenticates a registry request that needs `needs`; `realm` is the
    /// token endpoint's URL (used only in token mode).
    pub fn check(
        &self,
        headers: &HeaderMap,
        realm: &str,
        needs: &[Need],
    ) -> Result<Identity, Denial> {
        match self {
            Authorizer::None => Ok(Identity::default()),
            Authorizer::Basic(users) => match basic_credentials(headers) {
                Some((u, p)) if users.verify(&u, &p) => Ok(Identity {
                    user: Some(u),
                    grant: None,
                }),
                _ => Err(Denial {
                    challenge: Some(format!("Basic realm=\"{BASIC_REALM}\"")),
                    error: RegistryError::Unauthorized,
                }),
            },
            Authorizer::Token { signer, .. } => {
                let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{TOKEN_SERVICE}\"");
                if !needs.is_empty() {
                    let scopes: Vec<String> = needs.iter().map(Need::scope).collect();
                    challenge.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
                }
                let Some(grant) = bearer(headers).and_then(|t| signer.verify(t, now())) else {
                    return Err(Denial {
                        challenge: Some(challenge),
                        error: RegistryError::Unauthorized,
                    });
                };
                let ok = needs
                    .iter()
                    .all(|n| n.actions.iter().all(|a| grant.allows(n.typ, &n.name, a)));
                if !ok {
                    // RFC 6750 §3.1: the token is valid but lacks the scope.
                    challenge.push_str(",error=\"insufficient_scope\"");
                    return Err(Denial {
                        challenge: Some(challenge),
                        error: RegistryError::Unauthorized,
                    });
                }
                Ok(Identity {
                    user: (!grant.subject.is_empty()).then(|| grant.subject.clone()),
                    grant: Some(grant),
                })
            }
        }
    }

    /// `GET /token?service=…&scope=…` (token.md "Requesting a Token").
    /// Returns the JSON body and the authenticated user.
    pub fn issue_token(
        &self,
        headers: &HeaderMap,
        scopes: &[String],
    ) -> Result<(serde_json::Value, Option<String>), Denial> {
        let Authorizer::Token { users, acl, signer } = self else {
            return Err(Denial {
                challenge: None,
                error: RegistryError::RouteUnknown,
            });
        };
        let user = match basic_credentials(headers) {
            Some((u, p)) if users.verify(&u, &p) => Some(u),
            Some(_) => {
                return Err(Denial {
                    challenge: Some(format!("Basic realm=\"{BASIC_REALM}\"")),
                    error: RegistryError::Unauthorized,
                })
            }
            None => None,
        };
        let mut access = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            // `repository:name:actions`; the name itself has no ':' but a
            // registry host:port prefix might, so split from the right.
            let Some((rest, actions)) = scope.rsplit_once(':') else {
                continue;
            };
            let Some((typ, name)) = rest.split_once(':') else {
                continue;
            };
            let requested: Vec<String> = actions.split(',').map(String::from).collect();
            let granted = match typ {
                "repository" => acl.granted(user.as_deref(), name, &requested),
                "registry" if name == "catalog" && user.is_some() => requested,
                _ => Vec::new(),
            };
            access.push(ResourceAccess {
                typ: typ.to_string(),
                name: name.to_string(),
                actions: granted,
            });
        }
        let now = now();
        let t = signer.issue(user.as_deref().unwrap_or(""), access, now);
        let issued_at = chrono::DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok((
            serde_json::json!({
                "token": t,
                "access_token": t,
                "expires_in": token::TOKEN_TTL_SECS,
                "issued_at": issued_at,
            }),
            user,
        ))
    }
}
