//! Serving: bind, optional TLS (rustls), one hyper HTTP/1.1 connection per
//! accepted socket, the access log, and a handle to stop it all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::auth::Authorizer;
use crate::config::{Config, TlsConfig};
use crate::error::ConfigError;
use crate::routes::{dispatch, AppState, AuthUser};
use crate::storage::{Storage, Uploads};

/// The remote address of a request's connection.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// A running server. Dropping it leaves the server running; call
/// [`ServerHandle::shutdown`] to stop it.
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address actually bound (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, drops open connections and waits for the loop to end.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Runs until the server stops (it does not stop on its own).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// The registry as an axum router (for embedding; [`serve`] uses it).
pub fn router(config: &Config) -> Result<Router, ConfigError> {
    let storage = Storage::open(&config.root).map_err(|source| ConfigError::Root {
        path: config.root.clone(),
        source,
    })?;
    let state = Arc::new(AppState {
        uploads: Uploads::new(storage.clone()),
        storage,
        auth: Authorizer::from_config(&config.auth, &config.root)?,
        read_only: config.read_only,
        tls: config.tls.is_some(),
        proxy: config
            .proxy
            .as_ref()
            .map(crate::proxy::Proxy::new)
            .transpose()?,
    });
    Ok(Router::new()
        .fallback(dispatch)
        .with_state(state)
        // Blob bodies stream to disk; manifests have their own limit.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(access_log)))
}

/// Binds `config.addr` and serves the registry on the current tokio runtime.
pub async fn serve(config: Config) -> Result<ServerHandle, ConfigError> {
    let app = router(&config)?;
    let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|source| ConfigError::Bind {
            addr: config.addr.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ConfigError::Bind {
        addr: config.addr.clone(),
        source,
    })?;
    tracing::info!(%addr, tls = tls.is_some(), root = %config.root.display(),
        read_only = config.read_only,
        proxy_remote = config.proxy.as_ref().map(|p| p.remote.as_str()), "registry listening");
    let (stop, stopped) = oneshot::channel();
    let is_tls = tls.is_some();
    let task = tokio::spawn(accept_loop(listener, app, tls, stopped));
    Ok(ServerHandle {
        addr,
        tls: is_tls,
        stop: Some(stop),
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                let (tcp, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                // TCP_NODELAY, as Go's net package (and so docker-registry)
                // sets it: without it the body after a response head, or
                // the tail of a blob, can wait out the client's delayed
                // ACK (about 40 ms) for every request.
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "setting TCP_NODELAY");
                }
                let app = app.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    match tls {
                        None => serve_conn(TokioIo::new(tcp), peer, app).await,
                        Some(acc) => match acc.accept(tcp).await {
                            Ok(s) => serve_conn(TokioIo::new(s), peer, app).await,
                            Err(e) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                        },
                    }
                });
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_conn<I>(io: I, peer: SocketAddr, app: Router)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        let app = app.clone();
        async move {
            let r: Result<Response, Infallible> = app.oneshot(req.map(Body::new)).await;
            r
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

fn tls_acceptor(c: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ConfigError::Tls(format!("{}: {e}", c.cert.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::Tls(format!(
            "{}: no certificate",
            c.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&c.key)
        .map_err(|e| ConfigError::Tls(format!("{}: {e}", c.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// One structured line per request (target `berth_registry::access`).
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let remote = req
        .extensions()
        .get::<Peer>()
        .map(|p| p.0.to_string())
        .unwrap_or_default();
    let bytes_in = content_length(req.headers());
    let resp = next.run(req).await;
    let user = resp
        .extensions()
        .get::<AuthUser>()
        .map(|u| u.0.clone())
        .unwrap_or_default();
    tracing::info!(
        target: "berth_registry::access",
        %method,
        path,
        status = resp.status().as_u16(),
        bytes_in,
        bytes = content_length(resp.headers()),
        duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        user,
        remote,
    );
    resp
}

fn content_length(h: &axum::http::HeaderMap) -> u64 {
    h.get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
