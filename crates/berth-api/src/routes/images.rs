//! `/images/...` endpoints.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{blocking, Shared};
use crate::backend::{ImageListOptions, ImportRequest};
use crate::filters::Filters;
use crate::query::Query;
use crate::stream::{body_reader, json_lines, ChannelWriter};
use crate::types::DeleteItem;
use crate::{ApiError, ApiVersion};

pub async fn list(
    State(b): State<Shared>,
    Extension(v): Extension<ApiVersion>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let filters = Filters::parse(q.get("filters"))?;
    filters.only(&["dangling", "label", "before", "since", "reference", "until"])?;
    let opts = ImageListOptions {
        all: q.bool("all")?,
        filters,
        digests: q.bool("digests")?,
    };
    let mut images = blocking(move || b.list_images(opts)).await?;
    if !v.at_least(1, 44) {
        for i in &mut images {
            i.virtual_size = Some(i.size);
        }
    }
    Ok(Json(images).into_response())
}

pub async fn create(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    if q.get("fromImage").is_some_and(|s| !s.is_empty()) {
        return super::distribution::pull(b, &q, &headers).await;
    }
    let src = q.get("fromSrc").unwrap_or("").to_string();
    if src != "-" {
        return Err(ApiError::bad_request(if src.is_empty() {
            "fromImage or fromSrc is required".to_string()
        } else {
            format!("importing from a URL ({src}) is not supported; send the archive in the request body with fromSrc=-")
        }));
    }
    let req = ImportRequest {
        repo: q.get("repo").filter(|s| !s.is_empty()).map(str::to_string),
        tag: q.get("tag").filter(|s| !s.is_empty()).map(str::to_string),
        changes: q.all("changes"),
        message: q
            .get("message")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        source: src,
    };
    let id = blocking(move || b.import_image(body_reader(body), req)).await?;
    Ok(json_response(json_lines(&[json!({ "status": id })])))
}

pub async fn load(State(b): State<Shared>, body: Body) -> Result<Response, ApiError> {
    let lines = blocking(move || b.load_images(body_reader(body))).await?;
    let msgs: Vec<_> = lines
        .iter()
        .map(|l| json!({ "stream": format!("{l}\n") }))
        .collect();
    Ok(json_response(json_lines(&msgs)))
}

fn json_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub async fn save_many(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let names = q.all("names");
    save(b, names, q.get("format").map(str::to_string)).await
}

async fn save(b: Shared, names: Vec<String>, format: Option<String>) -> Result<Response, ApiError> {
    let job = blocking(move || b.save_images(&names, format.as_deref())).await?;
    let (mut writer, body) = ChannelWriter::new();
    tokio::task::spawn_blocking(move || match job(&mut writer) {
        Ok(()) => drop(writer),
        Err(e) => {
            tracing::error!(error = %e, "save failed after the response started");
            writer.fail(e.message);
        }
    });
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

pub async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let filters = Filters::parse(q.get("filters"))?;
    filters.only(&["dangling", "label", "label!", "until"])?;
    let report = blocking(move || b.prune_images(&filters)).await?;
    Ok(Json(report).into_response())
}

/// Image names may contain '/', so `/images/{name}/json` is matched as a
/// wildcard and split on its last segment.
fn split_op(rest: &str) -> (&str, &str) {
    match rest.rsplit_once('/') {
        Some((name, op)) => (name, op),
        None => (rest, ""),
    }
}

pub async fn get_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (name, op) = split_op(&rest);
    let name = name.to_string();
    match op {
        "json" => Ok(Json(blocking(move || b.inspect_image(&name)).await?).into_response()),
        "history" => Ok(Json(blocking(move || b.image_history(&name)).await?).into_response()),
        "get" => {
            let q = Query::parse(q.as_deref())?;
            save(b, vec![name], q.get("format").map(str::to_string)).await
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

pub async fn post_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let (name, op) = split_op(&rest);
    let name = name.to_string();
    let q = Query::parse(q.as_deref())?;
    match op {
        "tag" => {
            let repo = q.get("repo").unwrap_or("").to_string();
            if repo.is_empty() {
                return Err(ApiError::bad_request(
                    "repository name must have at least one component",
                ));
            }
            let tag = q.get("tag").filter(|t| !t.is_empty()).map(str::to_string);
            blocking(move || b.tag_image(&name, &repo, tag.as_deref())).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        "push" => super::distribution::push(b, name, &q, &headers).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

pub async fn delete_named(
    State(b): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let force = q.bool("force")?;
    let noprune = q.bool("noprune")?;
    let items: Vec<DeleteItem> = blocking(move || b.remove_image(&name, force, noprune)).await?;
    let body: Vec<_> = items
        .into_iter()
        .map(|i| match i {
            DeleteItem::Untagged(s) => json!({ "Untagged": s }),
            DeleteItem::Deleted(s) => json!({ "Deleted": s }),
        })
        .collect();
    Ok(Json(body).into_response())
}
