//! Errors of the registry, each mapped once to the distribution spec's
//! error code ("Error Codes" table) and an HTTP status in [`RegistryError::code`]
//! and [`RegistryError::status`]; the JSON body is made in `routes`.

use std::io;
use std::path::PathBuf;

use berth_core::{Digest, ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(Digest),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry: {0}")]
    BlobUploadUnknown(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("manifest references a manifest or blob unknown to registry: {0}")]
    ManifestBlobUnknown(Digest),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest unknown to registry: {0}")]
    ManifestUnknown(String),
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    #[error("provided length did not match content length: {0}")]
    SizeInvalid(String),
    #[error("requested range not satisfiable: {0}")]
    RangeInvalid(String),
    #[error("invalid pagination parameter: {0}")]
    PaginationInvalid(String),
    #[error("manifest too large: {0} bytes")]
    ManifestTooLarge(usize),
    #[error("authentication required")]
    Unauthorized,
    #[error("requested access to the resource is denied")]
    Denied,
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    #[error("not found")]
    RouteUnknown,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("reading request body: {0}")]
    Body(String),
    /// A pull-through cache's remote failed or sent something wrong.
    #[error("upstream registry: {0}")]
    Upstream(String),
    #[error("registry storage i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl RegistryError {
    /// The spec's error code (`code` in the JSON body).
    pub fn code(&self) -> &'static str {
        use RegistryError::*;
        match self {
            BlobUnknown(_) => "BLOB_UNKNOWN",
            BlobUploadInvalid(_) | Body(_) => "BLOB_UPLOAD_INVALID",
            BlobUploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            DigestInvalid(_) => "DIGEST_INVALID",
            ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            ManifestInvalid(_) | ManifestTooLarge(_) => "MANIFEST_INVALID",
            ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            NameInvalid(_) => "NAME_INVALID",
            NameUnknown(_) | RouteUnknown => "NAME_UNKNOWN",
            // Docker's legacy code (docker-registry api.md), still what clients know.
            TagInvalid(_) => "TAG_INVALID",
            SizeInvalid(_) => "SIZE_INVALID",
            RangeInvalid(_) => "RANGE_INVALID",
            PaginationInvalid(_) => "PAGINATION_NUMBER_INVALID",
            Unauthorized => "UNAUTHORIZED",
            Denied => "DENIED",
            Unsupported(_) | MethodNotAllowed => "UNSUPPORTED",
            Io { .. } | Upstream(_) => "UNKNOWN",
        }
    }

    pub fn status(&self) -> u16 {
        use RegistryError::*;
        match self {
            BlobUnknown(_) | BlobUploadUnknown(_) | ManifestUnknown(_) | NameUnknown(_)
            | RouteUnknown => 404,
            BlobUploadInvalid(_)
            | DigestInvalid(_)
            | ManifestBlobUnknown(_)
            | ManifestInvalid(_)
            | NameInvalid(_)
            | TagInvalid(_)
            | SizeInvalid(_)
            | PaginationInvalid(_)
            | Body(_) => 400,
            RangeInvalid(_) => 416,
            ManifestTooLarge(_) => 413,
            Unauthorized => 401,
            Denied => 403,
            Unsupported(_) | MethodNotAllowed => 405,
            Io { .. } => 500,
            Upstream(_) => 502,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> RegistryError {
        let path = path.into();
        move |source| RegistryError::Io { path, source }
    }
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self.status() {
            404 => ErrorKind::NotFound,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            405 => ErrorKind::NotImplemented,
            500 => ErrorKind::Internal,
            502 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// Failures of starting the server or reading its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --auth value {0:?}: expected none, htpasswd:FILE or token:FILE")]
    AuthSpec(String),
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("binding {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("invalid --proxy-remote {0}")]
    ProxyRemote(String),
    #[error("registry root {path}: {source}")]
    Root { path: PathBuf, source: io::Error },
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::AuthSpec(_)
            | ConfigError::Syntax { .. }
            | ConfigError::Tls(_)
            | ConfigError::ProxyRemote(_) => ErrorKind::InvalidArgument,
            ConfigError::Read { source, .. }
            | ConfigError::Bind { source, .. }
            | ConfigError::Root { source, .. } => HasKind::kind(source),
        }
    }
}
