//! Local volumes: `<data-root>/volumes/<name>/_data`, with their metadata in
//! `<name>/volume.json` (written atomically). Named volumes come from
//! `volume create` or `-v name:/path`; anonymous ones (64-hex names, label
//! `com.docker.volume.anonymous`) from `-v /path` and image `VOLUME`s, and go
//! with `rm -v`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_core::{ErrorKind, HasKind};
use serde::{Deserialize, Serialize};

pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl HasKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound(_) => ErrorKind::NotFound,
            VolumeError::InUse(_) => ErrorKind::Conflict,
            VolumeError::Invalid(_) => ErrorKind::InvalidArgument,
            VolumeError::Io { .. } => ErrorKind::Internal,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

pub struct Volumes {
    root: PathBuf,
    lock: Mutex<()>,
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Volumes {
    pub fn open(data_root: &Path) -> Result<Volumes, VolumeError> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(|source| VolumeError::Io {
            context: format!("creating {}", root.display()),
            source,
        })?;
        Ok(Volumes {
            root,
            lock: Mutex::new(()),
        })
    }

    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        // `<name>/volume.json` is the volume: without it there is no such
        // volume. Any other failure to read it, or a file that does not
        // parse, is the engine's.
        let path = self.root.join(name).join("volume.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()))
            }
            Err(source) => {
                return Err(VolumeError::Io {
                    context: format!("reading {}", path.display()),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| VolumeError::Io {
            context: format!("volume {name}: corrupt metadata {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    pub fn list(&self) -> Vec<Volume> {
        let mut out: Vec<Volume> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates a volume, or returns the existing one of that name.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        let _g = self.lock.lock().expect("volumes lock");
        let (name, labels) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), labels),
            None => {
                let mut l = labels;
                l.insert(ANONYMOUS_LABEL.to_string(), String::new());
                (
                    format!(
                        "{:032x}{:032x}",
                        rand::random::<u128>(),
                        rand::random::<u128>()
                    ),
                    l,
                )
            }
        };
        if !valid_name(&name) {
            return Err(VolumeError::Invalid(format!("create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")));
        }
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        if let Some(d) = options.get("type").or(options.get("device")) {
            return Err(VolumeError::Invalid(format!(
                "volume driver options are not supported yet (got {d:?})"
            )));
        }
        let dir = self.root.join(&name);
        let tmp = self.root.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        let io = |context: String| move |source| VolumeError::Io { context, source };
        std::fs::create_dir_all(tmp.join("_data"))
            .map_err(io(format!("creating volume {name}")))?;
        let v = Volume {
            name: name.clone(),
            created_at: berth_image::config::now_rfc3339(),
            labels,
            options,
        };
        std::fs::write(
            tmp.join("volume.json"),
            serde_json::to_vec(&v).expect("serializes"),
        )
        .map_err(io(format!("writing volume {name}")))?;
        std::fs::rename(&tmp, &dir).map_err(io(format!("creating volume {name}")))?;
        Ok(v)
    }

    /// Copies what the image has at the mount path into a fresh, empty
    /// volume, as Docker does on first use.
    pub fn seed_from(&self, name: &str, source: &Path) {
        let dest = self.mountpoint(name);
        let empty = std::fs::read_dir(&dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty && source.is_dir() {
            let _ = std::process::Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", source.display()))
                .arg(&dest)
                .status();
        }
    }

    pub fn remove(&self, name: &str, users: &[String]) -> Result<(), VolumeError> {
        let _g = self.lock.lock().expect("volumes lock");
        self.get(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.root.join(name);
        let gone = self.root.join(format!(".rm-{name}"));
        std::fs::rename(&dir, &gone).map_err(|source| VolumeError::Io {
            context: format!("removing volume {name}"),
            source,
        })?;
        let _ = std::fs::remove_dir_all(&gone);
        Ok(())
    }

    pub fn size(&self, name: &str) -> u64 {
        let mut total = 0;
        let mut stack = vec![self.mountpoint(name)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(e.path()),
                    Ok(m) => total += m.len(),
                    Err(_) => {}
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absent_volume_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let vols = Volumes::open(dir.path()).unwrap();
        assert_eq!(vols.get("nope").unwrap_err().kind(), ErrorKind::NotFound);
        vols.create(Some("data"), BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(vols.get("data").is_ok());
        // A record the engine cannot read or parse is its own fault.
        let record = dir.path().join("volumes/data/volume.json");
        std::fs::write(&record, "{").unwrap();
        let e = vols.get("data").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        assert!(e.to_string().contains(&record.display().to_string()), "{e}");
        std::fs::remove_file(&record).unwrap();
        std::fs::create_dir(&record).unwrap();
        let e = vols.get("data").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    }
}
