//! Test kit: a registry on 127.0.0.1:0 with its own temp root, a tiny OCI
//! image made on the spot, raw HTTP for paths clients would normalize.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use berth_core::Digest;
use berth_registry::{serve, AuthConfig, Config, ServerHandle, TlsConfig};

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub handle: ServerHandle,
}

impl Registry {
    pub async fn start() -> Registry {
        Registry::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut Config)) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let handle = start_on(dir.path(), f).await;
        Registry { dir, handle }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
    pub fn hostport(&self) -> String {
        self.addr().to_string()
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.url())
    }
    /// Restarts the server on the same root (new port), as a crash would.
    pub async fn restart(self, f: impl FnOnce(&mut Config)) -> Registry {
        let Registry { dir, handle } = self;
        handle.shutdown().await;
        let handle = start_on(dir.path(), f).await;
        Registry { dir, handle }
    }
    pub async fn stop(self) {
        self.handle.shutdown().await;
    }
}

async fn start_on(dir: &Path, f: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut c = Config::new("127.0.0.1:0", dir.join("root"));
    f(&mut c);
    serve(c).await.expect("registry starts")
}

/// Writes an htpasswd file (bcrypt, `$2y$` as `htpasswd -B` writes) and
/// returns its path.
pub fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let mut s = String::new();
    for (u, p) in users {
        let h = bcrypt::hash(p, 4).unwrap().replacen("$2b$", "$2y$", 1);
        s.push_str(&format!("{u}:{h}\n"));
    }
    let p = dir.join("htpasswd");
    std::fs::write(&p, s).unwrap();
    p
}

pub fn basic_auth(dir: &Path, users: &[(&str, &str)]) -> AuthConfig {
    AuthConfig::Htpasswd(htpasswd(dir, users))
}

pub fn token_auth(dir: &Path, users: &[(&str, &str)]) -> AuthConfig {
    AuthConfig::Token {
        htpasswd: htpasswd(dir, users),
        acl: None,
    }
}

/// A self-signed certificate for 127.0.0.1 made by the openssl CLI.
pub fn self_signed(dir: &Path) -> TlsConfig {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl CLI is installed (apt-get install openssl)");
    assert!(st.success(), "openssl req failed");
    TlsConfig { cert, key }
}

/// A one-layer OCI image in an OCI layout directory, tagged `tag`.
pub struct TestImage {
    pub layout: PathBuf,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
}

pub fn make_image(dir: &Path, tag: &str, content: &[u8]) -> TestImage {
    let layout = dir.join(format!("layout-{tag}"));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", content).unwrap();
    let tar = b.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&tar);
    // Already gzip'd, so skopeo pushes the blobs as they are (it would
    // compress an uncompressed layer and rewrite the manifest).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let ld = Digest::sha256_of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/hello"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    )
    .into_bytes();
    let cd = Digest::sha256_of(&config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    let md = Digest::sha256_of(&manifest);
    for (d, data) in [(&ld, &layer), (&cd, &config), (&md, &manifest)] {
        std::fs::write(blobs.join(d.hex()), data).unwrap();
    }
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
        manifest.len()
    );
    std::fs::write(layout.join("index.json"), index).unwrap();
    TestImage {
        layout,
        manifest,
        config,
        layer,
    }
}

/// Sends `method path` verbatim (no URL normalization) and returns the
/// status code and the body.
pub fn raw_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Every path under `dir`, sorted (to show nothing was created).
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}
