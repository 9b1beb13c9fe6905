//! In-memory tar archives with arbitrary (including malicious) entry names, and
//! docker-archive wrappers around such layers.
//!
//! Names and link targets are written straight into the header bytes: the `tar` crate's
//! path setters refuse `..` and absolute paths, which is exactly what these tests need.

use serde_json::json;

/// One tar entry.
#[derive(Clone, Debug)]
pub enum Entry {
    File { name: String, data: Vec<u8> },
    Dir { name: String },
    Symlink { name: String, target: String },
    Hardlink { name: String, target: String },
}

impl Entry {
    pub fn file(name: &str, data: &[u8]) -> Entry {
        Entry::File {
            name: name.into(),
            data: data.to_vec(),
        }
    }
    pub fn dir(name: &str) -> Entry {
        Entry::Dir { name: name.into() }
    }
    pub fn symlink(name: &str, target: &str) -> Entry {
        Entry::Symlink {
            name: name.into(),
            target: target.into(),
        }
    }
    pub fn hardlink(name: &str, target: &str) -> Entry {
        Entry::Hardlink {
            name: name.into(),
            target: target.into(),
        }
    }
}

fn put(field: &mut [u8], value: &str) {
    let b = value.as_bytes();
    assert!(
        b.len() < field.len(),
        "tar name {value:?} longer than {} bytes",
        field.len() - 1
    );
    field.fill(0);
    field[..b.len()].copy_from_slice(b);
}

/// Build a ustar-style archive from `entries`, in order, with raw names.
pub fn build(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_704_067_200); // 2024-01-01
        let (name, data, link): (&str, &[u8], Option<&str>) = match e {
            Entry::File { name, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (name, data, None)
            }
            Entry::Dir { name } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (name, &[], None)
            }
            Entry::Symlink { name, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                (name, &[], Some(target))
            }
            Entry::Hardlink { name, target } => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                (name, &[], Some(target))
            }
        };
        h.set_size(data.len() as u64);
        put(&mut h.as_old_mut().name, name);
        if let Some(t) = link {
            put(&mut h.as_old_mut().linkname, t);
        }
        h.set_cksum();
        b.append(&h, data).expect("append tar entry");
    }
    b.into_inner().expect("finish tar")
}

/// The Go-style architecture name of this machine, as image configs spell it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

/// A docker-archive (`docker save` format) holding one image with `layer` as its only layer,
/// tagged `repo_tag`. Returns (archive bytes, image ID).
pub fn docker_archive(layer: &[u8], repo_tag: &str) -> (Vec<u8>, String) {
    docker_archive_layers(&[layer], repo_tag)
}

/// A docker-archive holding one image of `layers` (lowest first), tagged `repo_tag`.
/// Returns (archive bytes, image ID).
#[allow(dead_code)]
pub fn docker_archive_layers(layers: &[&[u8]], repo_tag: &str) -> (Vec<u8>, String) {
    let hexes: Vec<String> = layers.iter().map(|l| super::sha256_hex(l)).collect();
    let diff_ids: Vec<String> = hexes.iter().map(|h| format!("sha256:{h}")).collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|_| json!({ "created": "2024-01-01T00:00:00Z", "created_by": "berth tests" }))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": go_arch(),
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": { "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history
    }))
    .unwrap();
    let config_hex = super::sha256_hex(&config);
    let manifest = serde_json::to_vec(&json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [repo_tag],
        "Layers": hexes.iter().map(|h| format!("{h}/layer.tar")).collect::<Vec<_>>()
    }]))
    .unwrap();
    let mut entries = vec![Entry::file(&format!("{config_hex}.json"), &config)];
    for (h, l) in hexes.iter().zip(layers) {
        entries.push(Entry::dir(&format!("{h}/")));
        entries.push(Entry::file(&format!("{h}/layer.tar"), l));
    }
    entries.push(Entry::file("manifest.json", &manifest));
    (build(&entries), format!("sha256:{config_hex}"))
}

/// Names of the entries in a tar archive (for checking what `save` wrote).
pub fn entry_names(archive: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .expect("read tar")
        .map(|e| {
            let e = e.expect("tar entry");
            String::from_utf8_lossy(&e.path_bytes()).into_owned()
        })
        .collect()
}

/// Contents of the entry called `name` in a tar archive.
pub fn entry_data(archive: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut a = tar::Archive::new(archive);
    for e in a.entries().expect("read tar") {
        let mut e = e.expect("tar entry");
        if String::from_utf8_lossy(&e.path_bytes()).trim_start_matches("./") == name {
            let mut v = vec![];
            e.read_to_end(&mut v).unwrap();
            return Some(v);
        }
    }
    None
}
