//! `/containers/...` endpoints, including the hijacked attach stream.

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio_stream::wrappers::ReceiverStream;

use super::{blocking, Shared};
use crate::backend::{AttachOptions, ContainerCreateBody, ListContainersOptions, LogsOptions};
use crate::filters::Filters;
use crate::query::Query;
use crate::ApiError;

const RAW: &str = "application/vnd.docker.raw-stream";
const MUX: &str = "application/vnd.docker.multiplexed-stream";

pub async fn create(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = q.get("name").filter(|n| !n.is_empty()).map(str::to_string);
    let body: ContainerCreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid container config: {e}")))?;
    let resp = blocking(move || b.create_container(name.as_deref(), body)).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

pub async fn list(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let filters = Filters::parse(q.get("filters"))?;
    filters.only(&[
        "ancestor",
        "before",
        "expose",
        "exited",
        "health",
        "id",
        "isolation",
        "is-task",
        "label",
        "name",
        "network",
        "publish",
        "since",
        "status",
        "volume",
    ])?;
    let limit = match q.get("limit") {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {v:?}")))?,
        ),
    };
    let opts = ListContainersOptions {
        all: q.bool("all")?,
        limit: limit.filter(|l| *l > 0),
        size: q.bool("size")?,
        filters,
    };
    Ok(Json(blocking(move || b.list_containers(opts)).await?).into_response())
}

pub async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let filters = Filters::parse(q.get("filters"))?;
    filters.only(&["until", "label", "label!"])?;
    Ok(Json(blocking(move || b.prune_containers(&filters)).await?).into_response())
}

fn split_op(rest: &str) -> (String, String) {
    match rest.split_once('/') {
        Some((id, op)) => (id.to_string(), op.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

fn signal_arg(q: &Query) -> Option<String> {
    q.get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn timeout_arg(q: &Query) -> Result<Option<i64>, ApiError> {
    match q.get("t") {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid timeout {v:?}"))),
    }
}

pub async fn get_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (id, op) = split_op(&rest);
    let q = Query::parse(q.as_deref())?;
    match op.as_str() {
        "json" => {
            let size = q.bool("size")?;
            Ok(Json(blocking(move || b.inspect_container(&id, size)).await?).into_response())
        }
        "logs" => logs(b, id, q).await,
        "top" => {
            let args = q.get("ps_args").unwrap_or("").to_string();
            Ok(Json(blocking(move || b.top_container(&id, &args)).await?).into_response())
        }
        "changes" => Ok(Json(blocking(move || b.container_changes(&id)).await?).into_response()),
        "stats" => stats(b, id, q).await,
        "archive" => {
            let path = q.get("path").unwrap_or("").to_string();
            if path.is_empty() {
                return Err(ApiError::bad_request("path is required"));
            }
            let (stat, job) = blocking(move || b.container_archive(&id, &path)).await?;
            let (mut writer, body) = crate::stream::ChannelWriter::new();
            tokio::task::spawn_blocking(move || match job(&mut writer) {
                Ok(()) => drop(writer),
                Err(e) => writer.fail(e.message),
            });
            let mut r = Response::new(body);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            );
            insert_stat(&mut r, &stat);
            Ok(r)
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn logs(b: Shared, id: String, q: Query) -> Result<Response, ApiError> {
    let parse_ts = |k: &str| -> Result<Option<i64>, ApiError> {
        match q.get(k) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => {
                let secs: f64 = v
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid {k} {v:?}")))?;
                Ok(Some((secs * 1e9) as i64))
            }
        }
    };
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail {v:?}")))?,
        ),
    };
    let opts = LogsOptions {
        follow: q.bool("follow")?,
        stdout: q.bool("stdout")?,
        stderr: q.bool("stderr")?,
        since: parse_ts("since")?,
        until: parse_ts("until")?,
        timestamps: q.bool("timestamps")?,
        tail,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let stream = blocking(move || b.container_logs(&id, opts)).await?;
    let mut r = Response::new(Body::from_stream(
        ReceiverStream::new(stream.frames).map(Ok::<_, std::io::Error>),
    ));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if stream.tty { RAW } else { MUX }),
    );
    Ok(r)
}

pub async fn post_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let (id, op) = split_op(&rest);
    let q = Query::parse(q.as_deref())?;
    let not_modified = |changed: bool| {
        if changed {
            StatusCode::NO_CONTENT.into_response()
        } else {
            StatusCode::NOT_MODIFIED.into_response()
        }
    };
    match op.as_str() {
        "start" => Ok(not_modified(
            blocking(move || b.start_container(&id)).await?,
        )),
        "stop" => {
            let (s, t) = (signal_arg(&q), timeout_arg(&q)?);
            Ok(not_modified(
                blocking(move || b.stop_container(&id, s.as_deref(), t)).await?,
            ))
        }
        "restart" => {
            let (s, t) = (signal_arg(&q), timeout_arg(&q)?);
            blocking(move || b.restart_container(&id, s.as_deref(), t)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "kill" => {
            let s = signal_arg(&q);
            blocking(move || b.kill_container(&id, s.as_deref())).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "wait" => {
            let cond = q
                .get("condition")
                .filter(|c| !c.is_empty())
                .unwrap_or("not-running")
                .to_string();
            if !matches!(cond.as_str(), "not-running" | "next-exit" | "removed") {
                return Err(ApiError::bad_request(format!(
                    "invalid condition: {cond:?}"
                )));
            }
            let fut = blocking(move || b.wait_container(&id, &cond)).await?;
            // Headers go out now, so the client knows the wait is registered
            // before it starts the container; the body follows on exit.
            let body = futures_util::stream::once(async move {
                let v = match fut.await {
                    Ok(r) => serde_json::to_vec(&r).expect("serializes"),
                    Err(e) => serde_json::to_vec(
                        &serde_json::json!({"StatusCode": -1, "Error": {"Message": e.message}}),
                    )
                    .expect("serializes"),
                };
                Ok::<_, std::io::Error>(bytes::Bytes::from(v))
            });
            let mut r = Response::new(Body::from_stream(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        "attach" => attach(b, id, q, req).await,
        // `/containers/{id}/exec` lives under this wildcard route (a separate
        // route for it would conflict with `{*rest}` in the router).
        "exec" => {
            let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?;
            super::exec::create(State(b), Path(id), bytes).await
        }
        "resize" => {
            let (h, w) = q.size()?;
            blocking(move || b.resize_container(&id, h, w)).await?;
            Ok(StatusCode::OK.into_response())
        }
        "pause" | "unpause" => {
            let pause = op == "pause";
            blocking(move || b.pause_container(&id, pause)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "update" => {
            let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?;
            let v: serde_json::Value = if bytes.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::bad_request(format!("invalid update: {e}")))?
            };
            let warnings = blocking(move || b.update_container(&id, v)).await?;
            Ok(Json(serde_json::json!({ "Warnings": warnings })).into_response())
        }
        "rename" => {
            let name = q.get("name").unwrap_or("").to_string();
            blocking(move || b.rename_container(&id, &name)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn attach(b: Shared, id: String, q: Query, mut req: Request) -> Result<Response, ApiError> {
    let opts = AttachOptions {
        stream: q.bool("stream")?,
        stdin: q.bool("stdin")?,
        stdout: q.bool("stdout")?,
        stderr: q.bool("stderr")?,
        logs: q.bool("logs")?,
    };
    let wants_upgrade = req.headers().get(header::UPGRADE).is_some();
    if !wants_upgrade {
        return Err(ApiError::bad_request(
            "attach needs an upgraded connection (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let stdin = opts.stdin;
    let (tty, fut) = blocking(move || b.attach_container(&id, opts)).await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let client = TokioIo::new(upgraded);
        let attached = match fut.await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e.message, "attach ended before the container ran");
                return;
            }
        };
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut sr, mut sw) = attached.io.into_split();
        let to_client = async {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut cw).await;
        };
        let from_client = async {
            if stdin {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
            }
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut sw).await;
            // Keep reading nothing; the output side decides when we end.
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = to_client => {},
            _ = from_client => {},
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty { RAW } else { MUX }),
    );
    Ok(r)
}

/// `GET /containers/{id}/stats`: one sample (`stream=0`) or one a second.
/// Each sample carries the previous one as `precpu_stats` so clients can
/// compute CPU percentages.
async fn stats(b: Shared, id: String, q: Query) -> Result<Response, ApiError> {
    let stream = q.get("stream").is_none_or(|v| v != "0" && v != "false");
    let one_shot = q.bool("one-shot")?;
    let first = {
        let (b, id) = (b.clone(), id.clone());
        blocking(move || b.container_stats(&id)).await?
    };
    if !stream {
        let body = if one_shot {
            first
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let (b2, id2) = (b.clone(), id.clone());
            let second = blocking(move || b2.container_stats(&id2)).await?;
            with_pre(second, &first)
        };
        return Ok(Json(body).into_response());
    }
    let s =
        futures_util::stream::unfold((b, id, first, true), |(b, id, prev, is_first)| async move {
            if !is_first {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            let (b2, id2) = (b.clone(), id.clone());
            let cur = blocking(move || b2.container_stats(&id2)).await.ok()?;
            let out = if is_first {
                prev.clone()
            } else {
                with_pre(cur.clone(), &prev)
            };
            let mut line = serde_json::to_vec(&out).expect("serializes");
            line.push(b'\n');
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(line)),
                (b, id, cur, false),
            ))
        });
    let mut r = Response::new(Body::from_stream(s));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn with_pre(mut cur: serde_json::Value, prev: &serde_json::Value) -> serde_json::Value {
    cur["precpu_stats"] = prev["cpu_stats"].clone();
    cur["preread"] = prev["read"].clone();
    cur
}

pub async fn commit(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let container = q.get("container").unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let opt = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let req = crate::backend::CommitContainer {
        container,
        repo: opt("repo"),
        tag: opt("tag"),
        comment: opt("comment"),
        author: opt("author"),
        changes: q
            .all("changes")
            .into_iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        pause: q.get("pause").is_none_or(|p| p != "0" && p != "false"),
    };
    let id = blocking(move || b.commit_container(req)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

fn insert_stat(r: &mut Response, stat: &serde_json::Value) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(stat).expect("serializes"));
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
}

pub async fn head_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (id, op) = split_op(&rest);
    if op != "archive" {
        return Err(ApiError::not_found("page not found"));
    }
    let q = Query::parse(q.as_deref())?;
    let path = q.get("path").unwrap_or("").to_string();
    let stat = blocking(move || b.container_path_stat(&id, &path)).await?;
    let mut r = StatusCode::OK.into_response();
    insert_stat(&mut r, &stat);
    Ok(r)
}

pub async fn put_named(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let (id, op) = split_op(&rest);
    if op != "archive" {
        return Err(ApiError::not_found("page not found"));
    }
    let q = Query::parse(q.as_deref())?;
    let path = q.get("path").unwrap_or("").to_string();
    if path.is_empty() {
        return Err(ApiError::bad_request("path is required"));
    }
    blocking(move || b.container_extract(&id, &path, crate::stream::body_reader(body))).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete_named(
    State(b): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let (force, v) = (q.bool("force")?, q.bool("v")?);
    blocking(move || b.remove_container(&id, force, v)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
