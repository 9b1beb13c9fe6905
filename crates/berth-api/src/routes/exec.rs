//! `/containers/{id}/exec` and `/exec/...`: create, start (hijacked like
//! attach, or detached), inspect and resize an exec instance.

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper_util::rt::TokioIo;

use super::{blocking, Shared};
use crate::backend::{ExecCreateBody, ExecStartBody};
use crate::query::Query;
use crate::ApiError;

const RAW: &str = "application/vnd.docker.raw-stream";
const MUX: &str = "application/vnd.docker.multiplexed-stream";

/// An empty body is the default config (curl sends none).
fn parse_body<T: serde::de::DeserializeOwned + Default>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if bytes.trim_ascii().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

pub async fn create(
    State(b): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: ExecCreateBody = parse_body(&body, "exec config")?;
    let exec_id = blocking(move || b.create_exec(&id, body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": exec_id })),
    )
        .into_response())
}

pub async fn inspect(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_exec(&id)).await?).into_response())
}

pub async fn resize(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let (h, w) = q.size()?;
    blocking(move || b.resize_exec(&id, h, w)).await?;
    Ok(StatusCode::OK.into_response())
}

/// The process starts before the response goes out, so a failure to start
/// is an ordinary error status. Then, with `Upgrade`, the connection is
/// hijacked (101) and carries stdin one way and output the other, like
/// attach; without, the output is the response body.
pub async fn start(
    State(b): State<Shared>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let wants_upgrade = req.headers().get(header::UPGRADE).is_some();
    let on_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
    let bytes = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading exec start config: {e}")))?;
    let opts: ExecStartBody = parse_body(&bytes, "exec start config")?;
    let (detach, start_tty) = (opts.detach, opts.tty);
    let started = blocking(move || b.start_exec(&id, opts)).await;
    let stream = match (started, on_upgrade) {
        (Ok(Some(stream)), upgrade) => (stream, upgrade),
        (Ok(None), _) => return Ok(StatusCode::OK.into_response()),
        // As dockerd: an exec that exists but cannot start is reported in
        // the hijacked stream; the client then reads its exit code (126,
        // 127) from the exec's inspect.
        (Err(e), Some(upgrade)) if !detach && e.kind != berth_core::ErrorKind::NotFound => {
            return Ok(hijacked_error(upgrade, start_tty, e.message));
        }
        (Err(e), _) => return Err(e),
    };
    let (stream, on_upgrade) = stream;
    let tty = stream.tty;
    stream
        .io
        .set_nonblocking(true)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let io = tokio::net::UnixStream::from_std(stream.io)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let content_type = HeaderValue::from_static(if tty { RAW } else { MUX });
    let Some(on_upgrade) = on_upgrade else {
        let body = tokio_util::io::ReaderStream::new(io);
        let mut r = Response::new(Body::from_stream(body));
        r.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return Ok(r);
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(upgraded));
        let (mut sr, mut sw) = io.into_split();
        let to_client = async {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut cw).await;
        };
        let from_client = async {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut sw).await;
            // The output side decides when the session ends.
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = to_client => {},
            _ = from_client => {},
        }
    });
    Ok(switching_protocols(content_type))
}

fn switching_protocols(content_type: HeaderValue) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, content_type);
    r
}

/// Upgrade, write `message` (a stdout frame unless `tty`), close.
fn hijacked_error(on_upgrade: hyper::upgrade::OnUpgrade, tty: bool, message: String) -> Response {
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let text = format!("{message}\r\n");
        let mut out = Vec::new();
        if !tty {
            let n = (text.len() as u32).to_be_bytes();
            out.extend_from_slice(&[1, 0, 0, 0, n[0], n[1], n[2], n[3]]);
        }
        out.extend_from_slice(text.as_bytes());
        let _ = tokio::io::AsyncWriteExt::write_all(&mut io, &out).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
    });
    switching_protocols(HeaderValue::from_static(if tty { RAW } else { MUX }))
}
