//! Image references with Docker's normalization (distribution/reference):
//! `busybox` → `docker.io/library/busybox:latest`,
//! `localhost:5000/app@sha256:…`, `quay.io/org/img:1.0`.
//!
//! Grammar (distribution/reference, reference.go):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain '/'] path-component ['/' path-component]*
//! domain     := host [':' port]
//! path-comp  := alnum [separator alnum]*   (lowercase only)
//! separator  := '.' | '_' | '__' | '-'+
//! tag        := [\w][\w.-]{0,127}
//! ```
//! The first component is a domain when it contains '.' or ':' or is
//! `localhost`; otherwise the domain is `docker.io`, and a single-component
//! Docker Hub path gets the `library/` prefix.

use std::fmt;
use std::str::FromStr;

use crate::Digest;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_TOTAL_MAX: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: empty reference")]
    Empty,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {0:?}")]
    Invalid(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error(
        "invalid reference format: repository name {0:?} must not be more than 255 characters"
    )]
    NameTooLong(String),
    #[error("invalid tag format: {0:?}")]
    Tag(String),
    #[error("invalid reference format: {0}")]
    Digest(#[from] crate::DigestError),
}

impl crate::HasKind for ReferenceError {
    fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// A fully qualified image reference: domain, path, and tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes; a reference with neither tag nor digest gets `:latest`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_name_only_ok(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalizes without adding a default tag.
    pub fn parse_name_only_ok(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag follows the last ':' only when no '/' comes after it
        // (otherwise the ':' belongs to a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag(t.to_string()));
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName(name.to_string()));
        }
        let (domain, path) = split_domain(name);
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(name.to_string()));
        }
        if !valid_domain(&domain) || !path.split('/').all(valid_component) {
            return Err(ReferenceError::Invalid(s.to_string()));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_MAX {
            return Err(ReferenceError::NameTooLong(name.to_string()));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Builds a reference from a repository and tag, as the Engine API passes
    /// them separately (`repo=busybox&tag=1.36`).
    pub fn from_repo_tag(repo: &str, tag: Option<&str>) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_name_only_ok(repo)?;
        match tag {
            Some(t) if !t.is_empty() => {
                if t.starts_with("sha256:") {
                    r.digest = Some(t.parse()?);
                    r.tag = None;
                } else {
                    if !valid_tag(t) {
                        return Err(ReferenceError::Tag(t.to_string()));
                    }
                    r.tag = Some(t.to_string());
                }
            }
            _ => {
                if r.tag.is_none() && r.digest.is_none() {
                    r.tag = Some(DEFAULT_TAG.to_string());
                }
            }
        }
        Ok(r)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `busybox:latest`, `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository with a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        Some(_) => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        None => (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_PREFIX}{name}"),
        ),
    }
    .pipe(|(d, p)| {
        // `index.docker.io` is an alias of Docker Hub.
        let d = if d == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            d
        };
        let p = if d == DEFAULT_DOMAIN && !p.contains('/') {
            format!("{OFFICIAL_PREFIX}{p}")
        } else {
            p
        };
        (d, p)
    })
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or one or more '-'.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let l = label.as_bytes();
            !l.is_empty()
                && l[0].is_ascii_alphanumeric()
                && l[l.len() - 1].is_ascii_alphanumeric()
                && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(norm("127.0.0.1:5000/a/b/c"), "127.0.0.1:5000/a/b/c:latest");
        assert_eq!(
            norm("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("quay.io/org/img:1.0"), "quay.io/org/img:1.0");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_normalized("docker.io/library/busybox").unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse_normalized("localhost:5000/x/y:2").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/x/y:2");
        assert_eq!(
            Reference::parse_normalized("me/app").unwrap().familiar(),
            "me/app:latest"
        );
    }

    #[test]
    fn rejects_what_docker_rejects() {
        assert!(matches!(
            Reference::parse_normalized("Busybox"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(matches!(
            Reference::parse_normalized(&"a".repeat(64)),
            Err(ReferenceError::HexName(_))
        ));
        assert!(Reference::parse_normalized("").is_err());
        assert!(Reference::parse_normalized("bad//name").is_err());
        assert!(Reference::parse_normalized("-bad").is_err());
        assert!(Reference::parse_normalized("a:b:c").is_err());
        assert!(Reference::parse_normalized("name:-tag").is_err());
        assert!(Reference::parse_normalized("a___b").is_err());
        assert!(Reference::parse_normalized("a@sha256:zz").is_err());
        assert!(Reference::parse_normalized(&format!("x:{}", "t".repeat(129))).is_err());
        assert!(Reference::parse_normalized(&"a/".repeat(130)).is_err());
        assert!(Reference::parse_normalized("a__b.c-d---e").is_ok());
    }

    #[test]
    fn repo_and_tag_from_api() {
        let r = Reference::from_repo_tag("busybox", Some("x")).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:x");
        let r = Reference::from_repo_tag("busybox", None).unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::from_repo_tag("busybox:9", Some("")).unwrap();
        assert_eq!(r.familiar(), "busybox:9");
        assert!(Reference::from_repo_tag("busybox", Some("bad tag")).is_err());
    }
}
