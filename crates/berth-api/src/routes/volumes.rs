//! `/volumes` endpoints.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{blocking, Shared};
use crate::filters::Filters;
use crate::query::Query;
use crate::ApiError;

pub async fn list(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["dangling", "driver", "label", "name"])?;
    Ok(Json(blocking(move || b.list_volumes(&f)).await?).into_response())
}

pub async fn create(
    State(b): State<Shared>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid volume config: {e}")))?
    };
    Ok((
        StatusCode::CREATED,
        Json(blocking(move || b.create_volume(v)).await?),
    )
        .into_response())
}

pub async fn inspect(
    State(b): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_volume(&name)).await?).into_response())
}

pub async fn remove(
    State(b): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let force = q.bool("force")?;
    blocking(move || b.remove_volume(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = Filters::parse(q.get("filters"))?;
    f.only(&["label", "label!", "all"])?;
    Ok(Json(blocking(move || b.prune_volumes(&f)).await?).into_response())
}
