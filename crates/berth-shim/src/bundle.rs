//! The few facts the shim needs from the bundle's `config.json`; the
//! runtime reads the full spec itself.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ShimError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFacts {
    /// `process.terminal`.
    pub terminal: bool,
    /// `linux.cgroupsPath`, where OOM kills are counted.
    pub cgroups_path: Option<String>,
}

impl BundleFacts {
    pub fn load(bundle: &Path) -> Result<Self, ShimError> {
        let path = bundle.join("config.json");
        let bytes =
            fs::read(&path).map_err(|e| ShimError::io(format!("read {}", path.display()), e))?;
        Self::parse(&bytes).map_err(|reason| ShimError::BundleConfig {
            path: PathBuf::from(&path),
            reason,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let spec: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !spec.is_object() {
            return Err("not a JSON object".into());
        }
        Ok(BundleFacts {
            terminal: spec
                .pointer("/process/terminal")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            cgroups_path: spec
                .pointer("/linux/cgroupsPath")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_terminal_and_cgroups_path() {
        let f =
            BundleFacts::parse(br#"{"process":{"terminal":true},"linux":{"cgroupsPath":"/a/b"}}"#)
                .unwrap();
        assert_eq!(
            f,
            BundleFacts {
                terminal: true,
                cgroups_path: Some("/a/b".into())
            }
        );
        let f = BundleFacts::parse(br#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert_eq!(
            f,
            BundleFacts {
                terminal: false,
                cgroups_path: None
            }
        );
        assert!(BundleFacts::parse(b"[]").is_err());
        assert!(BundleFacts::parse(b"{").is_err());
    }
}
