//! `save`: images to a tar archive.
//!
//! The default layout is the one Docker 25+ writes: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) that also carries the
//! legacy docker-archive `manifest.json` pointing at the same blobs, so the
//! one file is read as `docker-archive:` and as `oci-archive:` by skopeo and
//! by every `docker load`. `SaveFormat::Oci` leaves `manifest.json` out.
//! Layers are written uncompressed (`…layer.v1.tar`): their digest is then
//! the diff ID in the config, and nothing is recompressed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use berth_core::{Digest, Reference};
use serde_json::json;

use crate::manifest::{self, Descriptor, DockerArchiveEntry, Index, Manifest};
use crate::{ImageError, ImageStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// OCI layout plus docker-archive `manifest.json` (Docker 25+ layout).
    #[default]
    Docker,
    /// OCI image layout only.
    Oci,
}

impl std::str::FromStr for SaveFormat {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "docker" | "docker-archive" => Ok(SaveFormat::Docker),
            "oci" | "oci-archive" => Ok(SaveFormat::Oci),
            other => Err(ImageError::InvalidArgument(format!(
                "unknown save format {other:?}: use docker or oci"
            ))),
        }
    }
}

/// What will be written: images and the tags to record for each.
#[derive(Debug, Clone, Default)]
pub struct SavePlan {
    pub images: Vec<(Digest, Vec<Reference>)>,
}

impl ImageStore {
    /// Resolves names before anything is written, so a bad name fails the
    /// request instead of truncating the archive. A repository name without
    /// tag saves all its tags; an ID saves the image untagged.
    pub fn plan_save(&self, names: &[String]) -> Result<SavePlan, ImageError> {
        if names.is_empty() {
            return Err(ImageError::InvalidArgument("no images to save".into()));
        }
        let state = self.meta.snapshot();
        let mut plan: Vec<(Digest, Vec<Reference>)> = Vec::new();
        let mut add = |id: Digest, tag: Option<Reference>| {
            if let Some(entry) = plan.iter_mut().find(|(i, _)| *i == id) {
                if let Some(t) = tag {
                    if !entry.1.contains(&t) {
                        entry.1.push(t);
                    }
                }
            } else {
                plan.push((id, tag.into_iter().collect()));
            }
        };
        for name in names {
            let explicit_tag =
                name.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')) || name.contains('@');
            let parsed = Reference::parse_name_only_ok(name).ok();
            if let (Some(r), false) = (&parsed, explicit_tag) {
                let repo = r.name();
                let in_repo: Vec<(Reference, Digest)> = state
                    .tags
                    .iter()
                    .filter(|(k, _)| !k.contains('@'))
                    .filter_map(|(k, v)| {
                        Reference::parse_normalized(k)
                            .ok()
                            .filter(|t| t.name() == repo)
                            .map(|t| (t, v.clone()))
                    })
                    .collect();
                if !in_repo.is_empty() {
                    for (t, id) in in_repo {
                        add(id, Some(t));
                    }
                    continue;
                }
            }
            let id = crate::store::resolve_in(&state, name)?;
            let tag = parsed.filter(|r| {
                r.tag().is_some() && state.tags.contains_key(&r.to_string()) && explicit_tag
            });
            add(id, tag);
        }
        Ok(SavePlan { images: plan })
    }

    pub fn write_save(
        &self,
        plan: &SavePlan,
        format: SaveFormat,
        out: impl Write,
    ) -> Result<(), ImageError> {
        let mut tar = tar::Builder::new(out);
        let mut written: BTreeSet<Digest> = BTreeSet::new();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.into()),
            manifests: vec![],
            annotations: BTreeMap::new(),
        };
        let mut docker_manifest: Vec<DockerArchiveEntry> = Vec::new();
        let werr = |e: io::Error| ImageError::Io {
            context: "writing archive".into(),
            source: e,
        };

        append_dir(&mut tar, "blobs/").map_err(werr)?;
        append_dir(&mut tar, "blobs/sha256/").map_err(werr)?;
        for (id, tags) in &plan.images {
            let record = self
                .meta
                .with(|s| s.images.get(id).cloned())
                .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
            let config_size = self.content.size(id)?;
            if written.insert(id.clone()) {
                self.append_blob(&mut tar, id)?;
            }
            let mut layers = Vec::new();
            for l in &record.layers {
                let size = self.content.size(&l.diff_id)?;
                if written.insert(l.diff_id.clone()) {
                    self.append_blob(&mut tar, &l.diff_id)?;
                }
                layers.push(Descriptor {
                    media_type: manifest::OCI_LAYER_TAR.into(),
                    digest: l.diff_id.clone(),
                    size,
                    platform: None,
                    annotations: BTreeMap::new(),
                });
            }
            let m = Manifest {
                schema_version: 2,
                media_type: Some(manifest::OCI_MANIFEST.into()),
                config: Descriptor {
                    media_type: manifest::OCI_CONFIG.into(),
                    digest: id.clone(),
                    size: config_size,
                    platform: None,
                    annotations: BTreeMap::new(),
                },
                layers,
                annotations: BTreeMap::new(),
            };
            let mbytes = serde_json::to_vec(&m).expect("manifest serializes");
            let mdigest = Digest::sha256_of(&mbytes);
            if written.insert(mdigest.clone()) {
                append_bytes(
                    &mut tar,
                    &format!("blobs/sha256/{}", mdigest.hex()),
                    &mbytes,
                )
                .map_err(werr)?;
            }
            let desc = |annotations| Descriptor {
                media_type: manifest::OCI_MANIFEST.into(),
                digest: mdigest.clone(),
                size: mbytes.len() as u64,
                platform: None,
                annotations,
            };
            if tags.is_empty() {
                index.manifests.push(desc(BTreeMap::new()));
            }
            for t in tags {
                let mut a = BTreeMap::new();
                a.insert(manifest::ANNOTATION_IMAGE_NAME.to_string(), t.to_string());
                a.insert(
                    manifest::ANNOTATION_REF_NAME.to_string(),
                    t.tag().unwrap_or("latest").to_string(),
                );
                index.manifests.push(desc(a));
            }
            docker_manifest.push(DockerArchiveEntry {
                config: format!("blobs/sha256/{}", id.hex()),
                repo_tags: if tags.is_empty() {
                    None
                } else {
                    Some(tags.iter().map(|t| t.familiar()).collect())
                },
                layers: record
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.diff_id.hex()))
                    .collect(),
            });
        }
        append_bytes(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("index serializes"),
        )
        .map_err(werr)?;
        if format == SaveFormat::Docker {
            append_bytes(
                &mut tar,
                "manifest.json",
                &serde_json::to_vec(&docker_manifest).expect("manifest serializes"),
            )
            .map_err(werr)?;
        }
        append_bytes(
            &mut tar,
            "oci-layout",
            json!({"imageLayoutVersion": "1.0.0"})
                .to_string()
                .as_bytes(),
        )
        .map_err(werr)?;
        tar.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }

    fn append_blob<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        digest: &Digest,
    ) -> Result<(), ImageError> {
        let f = self.content.open_blob(digest)?;
        let size = f
            .metadata()
            .map_err(ImageError::io(format!("stat blob {digest}")))?
            .len();
        let mut h = file_header(size, 0o444);
        tar.append_data(
            &mut h,
            format!("blobs/sha256/{}", digest.hex()),
            std::io::BufReader::with_capacity(1 << 20, f),
        )
        .map_err(ImageError::io("writing archive"))
    }
}

fn file_header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = file_header(data.len() as u64, 0o444);
    tar.append_data(&mut h, path, data)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    tar.append_data(&mut h, path, io::empty())
}
