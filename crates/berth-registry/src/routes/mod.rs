//! HTTP surface of the registry (distribution spec "Endpoints" table).
//!
//! Repository names contain slashes, so routes are not matched by axum's
//! path patterns: [`Route::parse`] reads the raw (still percent-encoded)
//! path from the right (`…/manifests/<ref>`, `…/blobs/uploads/<id>`, …) and
//! validates the name, digest, tag or upload id before anything touches the
//! file system. Then one function ([`dispatch`]) checks auth and read-only
//! mode and calls the endpoint; every failure becomes the spec's JSON error
//! body through [`error_response`].

mod blobs;
mod listing;
mod manifests;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::Digest;

use crate::auth::{Authorizer, Identity, Need};
use crate::error::RegistryError;
use crate::names::{parse_digest, ManifestRef, RepoName, UploadId};
use crate::storage::{Storage, Uploads};

pub(crate) struct AppState {
    pub storage: Storage,
    pub uploads: Uploads,
    pub auth: Authorizer,
    pub read_only: bool,
    pub tls: bool,
    /// Pull-through cache mode.
    pub proxy: Option<crate::proxy::Proxy>,
}

/// The authenticated user, attached to responses for the access log.
#[derive(Clone, Debug)]
pub(crate) struct AuthUser(pub String);

#[derive(Debug, PartialEq)]
enum Route {
    Base,
    Catalog,
    Token,
    Tags(RepoName),
    Manifest(RepoName, ManifestRef),
    Blob(RepoName, Digest),
    UploadStart(RepoName),
    Upload(RepoName, UploadId),
    Referrers(RepoName, Digest),
}

impl Route {
    fn parse(path: &str) -> Result<Route, RegistryError> {
        if path == "/token" {
            return Ok(Route::Token);
        }
        let rest = match path.strip_prefix("/v2") {
            Some("") | Some("/") => return Ok(Route::Base),
            Some(r) => r.strip_prefix('/').ok_or(RegistryError::RouteUnknown)?,
            None => return Err(RegistryError::RouteUnknown),
        };
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let name = |upto: usize| -> Result<RepoName, RegistryError> {
            if upto == 0 {
                return Err(RegistryError::RouteUnknown);
            }
            segs[..upto].join("/").parse()
        };
        if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
            let repo = name(n - 3)?;
            return if segs[n - 1].is_empty() {
                Ok(Route::UploadStart(repo))
            } else {
                Ok(Route::Upload(repo, segs[n - 1].parse()?))
            };
        }
        if n >= 2 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
            return Ok(Route::UploadStart(name(n - 2)?));
        }
        if n >= 2 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
            return Ok(Route::Tags(name(n - 2)?));
        }
        if n >= 2 {
            let last = segs[n - 1];
            match segs[n - 2] {
                "manifests" => return Ok(Route::Manifest(name(n - 2)?, last.parse()?)),
                "blobs" => return Ok(Route::Blob(name(n - 2)?, parse_digest(last)?)),
                "referrers" => return Ok(Route::Referrers(name(n - 2)?, parse_digest(last)?)),
                _ => {}
            }
        }
        Err(RegistryError::RouteUnknown)
    }

    /// What the request needs, as token scopes.
    fn needs(&self, method: &Method) -> Vec<Need> {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        let repo_need = |r: &RepoName| {
            if *method == Method::DELETE {
                Need::repo(r.as_str(), &["delete"])
            } else if write {
                Need::repo(r.as_str(), &["pull", "push"])
            } else {
                Need::repo(r.as_str(), &["pull"])
            }
        };
        match self {
            Route::Base | Route::Token => Vec::new(),
            Route::Catalog => vec![Need::catalog()],
            Route::Tags(r) | Route::Referrers(r, _) => vec![Need::repo(r.as_str(), &["pull"])],
            Route::Manifest(r, _) | Route::Blob(r, _) => vec![repo_need(r)],
            // Upload sessions are push operations whatever the method.
            Route::UploadStart(r) | Route::Upload(r, _) => {
                vec![Need::repo(r.as_str(), &["pull", "push"])]
            }
        }
    }
}

/// The JSON error body of the spec ("Error Codes").
pub(crate) fn error_response(e: &RegistryError) -> Response {
    if e.status() >= 500 {
        tracing::error!(error = %e, "registry request failed");
    }
    let detail = match e {
        RegistryError::BlobUnknown(d) | RegistryError::ManifestBlobUnknown(d) => {
            serde_json::json!({ "digest": d.to_string() })
        }
        _ => serde_json::Value::Null,
    };
    let body = serde_json::json!({
        "errors": [{ "code": e.code(), "message": e.to_string(), "detail": detail }]
    });
    let mut r = (
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if matches!(e, RegistryError::MethodNotAllowed) {
        r.headers_mut()
            .insert("allow", HeaderValue::from_static("GET, HEAD"));
    }
    r
}

pub(crate) type Reply = Result<Response, RegistryError>;

/// Query pairs in order (repeated keys such as `tag=` and `scope=` kept).
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

pub(crate) fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn realm(st: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        .unwrap_or("localhost");
    let scheme = if st.tls { "https" } else { "http" };
    format!("{scheme}://{host}/token")
}

/// The single entry point of every request.
pub(crate) async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let q = query_pairs(parts.uri.query());
    let mut user = None;
    let res = route(&st, &parts, &q, body, &mut user).await;
    let mut resp = match res {
        Ok(r) => r,
        Err(Denied(d)) => {
            let mut r = error_response(&d.error);
            if let Some(c) = d.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                r.headers_mut().insert("www-authenticate", c);
            }
            r
        }
        Err(Failed(e)) => error_response(&e),
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if let Some(u) = user {
        resp.extensions_mut().insert(AuthUser(u));
    }
    resp
}

enum Refusal {
    Denied(crate::auth::Denial),
    Failed(RegistryError),
}
use Refusal::{Denied, Failed};

impl From<RegistryError> for Refusal {
    fn from(e: RegistryError) -> Self {
        Failed(e)
    }
}

async fn route(
    st: &AppState,
    parts: &axum::http::request::Parts,
    q: &[(String, String)],
    body: Body,
    user: &mut Option<String>,
) -> Result<Response, Refusal> {
    let route = Route::parse(parts.uri.path())?;
    let method = &parts.method;
    if route == Route::Token {
        if *method != Method::GET {
            return Err(Failed(RegistryError::MethodNotAllowed));
        }
        let scopes: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect();
        let (json, u) = st
            .auth
            .issue_token(&parts.headers, &scopes)
            .map_err(Denied)?;
        *user = u;
        return Ok(axum::Json(json).into_response());
    }
    let id: Identity = st
        .auth
        .check(
            &parts.headers,
            &realm(st, &parts.headers),
            &route.needs(method),
        )
        .map_err(Denied)?;
    user.clone_from(&id.user);
    let write = !matches!(*method, Method::GET | Method::HEAD);
    if write && st.read_only && route != Route::Base {
        return Err(Failed(RegistryError::Unsupported(
            "registry is read-only".into(),
        )));
    }
    if let (true, Some(p)) = (write && route != Route::Base, &st.proxy) {
        return Err(Failed(RegistryError::Unsupported(format!(
            "this registry is a pull-through cache of {}: pushes and deletes are not accepted",
            p.remote()
        ))));
    }
    let m = method.clone();
    let h = &parts.headers;
    let r = match route {
        Route::Base if m == Method::GET || m == Method::HEAD => {
            Ok(axum::Json(serde_json::json!({})).into_response())
        }
        Route::Catalog if m == Method::GET => listing::catalog(st, q),
        Route::Tags(r) if m == Method::GET => listing::tags(st, &r, q),
        Route::Referrers(r, d) if m == Method::GET => listing::referrers(st, &r, &d, q),
        Route::Manifest(r, re) => match m {
            Method::GET | Method::HEAD => {
                if let Some(p) = &st.proxy {
                    p.manifest(&st.storage, &r, &re).await?;
                }
                manifests::get(st, &r, &re, m == Method::HEAD)
            }
            Method::PUT => manifests::put(st, &r, &re, h, q, body).await,
            Method::DELETE => manifests::delete(st, &r, &re),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Route::Blob(r, d) => match m {
            Method::GET | Method::HEAD => {
                let whole_first = m == Method::HEAD || h.contains_key("range");
                let streamed = match &st.proxy {
                    Some(p) => p.blob(&st.storage, &r, &d, whole_first).await?,
                    None => None,
                };
                match streamed {
                    Some(resp) => Ok(resp),
                    None => blobs::get(st, &r, &d, h, m == Method::HEAD).await,
                }
            }
            Method::DELETE => blobs::delete(st, &r, &d),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        Route::UploadStart(r) if m == Method::POST => blobs::start(st, &r, &id, q, body).await,
        Route::Upload(r, u) => match m {
            Method::GET => blobs::status(st, &r, &u).await,
            Method::PATCH => blobs::patch(st, &r, &u, h, body).await,
            Method::PUT => blobs::finish(st, &r, &u, h, q, body).await,
            Method::DELETE => blobs::cancel(st, &r, &u).await,
            _ => Err(RegistryError::MethodNotAllowed),
        },
        _ => Err(RegistryError::MethodNotAllowed),
    };
    r.map_err(Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Route::parse("/v2/").unwrap(), Route::Base);
        assert_eq!(Route::parse("/v2/_catalog").unwrap(), Route::Catalog);
        assert!(matches!(
            Route::parse("/v2/a/b/c/manifests/latest").unwrap(),
            Route::Manifest(r, ManifestRef::Tag(t)) if r.as_str() == "a/b/c" && t == "latest"
        ));
        assert!(matches!(
            Route::parse(&format!("/v2/x/blobs/{d}")).unwrap(),
            Route::Blob(r, _) if r.as_str() == "x"
        ));
        assert!(matches!(
            Route::parse("/v2/a/blobs/uploads/").unwrap(),
            Route::UploadStart(r) if r.as_str() == "a"
        ));
        // A repository may itself be called "blobs" or "manifests".
        assert!(matches!(
            Route::parse("/v2/blobs/manifests/manifests/x").unwrap(),
            Route::Manifest(r, _) if r.as_str() == "blobs/manifests"
        ));
        assert!(matches!(
            Route::parse("/v2/a/tags/list").unwrap(),
            Route::Tags(r) if r.as_str() == "a"
        ));
        for bad in [
            "/v2/../manifests/x",
            "/v2/a/../b/manifests/x",
            "/v2/%2e%2e/manifests/x",
            "/v2/a/blobs/sha256:..%2f..",
            "/v2/a/blobs/md5:abc",
            "/v2/a/blobs/uploads/../../etc",
            "/v2/a/manifests/..",
            "/v2/manifests/x",
            "/v3/",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }
}
