//! Image configuration: the JSON whose sha256 is the image ID.
//!
//! One type serves both the OCI image-spec config (`config.md`) and Docker's
//! v1.2/v1.3 image JSON (`docker-image-spec/spec.md`), which is a superset:
//! Docker adds `Healthcheck`, `OnBuild`, `Shell`, `ArgsEscaped`, and top-level
//! `container`, `container_config`, `docker_version`, `comment`. We keep
//! fields we do not model in `extra` so a config read from a tar and written
//! back is unchanged. (oci-spec's image types drop Docker's fields, which is
//! why this crate carries its own.)
//!
//! The bytes of a config are never re-serialized once stored: the image ID is
//! the digest of the exact bytes.

use std::collections::BTreeMap;

use berth_core::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// berth's build-cache key of the step that made this entry (without
    /// the parent image ID), so that `--cache-from` can recognize the
    /// step in an image that was saved, pushed or pulled. Docker and
    /// other readers ignore the field; it travels with the config bytes.
    #[serde(
        default,
        rename = "berth_cache_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_key: Option<String>,
}

/// The `config` object: defaults for containers run from the image.
/// Field names are Docker's PascalCase, as both specs use them. Fields
/// follow the OCI `ImageConfig` order (as Go serializes it), Docker-only
/// fields last, so berth's configs survive a Go re-serialization unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// `created` as unix seconds (0 when absent or unparsable).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

/// The Go platform name for this build's architecture, as image configs use it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// RFC 3339 with nanoseconds as Go's `time.RFC3339Nano` prints them
/// (trailing zeros trimmed), so configs written here match what Go tools
/// (Docker, skopeo) would re-serialize byte for byte.
pub fn now_rfc3339() -> String {
    go_rfc3339_nano(chrono::Utc::now())
}

pub fn go_rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let full = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (main, _) = full.split_at(full.len() - 1); // drop 'Z'
    let trimmed = match main.split_once('.') {
        Some((secs, frac)) => {
            let f = frac.trim_end_matches('0');
            if f.is_empty() {
                secs.to_string()
            } else {
                format!("{secs}.{f}")
            }
        }
        None => main.to_string(),
    };
    format!("{trimmed}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_go() {
        use chrono::TimeZone;
        let t = chrono::Utc.timestamp_opt(1704164645, 120_000_000).unwrap();
        assert_eq!(go_rfc3339_nano(t), "2024-01-02T03:04:05.12Z");
        let t = chrono::Utc.timestamp_opt(1704164645, 0).unwrap();
        assert_eq!(go_rfc3339_nano(t), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn docker_fields_survive_a_round_trip() {
        let raw = r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]},"Custom":1},"container_config":{"Cmd":["x"]},"docker_version":"20.10","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"created":"2024-01-02T03:04:05.123456789Z"}"#;
        let c = ImageConfig::parse(raw.as_bytes()).unwrap();
        assert_eq!(
            c.config.as_ref().unwrap().cmd.as_deref(),
            Some(&["sh".to_string()][..])
        );
        assert_eq!(c.created_unix(), 1704164645);
        let back: Value = serde_json::to_value(&c).unwrap();
        assert_eq!(back["docker_version"], "20.10");
        assert_eq!(back["config"]["Custom"], 1);
        assert_eq!(back["config"]["Healthcheck"]["Test"][0], "NONE");
    }
}
