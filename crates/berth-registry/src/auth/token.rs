//! Bearer tokens (docker-registry auth/jwt.md) and the ACL that decides
//! what they grant.
//!
//! Tokens are JWTs signed with HS256. The token server and the registry are
//! the same process, so one secret shared with itself is all the key
//! management needed: no key pair, certificate chain or `kid` to publish,
//! and HMAC-SHA256 comes from crates the workspace already has. The secret
//! is 32 random bytes kept in `<root>/auth/token-secret` (mode 0600) so
//! tokens stay valid across restarts. Clients treat tokens as opaque.
//!
//! ACL file: one rule a line, `WHO PATTERN ACTIONS`, first matching rules
//! all apply (their actions are added up):
//! - WHO: a user name, `*` (any authenticated user) or `anonymous`;
//! - PATTERN: a repository glob where `*` matches any characters (also `/`)
//!   and `{user}` stands for the authenticated user's name;
//! - ACTIONS: comma-separated `pull`, `push`, `delete`, or `*` for all.
//!
//! Without a file, [`Acl::default`] applies: every authenticated user pulls
//! everything and pushes/deletes under `USERNAME/*`; anonymous gets nothing.
//! Any authenticated user may list the catalog (`registry:catalog:*`).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::TOKEN_SERVICE;
use crate::error::ConfigError;

/// How long an issued token is valid.
pub const TOKEN_TTL_SECS: i64 = 300;
const ISSUER: &str = "berth-registry-token";

/// One granted (or needed) resource access, as in the JWT `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAccess {
    #[serde(rename = "type")]
    pub typ: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: Vec<ResourceAccess>,
}

/// A token that verified: who it was issued to and what it grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: String,
    pub access: Vec<ResourceAccess>,
}

impl Grant {
    pub fn allows(&self, typ: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.typ == typ && a.name == name && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

pub struct TokenSigner {
    secret: Vec<u8>,
}

impl TokenSigner {
    /// Loads the secret from `<root>/auth/token-secret`, creating it once.
    pub fn load_or_create(root: &Path) -> Result<TokenSigner, ConfigError> {
        let dir = root.join("auth");
        let path = dir.join("token-secret");
        let err = |source| ConfigError::Root {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(secret) if secret.len() >= 32 => return Ok(TokenSigner { secret }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        std::fs::create_dir_all(&dir).map_err(err)?;
        let secret: [u8; 32] = rand::random();
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        f.write_all(&secret)
            .and_then(|_| f.sync_all())
            .map_err(err)?;
        Ok(TokenSigner {
            secret: secret.to_vec(),
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key length")
    }

    /// Issues a token for `subject` (empty for anonymous) granting `access`.
    pub fn issue(&self, subject: &str, access: Vec<ResourceAccess>, now: i64) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = Claims {
            iss: ISSUER.into(),
            sub: subject.into(),
            aud: TOKEN_SERVICE.into(),
            exp: now + TOKEN_TTL_SECS,
            nbf: now - 10,
            iat: now,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
        };
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies signature, algorithm, issuer, audience and validity window.
    pub fn verify(&self, token: &str, now: i64) -> Option<Grant> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        // RFC 8725 §2.1: never let the token pick its algorithm.
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&B64.decode(s).ok()?).ok()?;
        let c: Claims = serde_json::from_slice(&B64.decode(p).ok()?).ok()?;
        if c.iss != ISSUER || c.aud != TOKEN_SERVICE || now >= c.exp || now < c.nbf {
            return None;
        }
        Some(Grant {
            subject: c.sub,
            access: c.access,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    User(String),
    AnyUser,
    Anonymous,
}

#[derive(Debug, Clone)]
struct Rule {
    who: Who,
    pattern: String,
    actions: Vec<String>,
}

/// Who may do what on which repositories (see the module docs).
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<Rule>,
}

impl Default for Acl {
    fn default() -> Acl {
        Acl::parse(
            "* {user}/* pull,push,delete\n* * pull\n",
            Path::new("<default>"),
        )
        .expect("default acl parses")
    }
}

impl Acl {
    pub fn load(path: &Path) -> Result<Acl, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Acl::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Acl, ConfigError> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let syntax = |reason: &str| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.to_string(),
            };
            if f.len() != 3 {
                return Err(syntax("expected WHO PATTERN ACTIONS"));
            }
            let who = match f[0] {
                "*" => Who::AnyUser,
                "anonymous" => Who::Anonymous,
                u => Who::User(u.to_string()),
            };
            let mut actions = Vec::new();
            for a in f[2].split(',') {
                match a {
                    "pull" | "push" | "delete" => actions.push(a.to_string()),
                    "*" => actions.extend(["pull", "push", "delete"].map(String::from)),
                    _ => return Err(syntax(&format!("unknown action {a:?}"))),
                }
            }
            rules.push(Rule {
                who,
                pattern: f[1].to_string(),
                actions,
            });
        }
        Ok(Acl { rules })
    }

    /// The actions of `requested` that `user` (None: anonymous) may do on
    /// repository `name`.
    pub fn granted(&self, user: Option<&str>, name: &str, requested: &[String]) -> Vec<String> {
        let mut allowed: Vec<&str> = Vec::new();
        for r in &self.rules {
            let applies = match (&r.who, user) {
                (Who::Anonymous, None) => true,
                (Who::AnyUser, Some(_)) => true,
                (Who::User(u), Some(v)) => u == v,
                _ => false,
            };
            if !applies {
                continue;
            }
            let pattern = match user {
                Some(u) => r.pattern.replace("{user}", u),
                None if r.pattern.contains("{user}") => continue,
                None => r.pattern.clone(),
            };
            if glob(&pattern, name) {
                allowed.extend(r.actions.iter().map(String::as_str));
            }
        }
        requested
            .iter()
            .filter(|a| allowed.contains(&a.as_str()))
            .cloned()
            .collect()
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, rest)) => {
            let Some(tail) = s.strip_prefix(pre) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_acl() {
        let acl = Acl::default();
        let pp = acts(&["pull", "push"]);
        assert_eq!(acl.granted(Some("alice"), "alice/app", &pp), pp);
        assert_eq!(acl.granted(Some("alice"), "alice/a/b", &pp), pp);
        assert_eq!(acl.granted(Some("alice"), "bob/app", &pp), acts(&["pull"]));
        assert_eq!(
            acl.granted(Some("alice"), "aliceX/app", &pp),
            acts(&["pull"])
        );
        assert!(acl.granted(None, "alice/app", &pp).is_empty());
        let acl = Acl::parse("anonymous pub/* pull\nbob * *\n", Path::new("x")).unwrap();
        assert_eq!(acl.granted(None, "pub/x", &pp), acts(&["pull"]));
        assert_eq!(acl.granted(Some("bob"), "any/thing", &pp), pp);
        assert!(acl.granted(Some("carol"), "pub/x", &pp).is_empty());
        assert!(Acl::parse("x y fly", Path::new("x")).is_err());
    }

    #[test]
    fn tokens_verify_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenSigner::load_or_create(dir.path()).unwrap();
        let access = vec![ResourceAccess {
            typ: "repository".into(),
            name: "a/b".into(),
            actions: acts(&["pull"]),
        }];
        let t = s.issue("alice", access, 1000);
        let g = s.verify(&t, 1001).unwrap();
        assert_eq!(g.subject, "alice");
        assert!(g.allows("repository", "a/b", "pull"));
        assert!(!g.allows("repository", "a/b", "push"));
        assert!(s.verify(&t, 1000 + TOKEN_TTL_SECS).is_none());
        // Same secret after a restart; a flipped payload byte fails.
        let s2 = TokenSigner::load_or_create(dir.path()).unwrap();
        assert!(s2.verify(&t, 1001).is_some());
        let mut bad = t.clone().into_bytes();
        let mid = t.find('.').unwrap() + 3;
        bad[mid] = if bad[mid] == b'A' { b'B' } else { b'A' };
        assert!(s.verify(std::str::from_utf8(&bad).unwrap(), 1001).is_none());
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            t.split('.').nth(1).unwrap()
        );
        assert!(s.verify(&none, 1001).is_none());
    }
}
