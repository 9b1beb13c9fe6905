//! `berth registry serve|gc`: flags handed to berth-registry.

use std::path::PathBuf;

use berth_core::HasKind;
use berth_registry::{AuthConfig, Config, ProxyConfig, TlsConfig, DEFAULT_ADDR, DEFAULT_ROOT};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth registry",
    bin_name = "berth registry",
    about = "Run or maintain an OCI distribution registry",
    version
)]
struct RegistryArgs {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the registry in the foreground
    Serve {
        /// Address to listen on (all interfaces, port 5000, like distribution)
        #[arg(long, default_value = DEFAULT_ADDR, value_name = "HOST:PORT")]
        addr: String,
        /// Storage root
        #[arg(long, default_value = DEFAULT_ROOT, value_name = "DIR")]
        root: PathBuf,
        /// PEM certificate chain; serves HTTPS together with --tls-key
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// none | htpasswd:FILE (bcrypt, htpasswd -B) | token:FILE (Bearer tokens, users from FILE)
        #[arg(long, default_value = "none", value_name = "MODE")]
        auth: String,
        /// Token mode: access rules, one `WHO PATTERN ACTIONS` per line
        /// (default: users push to USERNAME/*, every user pulls)
        #[arg(long, value_name = "FILE")]
        token_acl: Option<PathBuf>,
        /// Refuse every write
        #[arg(long)]
        read_only: bool,
        /// Be a pull-through cache of this registry (scheme://host[:port],
        /// e.g. https://registry-1.docker.io): pulls fetch what is missing
        /// and keep it; pushes and deletes are refused
        #[arg(long, value_name = "URL")]
        proxy_remote: Option<String>,
        /// User name for the remote of --proxy-remote
        #[arg(long, value_name = "USER", requires = "proxy_remote")]
        proxy_username: Option<String>,
        /// Password for the remote of --proxy-remote (better: the
        /// BERTH_REGISTRY_PROXY_PASSWORD environment variable)
        #[arg(
            long,
            value_name = "PASSWORD",
            env = "BERTH_REGISTRY_PROXY_PASSWORD",
            hide_env_values = true
        )]
        proxy_password: Option<String>,
    },
    /// Delete blobs no manifest references; safe while the registry serves:
    /// blobs (or links to them) modified within --grace are kept, and pushes
    /// committing a manifest during the collection are seen
    Gc {
        /// Storage root
        #[arg(long, default_value = DEFAULT_ROOT, value_name = "DIR")]
        root: PathBuf,
        /// Keep unreferenced blobs younger than this (0, 90s, 30m, 1h, 2d);
        /// 0 deletes them all: only safe with no pushes in progress
        #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = berth_registry::parse_grace)]
        grace: std::time::Duration,
    },
}

fn fail(e: &(impl std::fmt::Display + HasKind)) -> i32 {
    eprintln!("berth registry: {e}");
    match e.kind() {
        berth_core::ErrorKind::InvalidArgument => 125,
        _ => 1,
    }
}

pub fn main() -> i32 {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let parsed = match RegistryArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs written to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match parsed.cmd {
        Cmd::Gc { root, grace } => {
            match berth_registry::gc_with(&root, &berth_registry::GcOptions { grace }) {
                Ok(r) => {
                    println!(
                    "kept {} blobs ({} unreferenced but younger than the grace period), deleted {} ({} bytes), removed {} links",
                    r.marked + r.young,
                    r.young,
                    r.deleted.len(),
                    r.bytes_freed,
                    r.links_removed
                );
                    0
                }
                Err(e) => fail(&e),
            }
        }
        Cmd::Serve {
            addr,
            root,
            tls_cert,
            tls_key,
            auth,
            token_acl,
            read_only,
            proxy_remote,
            proxy_username,
            proxy_password,
        } => {
            let mut auth: AuthConfig = match auth.parse() {
                Ok(a) => a,
                Err(e) => return fail(&e),
            };
            match &mut auth {
                AuthConfig::Token { acl, .. } => *acl = token_acl,
                _ if token_acl.is_some() => {
                    eprintln!("berth registry: --token-acl needs --auth token:FILE");
                    return 125;
                }
                _ => {}
            }
            let config = Config {
                addr,
                root,
                auth,
                tls: tls_cert
                    .zip(tls_key)
                    .map(|(cert, key)| TlsConfig { cert, key }),
                read_only,
                proxy: proxy_remote.map(|remote| ProxyConfig {
                    remote,
                    username: proxy_username,
                    password: proxy_password,
                }),
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("berth registry: tokio runtime: {e}");
                    return 1;
                }
            };
            rt.block_on(async {
                let handle = match berth_registry::serve(config).await {
                    Ok(h) => h,
                    Err(e) => return fail(&e),
                };
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                tracing::info!("registry shutting down");
                handle.shutdown().await;
                0
            })
        }
    }
}
