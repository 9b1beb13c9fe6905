//! What the registry needs to know of a manifest: its media type, the
//! blobs and manifests it references (checked to exist on PUT, marked by GC)
//! and its `subject` (referrers API). The bytes themselves are stored as the
//! client sent them (spec "Pushing Manifests": exact byte representation).

use std::collections::BTreeMap;

use berth_core::Digest;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests above this size are refused with 413 (the spec asks for at least 4 MB).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub digest: Digest,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Foreign (non-distributable) layers name where they live instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// The union of the fields of image manifests and indexes (OCI and Docker).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// A parsed manifest.
#[derive(Debug)]
pub struct Manifest {
    pub media_type: String,
    pub kind: Kind,
    /// Config and layers of an image manifest.
    pub blobs: Vec<Descriptor>,
    /// Child manifests of an index or list.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Image),
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

/// Strips parameters (`; charset=…`) from a Content-Type value.
pub fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

impl Manifest {
    /// Parses `bytes` pushed with `content_type` (may be empty). The media
    /// type comes from the header when it names a manifest type, else from
    /// the `mediaType` field, else from the shape (OCI allowed it absent).
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest, RegistryError> {
        let invalid = |m: String| RegistryError::ManifestInvalid(m);
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not a manifest: {e}")))?;
        if raw.schema_version != Some(2) {
            return Err(invalid(format!(
                "unsupported schemaVersion {:?}",
                raw.schema_version
            )));
        }
        let header = bare_media_type(content_type);
        let media_type = if kind_of(header).is_some() {
            header.to_string()
        } else if let Some(mt) = &raw.media_type {
            mt.clone()
        } else if raw.manifests.is_some() {
            OCI_INDEX.to_string()
        } else {
            OCI_MANIFEST.to_string()
        };
        let kind = kind_of(&media_type)
            .ok_or_else(|| invalid(format!("unsupported media type {media_type:?}")))?;
        if let Some(field) = &raw.media_type {
            // image-spec: mediaType, when present, must agree with the Content-Type.
            if field != &media_type {
                return Err(invalid(format!(
                    "mediaType {field:?} does not match content type {media_type:?}"
                )));
            }
        }
        let (blobs, manifests, config_media_type) = match kind {
            Kind::Image => {
                let config = raw
                    .config
                    .ok_or_else(|| invalid("image manifest without config".into()))?;
                let cmt = config.media_type.clone();
                let mut blobs = vec![config];
                blobs.extend(raw.layers.unwrap_or_default());
                (blobs, Vec::new(), Some(cmt))
            }
            Kind::Index => (
                Vec::new(),
                raw.manifests
                    .ok_or_else(|| invalid("index without manifests".into()))?,
                None,
            ),
        };
        Ok(Manifest {
            media_type,
            kind,
            blobs,
            manifests,
            subject: raw.subject,
            artifact_type: raw.artifact_type.filter(|s| !s.is_empty()),
            config_media_type,
            annotations: raw.annotations,
        })
    }

    /// The descriptor the referrers API lists for this manifest (spec
    /// "Listing Referrers": artifactType falls back to the config's media
    /// type for image manifests and is omitted for an index).
    pub fn referrer_descriptor(&self, digest: Digest, size: usize) -> Descriptor {
        let artifact_type = match self.kind {
            Kind::Image => self
                .artifact_type
                .clone()
                .or_else(|| self.config_media_type.clone()),
            Kind::Index => self.artifact_type.clone(),
        };
        Descriptor {
            media_type: self.media_type.clone(),
            digest,
            size: size as i64,
            artifact_type,
            annotations: self.annotations.clone(),
            urls: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_refs() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/x","digest":"{}","size":1}},"layers":[{{"mediaType":"l","digest":"{}","size":2}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}}}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let p = Manifest::parse(m.as_bytes(), "").unwrap();
        assert_eq!(p.kind, Kind::Image);
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.subject.as_ref().unwrap().digest.to_string(), d('c'));
        let r = p.referrer_descriptor(Digest::sha256_of(b"x"), 5);
        assert_eq!(r.artifact_type.as_deref(), Some("application/x"));
        // A Content-Type that disagrees with mediaType is refused.
        assert!(Manifest::parse(m.as_bytes(), DOCKER_MANIFEST).is_err());
    }

    #[test]
    fn index_and_rejects() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1}}]}}"#,
            d('a')
        );
        let p =
            Manifest::parse(m.as_bytes(), "application/vnd.oci.image.index.v1+json; x=y").unwrap();
        assert_eq!(p.kind, Kind::Index);
        assert_eq!(p.manifests.len(), 1);
        assert!(Manifest::parse(b"{}", "").is_err());
        assert!(Manifest::parse(b"not json", "").is_err());
        assert!(Manifest::parse(br#"{"schemaVersion":1}"#, "").is_err());
        let bad = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":1}},"layers":[{{"digest":"sha256:../x"}}]}}"#,
            d('a')
        );
        assert!(Manifest::parse(bad.as_bytes(), "").is_err());
    }
}
