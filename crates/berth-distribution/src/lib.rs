//! The registry client: pull and push images over the OCI distribution API
//! (spec.md "Pull" and "Push"), with Docker's token and basic auth
//! (docker-registry/auth/token.md), registry mirrors and insecure
//! registries as daemon.json configures them.
//!
//! Why a crate of its own rather than a `client` module in
//! `berth-registry`: the client writes into the image store (`berth-image`),
//! which sits above the registry server in the dependency order, and the
//! server has no use for an HTTP client stack. Both speak the same
//! protocol, and the tests run one against the other.
//!
//! Lifecycle of a pull: [`endpoint::endpoints`] turns a reference into the
//! registries to try (mirrors first for Docker Hub); [`client::Client`]
//! fetches the manifest (answering 401 challenges on the way), picks the
//! platform's manifest from an index, fetches the config, then downloads
//! the missing layers (three at a time), verifying each blob's digest as it
//! streams to disk, unpacks them and registers the image (see
//! [`pull::pull`]). A push compresses each layer once, skips blobs the
//! registry has, uploads the rest and puts a Docker v2.2 manifest
//! ([`push::push`]).

pub mod auth;
pub mod client;
pub mod endpoint;
mod error;
mod gzip;
pub mod pull;
pub mod push;

pub use auth::Credentials;
pub use endpoint::RegistryOptions;
pub use error::DistributionError;

/// One progress message, in the shape of Docker's JSON progress stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The layer (short digest) or tag the message is about.
    pub id: Option<String>,
    pub status: String,
    /// Bytes done and total, for "Downloading"/"Pushing".
    pub detail: Option<(u64, u64)>,
    /// Extra data (`aux`), e.g. the pushed tag's digest.
    pub aux: Option<serde_json::Value>,
}

impl Progress {
    pub fn status(status: impl Into<String>) -> Progress {
        Progress {
            id: None,
            status: status.into(),
            detail: None,
            aux: None,
        }
    }
    pub fn layer(id: &str, status: impl Into<String>) -> Progress {
        Progress {
            id: Some(id.to_string()),
            status: status.into(),
            detail: None,
            aux: None,
        }
    }
}

/// Where progress goes (the API turns it into JSON lines).
pub type ProgressSink = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// The registry domain a login's server address names
/// (`https://index.docker.io/v1/` → `docker.io`, `http://h:5000/` → `h:5000`).
pub fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

/// Checks credentials against a registry (`POST /auth`).
pub fn login(
    handle: &tokio::runtime::Handle,
    opts: &RegistryOptions,
    creds: Credentials,
) -> Result<(), DistributionError> {
    let domain = login_domain(&creds.serveraddress);
    let endpoint = opts
        .endpoints(&domain)
        .into_iter()
        .find(|e| !e.mirror)
        .expect("the registry itself is always an endpoint");
    handle.block_on(async {
        let s = client::Session::connect(&endpoint, "", "", Some(creds)).await?;
        s.check_login().await
    })
}
