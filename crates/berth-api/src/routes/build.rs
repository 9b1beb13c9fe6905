//! `POST /build`: the classic builder's endpoint. The body is the build
//! context as a tar; the response is a stream of JSON lines (`stream`,
//! `aux`, and on failure `errorDetail`/`error`) sent as the build goes.
//! `X-Registry-Config` is ignored (no registry access yet).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Shared;
use crate::backend::{BuildMessage, BuildRequest};
use crate::query::Query;
use crate::stream::body_reader;
use crate::ApiError;

fn json_map<T: serde::de::DeserializeOwned>(
    q: &Query,
    key: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
    }
}

/// Parses the query into the backend's request.
pub(crate) fn parse_request(raw: Option<&str>) -> Result<BuildRequest, ApiError> {
    let q = Query::parse(raw)?;
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::new(
            berth_core::ErrorKind::NotImplemented,
            "building from a remote context is not supported yet",
        ));
    }
    if q.get("version").is_some_and(|v| v == "2") {
        return Err(ApiError::new(
            berth_core::ErrorKind::NotImplemented,
            "BuildKit (version=2) is not supported; use the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    Ok(BuildRequest {
        tags: q.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: q
            .get("dockerfile")
            .filter(|s| !s.is_empty())
            .unwrap_or("Dockerfile")
            .to_string(),
        build_args: json_map(&q, "buildargs")?,
        target: q
            .get("target")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache")?,
        pull: q.bool("pull")?,
        quiet: q.bool("q")?,
        labels: json_map(&q, "labels")?,
        network_mode: q.get("networkmode").unwrap_or("").to_string(),
        rm: q.get("rm").is_none() || q.bool("rm")?,
        force_rm: q.bool("forcerm")?,
        trust_host_ca: q.bool("trusthostca")?,
    })
}

fn line(v: Value) -> Bytes {
    let mut out = serde_json::to_vec(&v).expect("json serializes");
    out.extend_from_slice(b"\r\n");
    out.into()
}

pub async fn build(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let req = parse_request(q.as_deref())?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::task::spawn_blocking(move || {
        let send = |v: Value| {
            let _ = tx.blocking_send(Ok(line(v)));
        };
        let mut progress = |m: BuildMessage| match m {
            BuildMessage::Stream(s) => send(json!({ "stream": s })),
            BuildMessage::ImageId(id) => send(json!({ "aux": { "ID": id } })),
        };
        if let Err(e) = b.build(body_reader(body), req, &mut progress) {
            let mut detail = json!({ "message": e.message });
            if let Some(code) = e.code {
                detail["code"] = json!(code);
            }
            send(json!({ "errorDetail": detail, "error": e.message }));
        }
    });
    let mut r = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_parsed() {
        let r = parse_request(Some(
            "t=a%3A1&t=b&dockerfile=sub%2FDf&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&target=s&nocache=1&q=1&labels=%7B%22k%22%3A%22v%22%7D&networkmode=host&rm=0&forcerm=1",
        ))
        .unwrap();
        assert_eq!(r.tags, vec!["a:1", "b"]);
        assert_eq!(r.dockerfile, "sub/Df");
        assert_eq!(r.build_args["X"].as_deref(), Some("1"));
        assert_eq!(r.build_args["Y"], None);
        assert_eq!(r.target.as_deref(), Some("s"));
        assert!(r.no_cache && r.quiet && !r.rm && r.force_rm);
        assert_eq!(r.labels["k"], "v");
        assert_eq!(r.network_mode, "host");
        let d = parse_request(None).unwrap();
        assert_eq!(d.dockerfile, "Dockerfile");
        assert!(d.rm);
    }
}
