//! `/networks` endpoints.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{blocking, Shared};
use crate::filters::Filters;
use crate::query::Query;
use crate::ApiError;

fn json_body(body: &[u8], what: &str) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))
}

pub async fn list(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    Ok(Json(blocking(move || b.list_networks(&f)).await?).into_response())
}

pub async fn create(
    State(b): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&body, "network config")?;
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || b.create_network(v)).await?),
    )
        .into_response())
}

pub async fn inspect(
    State(b): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let verbose = q.bool("verbose")?;
    Ok(Json(blocking(move || b.inspect_network(&name, verbose)).await?).into_response())
}

pub async fn remove(
    State(b): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.remove_network(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn connect(
    State(b): State<Shared>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&body, "connect request")?;
    blocking(move || b.connect_network(&name, v)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn disconnect(
    State(b): State<Shared>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v = json_body(&body, "disconnect request")?;
    blocking(move || b.disconnect_network(&name, v)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["label", "label!", "until"])?;
    Ok(Json(blocking(move || b.prune_networks(&f)).await?).into_response())
}
