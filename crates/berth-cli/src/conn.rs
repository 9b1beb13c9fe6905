//! Reaching the engine: choosing the host, starting the engine in the
//! background when the default socket is silent, and a small raw HTTP
//! client for the endpoints whose shapes bollard's (newer) models do not
//! match or whose query parameters bollard cannot express.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{from_bollard, server_message, ApiError, ConnectError};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
pub const DAEMON_LOG_DIR: &str = "/var/log/berth";
pub const DAEMON_LOG: &str = "/var/log/berth/daemon.log";

/// Requests may stream gigabytes; bollard's timeout covers the whole wait
/// for response headers, so it is effectively disabled.
const REQUEST_TIMEOUT_SECS: u64 = 30 * 24 * 3600;
const AUTOSTART_WAIT: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The host to talk to and whether the user chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostChoice {
    pub url: String,
    pub explicit: bool,
}

/// `-H`, else `BERTH_HOST`, else `DOCKER_HOST`, else the default socket.
pub fn choose_host(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> HostChoice {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return HostChoice {
            url: h.to_string(),
            explicit: true,
        };
    }
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Some(h) = env(var).filter(|h| !h.is_empty()) {
            return HostChoice {
                url: h,
                explicit: true,
            };
        }
    }
    HostChoice {
        url: DEFAULT_HOST.to_string(),
        explicit: false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`
    Tcp(String),
}

pub fn parse_host(url: &str) -> Result<Endpoint> {
    if let Some(path) = url.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(anyhow!("invalid host {url:?}: empty socket path"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if url.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(url)));
    }
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            anyhow!("invalid host {url:?}: use unix:///path, tcp://host:port or http://host:port")
        })?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(anyhow!("invalid host {url:?}: missing address"));
    }
    let has_port = match rest.rfind(':') {
        Some(i) => {
            !rest.ends_with(']')
                && rest[i + 1..].chars().all(|c| c.is_ascii_digit())
                && i + 1 < rest.len()
        }
        None => false,
    };
    Ok(Endpoint::Tcp(if has_port {
        rest.to_string()
    } else {
        format!("{rest}:2375")
    }))
}

pub type RawBody = BoxBody<Bytes, io::Error>;

pub fn empty_body() -> RawBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full_body(b: impl Into<Bytes>) -> RawBody {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn stream_body<S>(s: S) -> RawBody
where
    S: Stream<Item = io::Result<Bytes>> + Send + Sync + 'static,
{
    StreamBody::new(s.map_ok(Frame::data)).boxed()
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn send(endpoint: &Endpoint, req: Request<RawBody>) -> io::Result<Response<Incoming>> {
    fn other(e: hyper::Error) -> io::Error {
        io::Error::other(e)
    }
    match endpoint {
        Endpoint::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(other)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(req).await.map_err(other)
        }
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(other)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            sender.send_request(req).await.map_err(other)
        }
    }
}

fn host_header(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Unix(_) => "berth".to_string(),
        Endpoint::Tcp(addr) => addr.clone(),
    }
}

/// True when `GET /_ping` answers 200 within a short timeout.
pub async fn ping(endpoint: &Endpoint) -> bool {
    let req = match Request::get("/_ping")
        .header("Host", host_header(endpoint))
        .body(empty_body())
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    matches!(
        tokio::time::timeout(PING_TIMEOUT, send(endpoint, req)).await,
        Ok(Ok(resp)) if resp.status().is_success()
    )
}

/// A connected engine: bollard for the typed endpoints, plus raw requests.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub host: String,
    endpoint: Endpoint,
    api_version: String,
}

impl Engine {
    /// Connects to the chosen host, starting the engine first when the host
    /// is the implicit default and nothing answers there.
    pub async fn connect(choice: &HostChoice) -> Result<Engine> {
        let endpoint = parse_host(&choice.url)?;
        if !choice.explicit && !ping(&endpoint).await {
            if let Endpoint::Unix(path) = &endpoint {
                autostart(&endpoint, path, &choice.url).await?;
            }
        }
        let docker = match &endpoint {
            Endpoint::Unix(path) => {
                let p = path
                    .to_str()
                    .ok_or_else(|| anyhow!("socket path is not UTF-8: {}", path.display()))?;
                Docker::connect_with_unix(p, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            Endpoint::Tcp(addr) => Docker::connect_with_http(
                &format!("http://{addr}"),
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(|e| from_bollard(e, &choice.url))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| from_bollard(e, &choice.url))?;
        let v = docker.client_version();
        let api_version = format!("{}.{}", v.major_version, v.minor_version);
        Ok(Engine {
            docker,
            host: choice.url.clone(),
            endpoint,
            api_version,
        })
    }

    /// The negotiated API version, e.g. `1.47`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub fn bollard_err(&self, e: bollard::errors::Error) -> anyhow::Error {
        from_bollard(e, &self.host)
    }

    /// Sends a request to `/v<version><path_and_query>`. A status of 400 or
    /// more becomes an [`ApiError`] carrying the server's message.
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: RawBody,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v{}{}", self.api_version, path_and_query))
            .header("Host", host_header(&self.endpoint))
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let req = builder.body(body).context("building request")?;
        let resp = send(&self.endpoint, req).await.map_err(|e| {
            anyhow::Error::new(ConnectError {
                host: self.host.clone(),
                detail: e.to_string(),
            })
        })?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let message = server_message(&String::from_utf8_lossy(&body));
            let message = if message.is_empty() {
                status.to_string()
            } else {
                message
            };
            return Err(ApiError {
                status: status.as_u16(),
                message,
            }
            .into());
        }
        Ok(resp)
    }

    pub async fn get_bytes(&self, path_and_query: &str) -> Result<Bytes> {
        let resp = self
            .raw(Method::GET, path_and_query, empty_body(), &[])
            .await?;
        Ok(resp
            .into_body()
            .collect()
            .await
            .context("reading response")?
            .to_bytes())
    }

    pub async fn get_json(&self, path_and_query: &str) -> Result<Value> {
        self.get_as(path_and_query).await
    }

    /// `GET`, the body decoded as `T` (a `berth_wire` type).
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path_and_query: &str) -> Result<T> {
        let body = self.get_bytes(path_and_query).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("decoding the response of {path_and_query}"))
    }
}

/// The two halves of a hijacked connection (attach, exec start): raw
/// bytes after `101 Switching Protocols`. `input` is `None` when the engine
/// answered `200` with a plain body instead of upgrading.
pub struct Hijacked {
    pub output: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    pub input: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
}

impl Engine {
    /// Sends a request asking to upgrade the connection (`Upgrade: tcp`) and
    /// returns the raw stream, as Docker's CLI does for attach and exec.
    pub async fn hijack(
        &self,
        method: Method,
        path_and_query: &str,
        json_body: Option<&Value>,
    ) -> Result<Hijacked> {
        let body = match json_body {
            Some(v) => http_body_util::Full::new(Bytes::from(serde_json::to_vec(v)?))
                .map_err(|never| match never {})
                .boxed(),
            None => empty_body(),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v{}{}", self.api_version, path_and_query))
            .header("Host", host_header(&self.endpoint))
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp");
        if json_body.is_some() {
            builder = builder.header("Content-Type", "application/json");
        }
        let req = builder.body(body).context("building request")?;
        let connect_err = |e: io::Error| {
            anyhow::Error::new(ConnectError {
                host: self.host.clone(),
                detail: e.to_string(),
            })
        };
        let resp = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_err)?;
                send_upgradable(stream, req).await.map_err(connect_err)?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                send_upgradable(stream, req).await.map_err(connect_err)?
            }
        };
        let status = resp.status();
        if status.as_u16() >= 400 {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let message = server_message(&String::from_utf8_lossy(&body));
            return Err(ApiError {
                status: status.as_u16(),
                message,
            }
            .into());
        }
        if status == hyper::StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(resp)
                .await
                .context("upgrading the connection")?;
            let (r, w) = tokio::io::split(TokioIo::new(upgraded));
            return Ok(Hijacked {
                output: Box::new(r),
                input: Some(Box::new(w)),
            });
        }
        let stream = resp
            .into_body()
            .into_data_stream()
            .map_err(io::Error::other);
        Ok(Hijacked {
            output: Box::new(tokio_util::io::StreamReader::new(stream)),
            input: None,
        })
    }
}

async fn send_upgradable<S>(stream: S, req: Request<RawBody>) -> io::Result<Response<Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender.send_request(req).await.map_err(io::Error::other)
}

/// Starts `<current exe> daemon` in its own session, output appended to the
/// daemon log, and waits until the socket answers.
async fn autostart(endpoint: &Endpoint, socket: &Path, url: &str) -> Result<()> {
    let fail = |detail: String| {
        anyhow!("Cannot connect to the berth engine at {url}, and starting it failed: {detail} (log: {DAEMON_LOG})")
    };
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find the berth executable: {e}")))?;
    std::fs::create_dir_all(DAEMON_LOG_DIR)
        .map_err(|e| fail(format!("cannot create {DAEMON_LOG_DIR}: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(DAEMON_LOG)
        .map_err(|e| fail(format!("cannot open {DAEMON_LOG}: {e}")))?;
    let log_err = log.try_clone().map_err(|e| fail(e.to_string()))?;

    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err));
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only
        // calls setsid(2), which is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot run {} daemon: {e}", exe.display())))?;

    let deadline = Instant::now() + AUTOSTART_WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if ping(endpoint).await {
            eprintln!("berth: started the engine in the background (log: {DAEMON_LOG})");
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(fail(format!(
                "the engine exited ({status}) before answering on {}",
                socket.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "the engine did not answer on {} within {} seconds",
                socket.display(),
                AUTOSTART_WAIT.as_secs()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        let env = |k: &str| match k {
            "BERTH_HOST" => Some("unix:///b.sock".to_string()),
            "DOCKER_HOST" => Some("tcp://1.2.3.4:2375".to_string()),
            _ => None,
        };
        assert_eq!(
            choose_host(Some("unix:///h.sock"), env).url,
            "unix:///h.sock"
        );
        assert_eq!(
            choose_host(None, env),
            HostChoice {
                url: "unix:///b.sock".into(),
                explicit: true
            }
        );
        let only_docker = |k: &str| (k == "DOCKER_HOST").then(|| "tcp://h:1".to_string());
        assert_eq!(choose_host(None, only_docker).url, "tcp://h:1");
        let none = |_: &str| None;
        assert_eq!(
            choose_host(None, none),
            HostChoice {
                url: DEFAULT_HOST.into(),
                explicit: false
            }
        );
        let empty = |_: &str| Some(String::new());
        assert!(!choose_host(None, empty).explicit);
    }

    #[test]
    fn host_parsing() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2376").unwrap(),
            Endpoint::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            parse_host("http://localhost").unwrap(),
            Endpoint::Tcp("localhost:2375".into())
        );
        assert!(parse_host("ssh://x").is_err());
        assert!(parse_host("unix://").is_err());
    }
}
