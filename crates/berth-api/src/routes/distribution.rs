//! Registry endpoints: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`) and `POST /auth`.
//!
//! Pull and push answer with Docker's JSON progress stream. The response
//! starts with the first progress message: an error before it (bad
//! credentials, an unknown manifest) is an HTTP error with the usual
//! `{"message"}` body, as dockerd does; an error after it becomes the
//! stream's last line, `{"errorDetail":{"message"},"error"}`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::Shared;
use crate::backend::{ProgressFn, PullRequest, PushRequest, RegistryAuth};
use crate::query::Query;
use crate::ApiError;

fn auth_header(headers: &HeaderMap) -> Option<RegistryAuth> {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .map(|s| RegistryAuth { raw: s.to_string() })
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).expect("json serializes");
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Runs `job` on the blocking pool and streams what it reports.
async fn progress_response(
    job: impl FnOnce(ProgressFn) -> Result<(), ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let progress: ProgressFn = Arc::new(move |v| {
        let _ = tx.send(v);
    });
    let mut task = tokio::task::spawn_blocking(move || job(progress));
    let first = tokio::select! {
        biased;
        m = rx.recv() => m,
        done = &mut task => {
            // Finished before saying anything: report as a plain response.
            let done = done.map_err(|e| ApiError::internal(format!("backend task failed: {e}")))?;
            done?;
            let rest: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
            let body: Vec<u8> = rest.iter().flat_map(|v| line(v).to_vec()).collect();
            return Ok(json_response(Body::from(body)));
        }
    };
    let head = futures_util::stream::iter(first);
    let tail = futures_util::stream::once(async move {
        match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(json!({"errorDetail": {"message": e.message}, "error": e.message})),
            Err(e) => {
                let m = format!("backend task failed: {e}");
                Some(json!({"errorDetail": {"message": m}, "error": m}))
            }
        }
    })
    .filter_map(|v| async move { v });
    let stream = head
        .chain(UnboundedReceiverStream::new(rx))
        .chain(tail)
        .map(|v| Ok::<Bytes, std::io::Error>(line(&v)));
    Ok(json_response(Body::from_stream(stream)))
}

fn json_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn pull(b: Shared, q: &Query, headers: &HeaderMap) -> Result<Response, ApiError> {
    let from_image = q.get("fromImage").unwrap_or("").to_string();
    let tag = q.get("tag").filter(|s| !s.is_empty()).map(str::to_string);
    // dockerd: a repository name with neither a tag in it nor a `tag`
    // parameter pulls every tag (what `docker pull -a` sends).
    let all_tags = tag.is_none()
        && berth_core::Reference::parse_name_only_ok(&from_image)
            .is_ok_and(|r| r.tag().is_none() && r.digest().is_none());
    let req = PullRequest {
        from_image,
        tag,
        all_tags,
        platform: q
            .get("platform")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        auth: auth_header(headers),
    };
    progress_response(move |p| b.pull_image(req, p)).await
}

pub async fn push(
    b: Shared,
    name: String,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let req = PushRequest {
        name,
        tag: q.get("tag").filter(|s| !s.is_empty()).map(str::to_string),
        auth: auth_header(headers),
        compression: q
            .get("compression")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    };
    progress_response(move |p| b.push_image(req, p)).await
}

pub async fn auth(
    axum::extract::State(b): axum::extract::State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let raw = String::from_utf8_lossy(&body).into_owned();
    super::blocking(move || b.registry_login(RegistryAuth { raw })).await?;
    Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}
