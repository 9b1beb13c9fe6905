//! API version handling: `/v1.NN/...` prefixes, limits, and the headers
//! dockerd sends on every response (`Api-Version`, `Ostype`, ...).

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::ApiError;

/// The highest API version whose behavior berth implements.
pub const API_VERSION: &str = "1.47";
/// The lowest API version berth accepts (docker 1.12's).
pub const MIN_API_VERSION: &str = "1.24";

/// The version a request asked for (the highest when it named none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn current() -> ApiVersion {
        ApiVersion::parse(API_VERSION).expect("valid constant")
    }
    pub fn min() -> ApiVersion {
        ApiVersion::parse(MIN_API_VERSION).expect("valid constant")
    }
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= ApiVersion(major, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits `/v1.47/images/json` into (`1.47`, `/images/json`).
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (ver, tail) = rest.split_at(end);
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((ver, if tail.is_empty() { "/" } else { tail }))
}

async fn version_prefix(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = ApiVersion::current();
    if let Some((ver, tail)) = split_version(&path) {
        let Some(v) = ApiVersion::parse(ver) else {
            return with_headers(
                ApiError::bad_request(format!("invalid API version {ver:?}")).into_response(),
            );
        };
        if v > ApiVersion::current() {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ))
                .into_response(),
            );
        }
        if v < ApiVersion::min() {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ))
                .into_response(),
            );
        }
        version = v;
        let pq = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        match pq.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => {
                return with_headers(ApiError::bad_request("invalid request path").into_response())
            }
        }
    }
    req.extensions_mut().insert(version);
    let span = tracing::debug_span!("api", method = %req.method(), path = %req.uri().path(), version = %version);
    let _e = span.enter();
    tracing::debug!("request");
    drop(_e);
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

/// Wraps the routed API so the version prefix is removed before routing.
pub fn wrap(inner: Router) -> Router {
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(version_prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_prefixes() {
        assert_eq!(
            split_version("/v1.47/images/json"),
            Some(("1.47", "/images/json"))
        );
        assert_eq!(split_version("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes"), None);
        assert!(ApiVersion(1, 47) > ApiVersion(1, 9));
    }
}
