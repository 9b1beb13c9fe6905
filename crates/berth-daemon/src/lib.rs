//! The berth engine's composition root. It resolves the configuration,
//! takes the data-root lock, opens the stores, builds the services —
//! images, volumes, networks, containers, builds, each given the others it
//! needs as handles — wires them into the API adapters ([`api`]) and
//! serves the Engine API on every configured host until SIGTERM or SIGINT.
//!
//! Everything is wired explicitly here; nothing registers itself, and no
//! service holds the others through a common object.

mod api;
mod build;
pub mod config;
mod containers;
mod distribution;
mod events;
mod images;
mod lock;
mod network;
mod rootpath;
mod swarm;
mod volumes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_core::{ErrorKind, HasKind};
use berth_image::ImageStore;
use tokio::sync::watch;

use config::Host;
pub use config::{DaemonConfig, Flags};
use events::EventBus;
use lock::DataRootLock;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Locked(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("opening the image store: {0}")]
    Images(#[from] berth_image::ImageError),
    #[error("loading containers: {0}")]
    Containers(String),
}

impl HasKind for DaemonError {
    fn kind(&self) -> ErrorKind {
        match self {
            DaemonError::Config(_) => ErrorKind::InvalidArgument,
            DaemonError::Locked(_) => ErrorKind::FailedPrecondition,
            DaemonError::Io { .. } => ErrorKind::Internal,
            DaemonError::Images(e) => e.kind(),
            DaemonError::Containers(_) => ErrorKind::Internal,
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let context = context.into();
    move |source| DaemonError::Io { context, source }
}

fn init_tracing(level: &str) {
    let level = if level == "fatal" { "error" } else { level };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn make_dir(path: &Path, mode: u32) -> Result<(), DaemonError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io(format!("creating {}", path.display())))?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    Ok(())
}

/// A stable identity for this engine, kept in the data-root.
fn engine_id(data_root: &Path) -> Result<String, DaemonError> {
    let path = data_root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let b = id.as_bytes();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        std::str::from_utf8(&b[0..8]).unwrap_or_default(),
        std::str::from_utf8(&b[8..12]).unwrap_or_default(),
        std::str::from_utf8(&b[12..16]).unwrap_or_default(),
        std::str::from_utf8(&b[16..20]).unwrap_or_default(),
        std::str::from_utf8(&b[20..32]).unwrap_or_default()
    );
    std::fs::write(&path, &uuid).map_err(io(format!("writing {}", path.display())))?;
    Ok(uuid)
}

/// Runs the engine in the foreground until SIGTERM or SIGINT.
pub fn run(flags: Flags) -> Result<(), DaemonError> {
    let config = DaemonConfig::resolve(flags)?;
    init_tracing(&config.log_level);
    for k in &config.ignored_keys {
        tracing::warn!(key = %k, "configuration key is not used by berth");
    }
    make_dir(&config.data_root, 0o711)?;
    make_dir(&config.exec_root, 0o700)?;
    let lock = DataRootLock::acquire(&config.data_root)?;
    tracing::debug!(lock = %lock.path().display(), "data-root locked");
    // The system's root certificates take tens of milliseconds to read;
    // read them now, off the start-up path, not at the first pull.
    std::thread::spawn(berth_distribution::client::load_root_certificates);
    // A crash may have left builds' tmpfs mounted under tmp/, which the
    // image store clears.
    build::release_leftover_mounts(&config.data_root.join("tmp"));
    let engine_id = engine_id(&config.data_root)?;
    let config = Arc::new(config);
    let events = Arc::new(EventBus::default());
    let images = Arc::new(images::ImageService::new(
        ImageStore::open(&config.data_root)?,
        events.clone(),
        berth_distribution::RegistryOptions {
            mirrors: config.registry_mirrors.clone(),
            insecure: config.insecure_registries.clone(),
        },
    ));
    let volumes = Arc::new(
        volumes::Volumes::open(&config.data_root)
            .map_err(|e| DaemonError::Containers(e.to_string()))?,
    );
    let networks = Arc::new(
        network::Networks::open(
            &config.data_root,
            &config.exec_root,
            &config.bridge,
            config.bip.as_deref(),
        )
        .map_err(|e| DaemonError::Config(format!("setting up networks: {e}")))?,
    );
    let containers = containers::ContainerService::new(
        containers::Containers::open(&config.data_root, &config.exec_root)
            .map_err(|e| DaemonError::Containers(e.to_string()))?,
        images.clone(),
        volumes.clone(),
        networks.clone(),
        events.clone(),
    );
    containers.restore_containers();
    containers.network_sweep();
    let swarm = swarm::SwarmService::new(
        &config.data_root,
        containers.clone(),
        images.clone(),
        events.clone(),
    );
    let builds = Arc::new(build::BuildService::new(
        config.clone(),
        images.clone(),
        containers.clone(),
    ));
    let api = Arc::new(api::Api {
        config: config.clone(),
        engine_id,
        events,
        images,
        volumes,
        networks,
        containers,
        builds,
        swarm: swarm.clone(),
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("berth")
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))?;
    if let Err(e) = swarm.resume(rt.handle().clone()) {
        tracing::error!(error = %e, "reopening the swarm state; swarm mode stays off until it is fixed or left");
    }
    let result = rt.block_on(serve(api, &config));
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(lock);
    result
}

/// Removes a stale socket file, refusing when a live daemon answers on it.
fn prepare_socket(path: &Path) -> Result<(), DaemonError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Locked(format!(
                "another daemon is already listening on {}",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(io(format!("removing stale socket {}", path.display())))?;
    }
    Ok(())
}

async fn serve(api: Arc<api::Api>, config: &DaemonConfig) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = berth_api::app(api);
    let mut tasks = tokio::task::JoinSet::new();
    let mut sockets: Vec<PathBuf> = Vec::new();
    let shutdown = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    for h in &config.hosts {
        match config::parse_host(h)? {
            Host::Unix(path) => {
                prepare_socket(&path)?;
                let listener = tokio::net::UnixListener::bind(&path)
                    .map_err(io(format!("listening on {}", path.display())))?;
                // Root-only access, as Docker's socket without a docker group.
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
                    .map_err(io(format!("chmod {}", path.display())))?;
                sockets.push(path.clone());
                tracing::info!(socket = %path.display(), "API listening");
                tasks.spawn(berth_api::serve_unix(
                    listener,
                    app.clone(),
                    shutdown(stop_rx.clone()),
                ));
            }
            Host::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(io(format!("listening on tcp://{addr}")))?;
                tracing::warn!(address = %addr, "API listening on TCP without TLS: anyone who can reach it controls the host");
                tasks.spawn(berth_api::serve_tcp(
                    listener,
                    app.clone(),
                    shutdown(stop_rx.clone()),
                ));
            }
        }
    }
    let pid_file = config.exec_root.join("berth.pid");
    std::fs::write(&pid_file, std::process::id().to_string())
        .map_err(io(format!("writing {}", pid_file.display())))?;
    tracing::info!(data_root = %config.data_root.display(), version = env!("CARGO_PKG_VERSION"), "engine ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("installing SIGTERM handler"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(io("installing SIGINT handler"))?;
    let mut failure = None;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        Some(r) = tasks.join_next() => {
            if let Ok(Err(e)) = r {
                tracing::error!(error = %e, "API server failed");
                failure = Some(DaemonError::Io { context: "serving the API".into(), source: e });
            }
        }
    }
    let _ = stop_tx.send(true);
    // Long-lived streams (events, logs -f) would hold a graceful shutdown
    // open forever: give requests in flight a moment, then cut the rest.
    if tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    for s in &sockets {
        let _ = std::fs::remove_file(s);
    }
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("engine stopped");
    failure.map_or(Ok(()), Err)
}
