//! `load`: images from a tar archive in any of the layouts `docker save`,
//! `berth save` and `skopeo copy` write:
//! - docker-archive: `manifest.json` listing config and layer paths (legacy
//!   `<id>/layer.tar` with symlinks between duplicates, or blob paths);
//! - OCI image layout: `index.json` → manifests (or nested indexes) → blobs.
//!
//! The archive is streamed once. Each regular file goes into a private
//! staging content store under `tmp/` (so its digest is computed as it
//! arrives); paths are only map keys, never file system paths, so entry
//! names cannot point anywhere. Then manifests are read, every blob that a
//! manifest names by digest is checked against that digest, each layer is
//! decompressed and unpacked (checked against the config's diff IDs), and
//! the images are published. The staging store is removed in every case.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use berth_content::ContentStore;
use berth_core::{Digest, Reference};
use berth_snapshot::decompressed;

use crate::config::{host_architecture, ImageConfig};
use crate::import::{now_nanos, sync_filesystem, StagedLayer};
use crate::manifest::{
    self, parse_manifest_or_index, Descriptor, DockerArchiveEntry, ManifestKind,
};
use crate::meta::ImageRecord;
use crate::{ImageError, ImageStore};

/// Bytes of small files (manifests, configs) kept in memory per load.
const METADATA_BUDGET: u64 = 64 << 20;
const SMALL_FILE: u64 = 4 << 20;

/// An image a load added, with the tags it carried.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

struct Archive {
    staging: ContentStore,
    files: HashMap<String, (Digest, u64)>,
    small: HashMap<Digest, Vec<u8>>,
    links: HashMap<String, String>,
}

struct TmpDir(std::path::PathBuf);
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lexically normalizes an archive path: drops `.`/empty parts and a leading
/// `/`, resolves `..` within the archive (never above its root).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Archive {
    fn lookup(&self, path: &str) -> Option<(Digest, u64)> {
        let mut p = clean(path);
        for _ in 0..32 {
            if let Some(f) = self.files.get(&p) {
                return Some(f.clone());
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn read_small(&self, path: &str, what: &str) -> Result<(Digest, Vec<u8>), ImageError> {
        let (d, _) = self.lookup(path).ok_or_else(|| {
            ImageError::Archive(format!("{what} {path:?} is missing from the archive"))
        })?;
        let bytes = self
            .small
            .get(&d)
            .cloned()
            .ok_or_else(|| ImageError::Archive(format!("{what} {path:?} is too large")))?;
        Ok((d, bytes))
    }

    fn blob_path(d: &Digest) -> String {
        format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
    }

    fn blob(&self, desc: &Descriptor) -> Result<(Digest, u64), ImageError> {
        let (d, size) = self
            .lookup(&Archive::blob_path(&desc.digest))
            .ok_or_else(|| {
                ImageError::Archive(format!("blob {} is missing from the archive", desc.digest))
            })?;
        if d != desc.digest {
            return Err(ImageError::Archive(format!(
                "blob {} has digest {d}: the archive is corrupt",
                desc.digest
            )));
        }
        Ok((d, size))
    }
}

struct Candidate {
    config: Digest,
    layers: Vec<Digest>,
    tags: Vec<Reference>,
}

impl ImageStore {
    pub fn load(&self, input: Box<dyn Read + Send>) -> Result<Vec<Loaded>, ImageError> {
        let dir = self
            .tmp
            .join(format!("load-{:016x}", rand::random::<u64>()));
        let _cleanup = TmpDir(dir.clone());
        let archive = self.read_archive(input, &dir)?;
        let candidates = if archive.lookup("manifest.json").is_some() {
            docker_candidates(&archive)?
        } else if archive.lookup("index.json").is_some() {
            oci_candidates(&archive)?
        } else {
            return Err(ImageError::Archive(
                "no manifest.json or index.json found: not an image archive".into(),
            ));
        };
        let mut out = Vec::new();
        for c in candidates {
            out.push(self.load_one(&archive, c)?);
        }
        Ok(out)
    }

    fn read_archive(
        &self,
        input: Box<dyn Read + Send>,
        dir: &std::path::Path,
    ) -> Result<Archive, ImageError> {
        let staging = ContentStore::open(dir)?;
        let mut archive = Archive {
            staging,
            files: HashMap::new(),
            small: HashMap::new(),
            links: HashMap::new(),
        };
        let mut reader = decompressed(input).map_err(ImageError::io("reading archive"))?;
        let mut tar = tar::Archive::new(&mut reader);
        let mut budget = METADATA_BUDGET;
        let rerr = |e: std::io::Error| ImageError::Archive(format!("reading tar: {e}"));
        for entry in tar.entries().map_err(rerr)? {
            let mut entry = entry.map_err(rerr)?;
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let mut w = archive.staging.writer()?;
                    let mut keep = Vec::new();
                    if size <= SMALL_FILE && size <= budget {
                        entry.read_to_end(&mut keep).map_err(rerr)?;
                        std::io::Write::write_all(&mut w, &keep)
                            .map_err(ImageError::io("staging archive entry"))?;
                        budget -= size;
                    } else {
                        std::io::copy(&mut entry, &mut w).map_err(rerr)?;
                    }
                    let (d, n) = w.commit(None)?;
                    if n == size && keep.len() as u64 == size {
                        archive.small.insert(d.clone(), keep);
                    }
                    archive.files.insert(name, (d, n));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Symlink
                        && !target.starts_with('/')
                    {
                        let parent = name.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                        clean(&format!("{parent}/{target}"))
                    } else {
                        clean(&target)
                    };
                    archive.links.insert(name, resolved);
                }
                _ => {}
            }
        }
        // Read to the end so a client streaming the archive is not cut off.
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(rerr)?;
        Ok(archive)
    }

    fn load_one(&self, archive: &Archive, c: Candidate) -> Result<Loaded, ImageError> {
        let config_bytes = archive.small.get(&c.config).ok_or_else(|| {
            ImageError::Archive(format!("image config {} is missing or too large", c.config))
        })?;
        let config = ImageConfig::parse(config_bytes).map_err(|e| {
            ImageError::Archive(format!("image config {} is not valid: {e}", c.config))
        })?;
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != c.layers.len() {
            return Err(ImageError::Archive(format!(
                "image {} lists {} layers but its config has {} diff ids",
                c.config.short(),
                c.layers.len(),
                diff_ids.len()
            )));
        }
        // Unpack what this store lacks, outside the publish lock.
        let chains = manifest::chain_ids(&diff_ids);
        let mut staged: Vec<Option<StagedLayer>> = Vec::new();
        for (i, blob) in c.layers.iter().enumerate() {
            if self.content.exists(&diff_ids[i]) && self.snapshots.exists(chains[i].hex()) {
                staged.push(None);
                continue;
            }
            let f = archive.staging.open_blob(blob)?;
            let reader = decompressed(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
                .map_err(ImageError::io(format!("reading layer {blob}")))?;
            staged.push(Some(self.stage_layer(reader)?));
        }
        sync_filesystem(self.content.root())?;

        let _guard = self.publish.lock().expect("publish lock");
        let mut layers = Vec::new();
        let mut parent: Option<Digest> = None;
        for (i, s) in staged.into_iter().enumerate() {
            let record = match s {
                Some(s) => {
                    let (rec, _) =
                        self.publish_layer(s, parent.as_ref(), Some(&diff_ids[i]))
                            .map_err(|e| match e {
                                ImageError::Content(
                                    berth_content::ContentError::DigestMismatch { actual, .. },
                                ) => ImageError::Archive(format!(
                            "layer {} of image {} has diff id {actual}, but its config says {}",
                            i + 1,
                            c.config.short(),
                            diff_ids[i]
                        )),
                                e => e,
                            })?;
                    rec
                }
                None => {
                    let info = self.snapshots.info(chains[i].hex()).map_err(|_| {
                        ImageError::Conflict(format!(
                            "layer {} was removed during the load; retry",
                            diff_ids[i]
                        ))
                    })?;
                    crate::meta::LayerRecord {
                        diff_id: diff_ids[i].clone(),
                        size: info.size,
                    }
                }
            };
            layers.push(record);
            parent = Some(chains[i].clone());
        }
        self.content.adopt(&archive.staging, &c.config)?;
        let record = ImageRecord {
            id: c.config.clone(),
            layers,
            added_at: now_nanos(),
            last_tag_time: None,
            parent: None,
        };
        self.publish_image(record, &c.tags)?;
        Ok(Loaded {
            id: c.config,
            tags: c.tags,
        })
    }
}

fn docker_candidates(archive: &Archive) -> Result<Vec<Candidate>, ImageError> {
    let (_, bytes) = archive.read_small("manifest.json", "manifest")?;
    let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::Archive(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let (config, _) = archive.read_small(&e.config, "config")?;
        let mut layers = Vec::new();
        for l in &e.layers {
            layers.push(
                archive
                    .lookup(l)
                    .ok_or_else(|| {
                        ImageError::Archive(format!("layer {l:?} is missing from the archive"))
                    })?
                    .0,
            );
        }
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            tags.push(Reference::parse_normalized(&t)?);
        }
        out.push(Candidate {
            config,
            layers,
            tags,
        });
    }
    Ok(out)
}

fn oci_candidates(archive: &Archive) -> Result<Vec<Candidate>, ImageError> {
    let (_, bytes) = archive.read_small("index.json", "index")?;
    let index = match parse_manifest_or_index(&bytes)
        .map_err(|e| ImageError::Archive(format!("index.json: {e}")))?
    {
        ManifestKind::Index(i) => i,
        ManifestKind::Image(_) => {
            return Err(ImageError::Archive(
                "index.json is a manifest, not an index".into(),
            ))
        }
    };
    // One candidate per manifest digest, collecting the names that point at it.
    let mut by_manifest: BTreeMap<Digest, Candidate> = BTreeMap::new();
    let mut order = Vec::new();
    for desc in &index.manifests {
        let name = tag_from_annotations(&desc.annotations);
        let m = resolve_manifest(archive, desc, 0)?;
        let (mdigest, manifest) = m;
        let entry = by_manifest.entry(mdigest.clone()).or_insert_with(|| {
            order.push(mdigest.clone());
            Candidate {
                config: manifest.config.digest.clone(),
                layers: vec![],
                tags: vec![],
            }
        });
        if entry.layers.is_empty() {
            archive.blob(&manifest.config)?;
            for l in &manifest.layers {
                if l.media_type.contains("nondistributable") || l.media_type.contains("foreign") {
                    return Err(ImageError::Archive(format!(
                        "layer {} is a foreign layer ({}), which berth does not fetch",
                        l.digest, l.media_type
                    )));
                }
                entry.layers.push(archive.blob(l)?.0);
            }
        }
        if let Some(n) = name {
            if !entry.tags.contains(&n) {
                entry.tags.push(n);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|d| by_manifest.remove(&d))
        .collect())
}

/// Follows a descriptor to an image manifest, choosing this host's platform
/// in nested indexes.
fn resolve_manifest(
    archive: &Archive,
    desc: &Descriptor,
    depth: u32,
) -> Result<(Digest, manifest::Manifest), ImageError> {
    if depth > 4 {
        return Err(ImageError::Archive("image indexes nest too deeply".into()));
    }
    archive.blob(desc)?;
    let bytes = archive
        .small
        .get(&desc.digest)
        .ok_or_else(|| ImageError::Archive(format!("manifest {} is too large", desc.digest)))?;
    match parse_manifest_or_index(bytes)
        .map_err(|e| ImageError::Archive(format!("manifest {}: {e}", desc.digest)))?
    {
        ManifestKind::Image(m) => Ok((desc.digest.clone(), m)),
        ManifestKind::Index(idx) => {
            let arch = host_architecture();
            let pick = idx
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .or_else(|| {
                    if idx.manifests.len() == 1 {
                        idx.manifests.first()
                    } else {
                        None
                    }
                })
                .ok_or_else(|| {
                    ImageError::Archive(format!(
                        "index {} has no manifest for linux/{arch}",
                        desc.digest
                    ))
                })?;
            resolve_manifest(archive, pick, depth + 1)
        }
    }
}

fn tag_from_annotations(a: &BTreeMap<String, String>) -> Option<Reference> {
    if let Some(n) = a.get(manifest::ANNOTATION_IMAGE_NAME) {
        if let Ok(r) = Reference::parse_normalized(n) {
            return Some(r);
        }
    }
    // skopeo writes the whole `name:tag` here; a bare tag names no repository.
    let n = a.get(manifest::ANNOTATION_REF_NAME)?;
    if n.contains(':') || n.contains('/') {
        Reference::parse_normalized(n).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn archive_paths_stay_inside_the_archive() {
        assert_eq!(clean("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(clean("/../../etc/shadow"), "etc/shadow");
        assert_eq!(clean("a/../b/./c/"), "b/c");
    }
}
