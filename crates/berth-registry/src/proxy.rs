//! Pull-through cache (`berth registry serve --proxy-remote URL`), as
//! CNCF distribution's proxy mode: the registry mirrors one remote registry
//! and keeps what it served.
//!
//! - A manifest by **tag** always asks the remote first, so a moved tag is
//!   seen; the answer is stored (blob, repository link, tag) and served from
//!   storage. If the remote cannot be reached (or fails), the cached tag is
//!   served instead; if the remote says the tag does not exist, so do we.
//! - A manifest by **digest** is content-addressed: served from the cache,
//!   or fetched, verified against the digest and stored.
//! - A **blob** on a miss is fetched from the remote and streamed to the
//!   client while it is hashed into a temporary file under `ingest/`. The
//!   last chunk is held back until the digest has been checked, so a client
//!   never receives a complete body whose bytes are wrong. Only then is the
//!   file fsynced and renamed into `blobs/` (under the gc writer lock) and
//!   linked into the repository: the next pull is local. HEAD and Range
//!   requests on a miss first fill the cache, then are served from it.
//! - Pushes and deletes are refused (405 UNSUPPORTED, in `routes`).
//!
//! The remote is spoken to with berth-distribution's client
//! ([`berth_distribution::client::Session`]): one session per repository,
//! answering Docker Hub's bearer-token challenges (and basic auth) with
//! `--proxy-username/--proxy-password` when given.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use berth_core::Digest;
use berth_distribution::client::Session;
use berth_distribution::endpoint::Endpoint;
use berth_distribution::{Credentials, DistributionError};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{ConfigError, RegistryError};
use crate::manifest::{Manifest, MAX_MANIFEST_SIZE};
use crate::names::{ManifestRef, RepoName};
use crate::storage::Storage;

/// The remote a pull-through cache mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub remote: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A live proxy: the remote endpoint and a session per repository.
pub(crate) struct Proxy {
    endpoint: Endpoint,
    creds: Option<Credentials>,
    sessions: tokio::sync::Mutex<HashMap<String, Arc<Session>>>,
}

impl Proxy {
    pub(crate) fn new(c: &ProxyConfig) -> Result<Proxy, ConfigError> {
        let remote = c.remote.trim().trim_end_matches('/');
        let bad = |why: &str| ConfigError::ProxyRemote(format!("{:?}: {why}", c.remote));
        let rest = remote
            .strip_prefix("https://")
            .or_else(|| remote.strip_prefix("http://"))
            .ok_or_else(|| bad("expected an http:// or https:// URL"))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            return Err(bad("expected scheme://host[:port] with no path"));
        }
        if c.password.is_some() && c.username.is_none() {
            return Err(bad("--proxy-password needs --proxy-username"));
        }
        let creds = c.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: c.password.clone().unwrap_or_default(),
            serveraddress: remote.to_string(),
            ..Default::default()
        });
        Ok(Proxy {
            endpoint: Endpoint {
                urls: vec![remote.to_string()],
                mirror: false,
                insecure: false,
            },
            creds,
            sessions: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn remote(&self) -> &str {
        &self.endpoint.urls[0]
    }

    /// The session for `repo` (connecting and authenticating on first use;
    /// a cached session re-answers a 401 when its token expires).
    async fn session(&self, repo: &RepoName) -> Result<Arc<Session>, DistributionError> {
        if let Some(s) = self.sessions.lock().await.get(repo.as_str()) {
            return Ok(s.clone());
        }
        let s = Arc::new(
            Session::connect(&self.endpoint, repo.as_str(), "pull", self.creds.clone()).await?,
        );
        self.sessions
            .lock()
            .await
            .insert(repo.to_string(), s.clone());
        Ok(s)
    }

    fn upstream(&self, what: &str, e: DistributionError) -> RegistryError {
        RegistryError::Upstream(format!("{what} from {}: {e}", self.remote()))
    }

    /// Makes the manifest `reference` of `repo` current in the cache (see
    /// the module doc); the caller then serves it from storage.
    pub(crate) async fn manifest(
        &self,
        storage: &Storage,
        repo: &RepoName,
        reference: &ManifestRef,
    ) -> Result<(), RegistryError> {
        match reference {
            ManifestRef::Tag(tag) => {
                let fetched = match self.session(repo).await {
                    Ok(s) => s.get_manifest(tag).await,
                    Err(e) => Err(e),
                };
                match fetched {
                    Ok((bytes, ct)) => {
                        store_manifest(storage, repo, &bytes, ct.as_deref(), Some(tag))?;
                        Ok(())
                    }
                    Err(DistributionError::NotFound(m)) => Err(RegistryError::ManifestUnknown(
                        format!("{repo}:{tag} (remote: {m})"),
                    )),
                    Err(e) if storage.tag(repo, tag)?.is_some() => {
                        tracing::warn!(%repo, tag, remote = self.remote(), error = %e,
                            "remote failed; serving the cached manifest");
                        Ok(())
                    }
                    Err(e) => Err(self.upstream(&format!("fetching manifest {repo}:{tag}"), e)),
                }
            }
            ManifestRef::Digest(d) => {
                if storage.manifest_media_type(repo, d)?.is_some() {
                    return Ok(());
                }
                let s = self
                    .session(repo)
                    .await
                    .map_err(|e| self.upstream("connecting", e))?;
                let (bytes, ct) = s.get_manifest(&d.to_string()).await.map_err(|e| match e {
                    DistributionError::NotFound(_) => {
                        RegistryError::ManifestUnknown(format!("{repo}@{d}"))
                    }
                    e => self.upstream(&format!("fetching manifest {repo}@{d}"), e),
                })?;
                let got = Digest::sha256_of(&bytes);
                if &got != d {
                    return Err(RegistryError::Upstream(format!(
                        "{} sent manifest {got} for {d}",
                        self.remote()
                    )));
                }
                store_manifest(storage, repo, &bytes, ct.as_deref(), None)
            }
        }
    }

    /// A blob GET/HEAD. `Ok(None)`: the blob is (now) in `repo`, serve it
    /// from storage; `Ok(Some(r))`: a GET on a miss, streamed through.
    pub(crate) async fn blob(
        &self,
        storage: &Storage,
        repo: &RepoName,
        d: &Digest,
        whole_first: bool,
    ) -> Result<Option<Response>, RegistryError> {
        if storage.repo_blob_size(repo, d)?.is_some() {
            return Ok(None);
        }
        let s = self
            .session(repo)
            .await
            .map_err(|e| self.upstream("connecting", e))?;
        let unknown = |e: DistributionError| match e {
            DistributionError::NotFound(_) => RegistryError::BlobUnknown(d.clone()),
            e => self.upstream(&format!("fetching blob {d}"), e),
        };
        if storage.blob_size(d)?.is_some() {
            // Cached for another repository: link it here only if the
            // remote's repository has it too (knowing a digest is not access).
            if !s.blob_exists(d).await.map_err(unknown)? {
                return Err(RegistryError::BlobUnknown(d.clone()));
            }
            storage.link_blob(repo, d)?;
            return Ok(None);
        }
        let resp = s.get_blob(d).await.map_err(unknown)?;
        let len = resp.content_length();
        if whole_first {
            fill(storage.clone(), repo.clone(), d.clone(), resp, None).await?;
            return Ok(None);
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        let (st, r, dg) = (storage.clone(), repo.clone(), d.clone());
        tokio::spawn(async move {
            if let Err(e) = fill(st, r, dg.clone(), resp, Some(tx)).await {
                tracing::warn!(digest = %dg, error = %e, "proxied blob not cached");
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut b = Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .header("docker-content-digest", d.to_string())
            .header("etag", format!("\"{d}\""));
        if let Some(n) = len {
            b = b.header("content-length", n);
        }
        Ok(Some(
            b.body(Body::from_stream(stream)).expect("valid response"),
        ))
    }
}

/// Verifies and stores a manifest fetched from the remote, tagging it.
fn store_manifest(
    storage: &Storage,
    repo: &RepoName,
    bytes: &[u8],
    content_type: Option<&str>,
    tag: Option<&str>,
) -> Result<(), RegistryError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(RegistryError::Upstream(format!(
            "remote manifest is {} bytes, over the {MAX_MANIFEST_SIZE} byte cap",
            bytes.len()
        )));
    }
    let m = Manifest::parse(bytes, content_type.unwrap_or(""))
        .map_err(|e| RegistryError::Upstream(format!("remote sent a bad manifest: {e}")))?;
    let _lock = storage.writer_lock()?;
    let d = storage.put_blob_bytes(bytes)?;
    storage.link_manifest(repo, &d, &m.media_type)?;
    if let Some(s) = &m.subject {
        storage.add_referrer(repo, &s.digest, &d)?;
    }
    if let Some(t) = tag {
        storage.set_tag(repo, t, &d)?;
    }
    Ok(())
}

/// Downloads `resp` (the blob `d`) into `ingest/`, hashing as it goes and
/// forwarding chunks to `client` (one chunk behind, so the last one only
/// leaves once the digest is right), then publishes and links the blob.
/// The download goes on if the client goes away, so the cache is filled.
async fn fill(
    storage: Storage,
    repo: RepoName,
    d: Digest,
    mut resp: reqwest::Response,
    mut client: Option<tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>>,
) -> Result<(), RegistryError> {
    let tmp = storage
        .root()
        .join("ingest")
        .join(format!("proxy-{:016x}", rand::random::<u64>()));
    let res = async {
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(RegistryError::io(&tmp))?;
        let mut hasher = Sha256::new();
        let mut held: Option<Bytes> = None;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(RegistryError::Upstream(format!(
                        "downloading blob {d}: {e}"
                    )))
                }
            };
            f.write_all(&chunk).await.map_err(RegistryError::io(&tmp))?;
            hasher.update(&chunk);
            if let Some(prev) = held.replace(chunk) {
                forward(&mut client, prev).await;
            }
        }
        let got = Digest::from_sha256_hex(&hex::encode(hasher.finalize()))
            .expect("sha256 hex is a digest");
        if got != d {
            return Err(RegistryError::Upstream(format!(
                "the remote sent {got} for blob {d}"
            )));
        }
        f.sync_all().await.map_err(RegistryError::io(&tmp))?;
        drop(f);
        let (st, t, dg) = (storage.clone(), tmp.clone(), d.clone());
        tokio::task::spawn_blocking(move || st.publish_file(&t, &dg))
            .await
            .map_err(|e| RegistryError::Body(e.to_string()))??;
        storage.link_blob(&repo, &d)?;
        if let Some(last) = held {
            forward(&mut client, last).await;
        }
        Ok(())
    }
    .await;
    if let Err(e) = &res {
        let _ = tokio::fs::remove_file(&tmp).await;
        if let Some(c) = client {
            let _ = c.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    }
    res
}

async fn forward(
    client: &mut Option<tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>>,
    chunk: Bytes,
) {
    if let Some(c) = client {
        if c.send(Ok(chunk)).await.is_err() {
            *client = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls() {
        let p = |r: &str| {
            Proxy::new(&ProxyConfig {
                remote: r.into(),
                username: None,
                password: None,
            })
        };
        assert_eq!(
            p("https://registry-1.docker.io/").unwrap().remote(),
            "https://registry-1.docker.io"
        );
        assert_eq!(
            p("http://127.0.0.1:5000").unwrap().remote(),
            "http://127.0.0.1:5000"
        );
        for bad in [
            "",
            "registry-1.docker.io",
            "ftp://x",
            "http://",
            "http://h/v2",
        ] {
            let e = p(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.to_string().contains("--proxy-remote"), "{e}");
        }
        let e = Proxy::new(&ProxyConfig {
            remote: "http://h".into(),
            username: None,
            password: Some("x".into()),
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("--proxy-username"), "{e}");
    }
}
