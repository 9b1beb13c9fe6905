//! Validation of everything a request names before it reaches the file
//! system: repository names (spec "Pulling manifests": the `<name>` regex),
//! tags (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), digests (berth-core's
//! [`Digest`], lowercase hex only) and upload session ids. A value that
//! passes cannot contain `..`, `%`, or an absolute path, so joining it under
//! the registry root cannot escape it.

use std::fmt;
use std::str::FromStr;

use berth_core::Digest;

use crate::error::RegistryError;

/// Names longer than this are refused: clients limit `host/name` to 255.
pub const MAX_NAME_LEN: usize = 255;

/// A repository name such as `library/busybox` or `a/b/c`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_component) {
            return Err(RegistryError::NameInvalid(s.to_string()));
        }
        Ok(RepoName(s.to_string()))
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
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

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

/// The `<tag-or-digest>` of a manifest URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl FromStr for ManifestRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            parse_digest(s).map(ManifestRef::Digest)
        } else if valid_tag(s) {
            Ok(ManifestRef::Tag(s.to_string()))
        } else {
            Err(RegistryError::TagInvalid(s.to_string()))
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A digest from a URL or query; malformed and unsupported ones are
/// DIGEST_INVALID (spec "Pushing blobs": 400 for invalid or unsupported).
pub fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    s.parse::<Digest>()
        .map_err(|e| RegistryError::DigestInvalid(e.to_string()))
}

/// An upload session id: a random UUID (8-4-4-4-12 lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn random() -> UploadId {
        let b: [u8; 16] = rand::random();
        let h = hex::encode(b);
        UploadId(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups.iter().zip(lens).all(|(g, n)| {
                g.len() == n && g.bytes().all(|x| matches!(x, b'0'..=b'9' | b'a'..=b'f'))
            });
        if ok {
            Ok(UploadId(s.to_string()))
        } else {
            Err(RegistryError::BlobUploadUnknown(s.to_string()))
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_regex() {
        for ok in [
            "a",
            "library/busybox",
            "a/b/c",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "0",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a/./b",
            "%2e%2e",
            "a/%2e%2e/b",
            "a___b",
            "a._b",
            "-a",
            "a-",
            "_a",
            "a b",
            "a\0",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?}");
        }
        assert!("a".repeat(256).parse::<RepoName>().is_err());
    }

    #[test]
    fn tags_and_refs() {
        assert!(valid_tag("latest") && valid_tag("_x") && valid_tag("v1.2-rc_3"));
        assert!(!valid_tag(".x") && !valid_tag("-x") && !valid_tag("") && !valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(129)) && valid_tag(&"a".repeat(128)));
        assert!(matches!("latest".parse(), Ok(ManifestRef::Tag(_))));
        assert!(matches!(
            "md5:abc".parse::<ManifestRef>(),
            Err(RegistryError::DigestInvalid(_))
        ));
        assert!("..".parse::<ManifestRef>().is_err());
    }

    #[test]
    fn upload_ids_round_trip() {
        let id = UploadId::random();
        assert_eq!(id.as_str().parse::<UploadId>().unwrap(), id);
        assert!("../etc".parse::<UploadId>().is_err());
        assert!("ABCDEF01-0000-0000-0000-000000000000"
            .parse::<UploadId>()
            .is_err());
    }
}
