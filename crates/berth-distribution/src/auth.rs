//! Registry authentication: credentials, and `WWW-Authenticate` challenges
//! (RFC 7235; docker-registry/auth/token.md "How to authenticate").

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What `X-Registry-Auth` carries (docker's `AuthConfig`, base64url JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header; docker sends base64url with
    /// padding, older clients standard base64 or none at all ("{}").
    pub fn from_header(value: &str) -> Option<Credentials> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|e| e.decode(value).ok())
            .unwrap_or_else(|| value.as_bytes().to_vec());
        let c: Credentials = serde_json::from_slice(&bytes).ok()?;
        c.has_secret().then_some(c)
    }

    pub fn has_secret(&self) -> bool {
        !self.username.is_empty()
            || !self.identitytoken.is_empty()
            || !self.registrytoken.is_empty()
    }

    pub fn to_header(&self) -> String {
        base64::engine::general_purpose::URL_SAFE
            .encode(serde_json::to_vec(self).expect("credentials serialize"))
    }
}

/// One parsed challenge: scheme (`bearer`, `basic`, lowercase) and params.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// Parses `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`
/// (one challenge per header value; quoted strings may contain commas).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_lowercase(), value.trim().to_string());
    }
    Some(Challenge {
        scheme: scheme.to_lowercase(),
        params,
    })
}

/// The token endpoint's answer (token.md "Token Response Fields").
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<String> {
        if !self.token.is_empty() {
            Some(self.token)
        } else if !self.access_token.is_empty() {
            Some(self.access_token)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(
            c.param("scope"),
            Some("repository:library/busybox:pull,push")
        );
    }

    #[test]
    fn basic_challenge() {
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));
        assert_eq!(parse_challenge("Basic").unwrap().params.len(), 0);
    }

    #[test]
    fn registry_auth_header_round_trip() {
        let c = Credentials {
            username: "u".into(),
            password: "p?>".into(),
            serveraddress: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        assert_eq!(Credentials::from_header(&c.to_header()), Some(c));
        assert_eq!(Credentials::from_header("e30="), None);
        assert_eq!(Credentials::from_header(""), None);
    }
}
