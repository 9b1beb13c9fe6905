//! The Docker Engine API over HTTP/1.1, as an adapter and nothing more.
//!
//! Each endpoint parses its request into typed options, calls a backend
//! trait ([`backend`]) and maps the outcome: values to Docker's JSON shapes
//! ([`types`]), failures to a status code through one function
//! ([`error::ApiError`]). The backend never sees HTTP; this crate holds no
//! business logic.
//!
//! Paths are accepted with and without a `/v1.NN` prefix; versions outside
//! [`MIN_API_VERSION`]..=[`API_VERSION`] are refused as dockerd does.

pub mod backend;
pub mod error;
pub mod filters;
mod query;
mod routes;
mod stream;
mod version;

use std::sync::Arc;

pub use berth_wire::{container_types, host_config, types};

pub use backend::Backend;
pub use error::ApiError;
pub use version::{ApiVersion, API_VERSION, MIN_API_VERSION};

/// The complete API as a service, version prefix handling included.
pub fn app(backend: Arc<dyn Backend>) -> axum::Router {
    let router = routes::router(backend);
    version::wrap(router)
}

/// Serves `app` on a unix socket until `shutdown` resolves.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `app` on a TCP listener until `shutdown` resolves.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // TCP_NODELAY, as Go's net package (dockerd) sets it: a small write
    // after the response head otherwise waits out the client's delayed
    // ACK (about 40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
    });
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
}
