//! Swarm-mode endpoints: `/swarm`, `/nodes`, `/services`, `/tasks`,
//! `/secrets`, `/configs`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_wire::swarm::{
    ConfigSpec, IdResponse, NodeSpec, SecretSpec, ServiceSpec, SwarmInitRequest, SwarmSpec,
    SwarmUnlockRequest,
};
use serde::de::DeserializeOwned;

use super::{blocking, Shared};
use crate::backend::{ServiceUpdateFlags, SwarmUpdateFlags};
use crate::filters::Filters;
use crate::query::Query;
use crate::ApiError;

/// Decodes a JSON body; a bad field is named by its path
/// (`Mode.Replicated.Replicas: invalid value: integer -1, expected u64`).
fn body<T: DeserializeOwned + Default>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid {what}: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid {what}: {path}: {}", e.inner()))
        }
    })
}

/// `version=N`, required by every update.
fn version(q: &Query) -> Result<u64, ApiError> {
    let raw = q.get("version").unwrap_or("");
    raw.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid version {raw:?}: the update must name the object version it read"
        ))
    })
}

fn filters(q: &Query, allowed: &[&str]) -> Result<Filters, ApiError> {
    let f = Filters::parse(q.get("filters"))?;
    f.only(allowed)?;
    Ok(f)
}

pub async fn inspect(State(b): State<Shared>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.swarm_inspect()).await?).into_response())
}

pub async fn init(State(b): State<Shared>, raw: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: SwarmInitRequest = body(&raw, "swarm init request")?;
    Ok(Json(blocking(move || b.swarm_init(req)).await?).into_response())
}

pub async fn join(State(b): State<Shared>, raw: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: serde_json::Value = body(&raw, "swarm join request")?;
    blocking(move || b.swarm_join(req)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn leave(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let force = Query::parse(q.as_deref())?.bool("force")?;
    blocking(move || b.swarm_leave(force)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn update(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let flags = SwarmUpdateFlags {
        version: version(&q)?,
        rotate_worker_token: q.bool("rotateWorkerToken")?,
        rotate_manager_token: q.bool("rotateManagerToken")?,
        rotate_unlock_key: q.bool("rotateManagerUnlockKey")?,
    };
    let spec: SwarmSpec = body(&raw, "swarm spec")?;
    blocking(move || b.swarm_update(spec, flags)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn unlock_key(State(b): State<Shared>) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.swarm_unlock_key()).await?).into_response())
}

pub async fn unlock(State(b): State<Shared>, raw: axum::body::Bytes) -> Result<Response, ApiError> {
    let req: SwarmUnlockRequest = body(&raw, "unlock request")?;
    blocking(move || b.swarm_unlock(req)).await?;
    Ok(StatusCode::OK.into_response())
}

// ---- nodes

pub async fn list_nodes(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = filters(
        &q,
        &["id", "label", "membership", "name", "node.label", "role"],
    )?;
    Ok(Json(blocking(move || b.list_nodes(&f)).await?).into_response())
}

pub async fn inspect_node(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_node(&id)).await?).into_response())
}

pub async fn update_node(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let v = version(&q)?;
    let spec: NodeSpec = body(&raw, "node spec")?;
    blocking(move || b.update_node(&id, v, spec)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn remove_node(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let force = Query::parse(q.as_deref())?.bool("force")?;
    blocking(move || b.remove_node(&id, force)).await?;
    Ok(StatusCode::OK.into_response())
}

// ---- services

pub async fn list_services(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = filters(&q, &["id", "label", "mode", "name"])?;
    let status = q.bool("status")?;
    Ok(Json(blocking(move || b.list_services(&f, status)).await?).into_response())
}

pub async fn create_service(
    State(b): State<Shared>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: ServiceSpec = body(&raw, "service spec")?;
    let created = blocking(move || b.create_service(spec)).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn inspect_service(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let defaults = Query::parse(q.as_deref())?.bool("insertDefaults")?;
    Ok(Json(blocking(move || b.inspect_service(&id, defaults)).await?).into_response())
}

pub async fn update_service(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let flags = ServiceUpdateFlags {
        version: version(&q)?,
        registry_auth_from: q.get("registryAuthFrom").map(str::to_string),
        rollback: q.get("rollback").map(str::to_string),
    };
    let spec: ServiceSpec = body(&raw, "service spec")?;
    Ok(Json(blocking(move || b.update_service(&id, spec, flags)).await?).into_response())
}

pub async fn remove_service(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.remove_service(&id)).await?;
    Ok(StatusCode::OK.into_response())
}

// ---- tasks

pub async fn list_tasks(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = filters(
        &q,
        &["desired-state", "id", "label", "name", "node", "service"],
    )?;
    Ok(Json(blocking(move || b.list_tasks(&f)).await?).into_response())
}

pub async fn inspect_task(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_task(&id)).await?).into_response())
}

// ---- secrets and configs

pub async fn list_secrets(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = filters(&q, &["id", "label", "name", "names"])?;
    Ok(Json(blocking(move || b.list_secrets(&f)).await?).into_response())
}

pub async fn create_secret(
    State(b): State<Shared>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: SecretSpec = body(&raw, "secret spec")?;
    let id = blocking(move || b.create_secret(spec)).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })).into_response())
}

pub async fn inspect_secret(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_secret(&id)).await?).into_response())
}

pub async fn update_secret(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v = version(&Query::parse(q.as_deref())?)?;
    let spec: SecretSpec = body(&raw, "secret spec")?;
    blocking(move || b.update_secret(&id, v, spec)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn remove_secret(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.remove_secret(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_configs(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let f = filters(&q, &["id", "label", "name", "names"])?;
    Ok(Json(blocking(move || b.list_configs(&f)).await?).into_response())
}

pub async fn create_config(
    State(b): State<Shared>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: ConfigSpec = body(&raw, "config spec")?;
    let id = blocking(move || b.create_config(spec)).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id })).into_response())
}

pub async fn inspect_config(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(blocking(move || b.inspect_config(&id)).await?).into_response())
}

pub async fn update_config(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v = version(&Query::parse(q.as_deref())?)?;
    let spec: ConfigSpec = body(&raw, "config spec")?;
    blocking(move || b.update_config(&id, v, spec)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn remove_config(
    State(b): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.remove_config(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
