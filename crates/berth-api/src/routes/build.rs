//! `POST /build`: the classic builder's endpoint. The body is the build
//! context as a tar; the response is a stream of JSON lines (`stream`,
//! `aux`, and on failure `errorDetail`/`error`) sent as the build goes.
//! `X-Registry-Config` is ignored (no registry access yet).
//!
//! Secrets (`berth build --secret`, a berth extension; the classic
//! protocol has no secret transport): the `X-Berth-Build-Secrets` header
//! holds base64 of a JSON object `{"<id>": "<base64 of the value>", …}`.
//! At most [`MAX_SECRETS_HEADER`] bytes of header and [`MAX_SECRET_SIZE`]
//! per secret; the values are only ever handed to the builder.
//!
//! `POST /build/prune` (`docker builder prune`): `all`, `filters`
//! (`until`); answers `{"CachesDeleted": […], "SpaceReclaimed": n}`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::blocking;
use super::Shared;
use crate::backend::{BuildMessage, BuildPruneRequest, BuildRequest, BuildSecrets};
use crate::filters::Filters;
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

/// `cachefrom`: a JSON array of image names (docker's CLI sends it so);
/// a bare name is taken as one image, as older clients sent it.
fn cache_from(q: &Query) -> Result<Vec<String>, ApiError> {
    let Some(raw) = q.get("cachefrom").filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = if raw.trim_start().starts_with('[') {
        serde_json::from_str(raw).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid cachefrom {raw:?}: want a JSON array of image names: {e}"
            ))
        })?
    } else {
        vec![raw.to_string()]
    };
    if let Some(bad) = names.iter().find(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request(format!(
            "invalid cachefrom: empty image name {bad:?}"
        )));
    }
    Ok(names)
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
        cache_from: cache_from(&q)?,
        pull: q.bool("pull")?,
        quiet: q.bool("q")?,
        labels: json_map(&q, "labels")?,
        network_mode: q.get("networkmode").unwrap_or("").to_string(),
        rm: q.get("rm").is_none() || q.bool("rm")?,
        force_rm: q.bool("forcerm")?,
        trust_host_ca: q.bool("trusthostca")?,
        secrets: BuildSecrets::default(),
        context_size: None,
    })
}

/// The secrets header's name.
pub const SECRETS_HEADER: &str = "x-berth-build-secrets";
/// Largest secrets header accepted, in bytes.
pub const MAX_SECRETS_HEADER: usize = 256 << 10;
/// Largest single secret, in bytes (BuildKit allows 500 KiB; a header
/// cannot carry that much).
pub const MAX_SECRET_SIZE: usize = 64 << 10;

/// Decodes the `X-Berth-Build-Secrets` header value.
pub fn parse_secrets(value: Option<&[u8]>) -> Result<BuildSecrets, ApiError> {
    let Some(raw) = value else {
        return Ok(BuildSecrets::default());
    };
    if raw.len() > MAX_SECRETS_HEADER {
        return Err(ApiError::bad_request(format!(
            "build secrets: the X-Berth-Build-Secrets header is {} bytes, more than the {MAX_SECRETS_HEADER} allowed",
            raw.len()
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |what: &str| {
        ApiError::bad_request(format!(
            "build secrets: invalid X-Berth-Build-Secrets header: {what}"
        ))
    };
    let json = b64
        .decode(raw.trim_ascii())
        .map_err(|_| bad("not base64"))?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| bad("not a JSON object of strings"))?;
    let mut out = BTreeMap::new();
    for (id, v) in map {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(bad(&format!("invalid secret id {id:?}")));
        }
        let value = b64
            .decode(v.as_bytes())
            .map_err(|_| bad(&format!("secret {id:?} is not base64")))?;
        if value.len() > MAX_SECRET_SIZE {
            return Err(ApiError::bad_request(format!(
                "build secrets: secret {id:?} is {} bytes, more than the {MAX_SECRET_SIZE} allowed",
                value.len()
            )));
        }
        out.insert(id, value);
    }
    Ok(BuildSecrets(out))
}

/// `POST /build/prune`.
pub async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let filters = Filters::parse(q.get("filters"))?;
    let until = match filters.get("until") {
        [] => None,
        [v] => Some(parse_until(v)?),
        _ => return Err(ApiError::bad_request("more than one until filter")),
    };
    for key in [
        "id",
        "parent",
        "type",
        "description",
        "inuse",
        "shared",
        "private",
    ] {
        if !filters.get(key).is_empty() {
            return Err(ApiError::bad_request(format!(
                "build cache filter {key:?} is not supported"
            )));
        }
    }
    filters.only(&["until", "unused-for"])?;
    let until = until.or(match filters.get("unused-for") {
        [] => None,
        [v] => Some(parse_until(v)?),
        _ => return Err(ApiError::bad_request("more than one unused-for filter")),
    });
    let req = BuildPruneRequest {
        all: q.bool("all")?,
        until,
    };
    let report = blocking(move || b.prune_build_cache(req)).await?;
    Ok(Json(report).into_response())
}

/// `until`: a Go duration before now (`24h`, `10m`) or a unix timestamp
/// (`1700000000`, `1700000000.5`); the result is the cutoff in unix seconds.
fn parse_until(v: &str) -> Result<i64, ApiError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Ok(t) = v.split('.').next().unwrap_or("").parse::<i64>() {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Ok(t);
        }
    }
    go_duration_secs(v).map(|d| now - d).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid until filter {v:?}: use a duration (24h, 10m) or unix seconds"
        ))
    })
}

/// Go's duration syntax (`1h30m`, `90s`, `1.5h`), whole seconds.
fn go_duration_secs(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[u..];
    }
    Some(total as i64)
}

fn line(v: Value) -> Bytes {
    let mut out = serde_json::to_vec(&v).expect("json serializes");
    out.extend_from_slice(b"\r\n");
    out.into()
}

pub async fn build(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut req = parse_request(q.as_deref())?;
    req.secrets = parse_secrets(headers.get(SECRETS_HEADER).map(HeaderValue::as_bytes))?;
    req.context_size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
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
        assert!(r.cache_from.is_empty());
        assert_eq!(r.labels["k"], "v");
        assert_eq!(r.network_mode, "host");
        let c = parse_request(Some("cachefrom=%5B%22a%3A1%22%2C%22b%22%5D")).unwrap();
        assert_eq!(c.cache_from, ["a:1", "b"]);
        let c = parse_request(Some("cachefrom=img")).unwrap();
        assert_eq!(c.cache_from, ["img"]);
        let e = parse_request(Some("cachefrom=%5B1%5D")).unwrap_err();
        assert!(e.to_string().contains("invalid cachefrom"), "{e}");
        let d = parse_request(None).unwrap();
        assert!(d.secrets.0.is_empty());
        assert_eq!(d.dockerfile, "Dockerfile");
        assert!(d.rm);
    }

    #[test]
    fn secrets_header() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let json = format!(r#"{{"tok":"{}"}}"#, b64.encode("s3cret"));
        let s = parse_secrets(Some(b64.encode(json).as_bytes())).unwrap();
        assert_eq!(s.0["tok"], b"s3cret");
        assert_eq!(format!("{s:?}"), r#"["tok"]"#);
        assert!(parse_secrets(Some(b"%%%")).is_err());
        let bad_id = b64.encode(format!(r#"{{"../x":"{}"}}"#, b64.encode("v")));
        assert!(parse_secrets(Some(bad_id.as_bytes())).is_err());
        let big = b64.encode(format!(
            r#"{{"big":"{}"}}"#,
            b64.encode(vec![b'x'; MAX_SECRET_SIZE + 1])
        ));
        let e = parse_secrets(Some(big.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("\"big\""), "{e}");
    }

    #[test]
    fn until_filter() {
        assert_eq!(parse_until("1700000000").unwrap(), 1700000000);
        assert_eq!(go_duration_secs("1h30m"), Some(5400));
        assert_eq!(go_duration_secs("90s"), Some(90));
        assert!(parse_until("yesterday").is_err());
    }
}
