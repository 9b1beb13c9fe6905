//! berth's OCI distribution server (`berth registry serve`).
//!
//! Implements the OCI distribution spec's Pull, Push, Content Discovery
//! and Content Management categories over HTTP/1.1 (optionally TLS), with
//! file-system storage ([`storage`]), three auth modes ([`auth`]), an access
//! log, and garbage collection safe while serving ([`gc()`]).
//!
//! Lifecycle: [`serve`] opens the storage root, binds, and returns a
//! [`ServerHandle`] whose accept loop runs on the caller's tokio runtime
//! until [`ServerHandle::shutdown`]. Everything written is verified against
//! its digest and made visible by an atomic rename, so a crash or restart
//! leaves either the old state or the new one; upload sessions resume after
//! a restart.
//!
//! With [`Config::proxy`] the registry is a pull-through cache of a remote
//! registry ([`proxy`]).
//!
//! Not implemented: schema 1
//! manifests, digests other than sha256 for new content, and referrers
//! pagination (all referrers come in one response).

pub mod auth;
pub mod config;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod names;
mod proxy;
mod routes;
mod server;
pub mod storage;

pub use config::{
    AuthConfig, Config, ProxyConfig, TlsConfig, DEFAULT_ADDR, DEFAULT_ROOT, TOKEN_SERVICE,
};
pub use error::{ConfigError, RegistryError};
pub use gc::{gc, gc_with, parse_grace, GcOptions, GcReport, DEFAULT_GRACE};
pub use server::{router, serve, ServerHandle};
