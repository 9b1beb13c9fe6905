//! Content discovery: tags (end-8), the catalog and referrers (end-12).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::Digest;

use super::{query_get, AppState, Reply};
use crate::error::RegistryError;
use crate::manifest::{Manifest, OCI_INDEX};
use crate::names::RepoName;

/// One page of a listing and, when more remain, `(n, last)` for the next.
type Page = (Vec<String>, Option<(usize, String)>);

/// Sorted `items` after `last` (exclusive), at most `n`; the second value
/// is the `last` of the next page when more remain (spec "Listing Tags":
/// n=0 is an empty list without a Link).
fn paginate(items: Vec<String>, q: &[(String, String)]) -> Result<Page, RegistryError> {
    let n = match query_get(q, "n") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| RegistryError::PaginationInvalid(format!("n={v}")))?,
        ),
        None => None,
    };
    let mut rest: Vec<String> = match query_get(q, "last") {
        Some(last) => items.into_iter().filter(|t| t.as_str() > last).collect(),
        None => items,
    };
    match n {
        Some(n) if n < rest.len() => {
            rest.truncate(n);
            let next = rest.last().cloned().map(|l| (n, l));
            Ok((rest, next))
        }
        _ => Ok((rest, None)),
    }
}

fn list_response(path: &str, json: serde_json::Value, next: Option<(usize, String)>) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json");
    if let Some((n, last)) = next {
        let qs = serde_urlencoded::to_string([("n", n.to_string()), ("last", last)])
            .expect("query encodes");
        b = b.header("link", format!("<{path}?{qs}>; rel=\"next\""));
    }
    b.body(Body::from(json.to_string()))
        .expect("valid response")
}

pub(super) fn tags(st: &AppState, repo: &RepoName, q: &[(String, String)]) -> Reply {
    let all = st
        .storage
        .tags(repo)?
        .ok_or_else(|| RegistryError::NameUnknown(repo.to_string()))?;
    let (page, next) = paginate(all.into_iter().map(|(t, _)| t).collect(), q)?;
    Ok(list_response(
        &format!("/v2/{repo}/tags/list"),
        serde_json::json!({ "name": repo.as_str(), "tags": page }),
        next,
    ))
}

pub(super) fn catalog(st: &AppState, q: &[(String, String)]) -> Reply {
    let (page, next) = paginate(st.storage.catalog()?, q)?;
    Ok(list_response(
        "/v2/_catalog",
        serde_json::json!({ "repositories": page }),
        next,
    ))
}

pub(super) fn referrers(
    st: &AppState,
    repo: &RepoName,
    subject: &Digest,
    q: &[(String, String)],
) -> Reply {
    let filter = query_get(q, "artifactType").filter(|s| !s.is_empty());
    let mut manifests = Vec::new();
    for d in st.storage.referrers(repo, subject)? {
        if st.storage.manifest_media_type(repo, &d)?.is_none() {
            continue;
        }
        let path = st.storage.blob_path(&d);
        let bytes = std::fs::read(&path).map_err(RegistryError::io(&path))?;
        let Ok(m) = Manifest::parse(&bytes, "") else {
            continue;
        };
        let desc = m.referrer_descriptor(d, bytes.len());
        if filter.is_some_and(|f| desc.artifact_type.as_deref() != Some(f)) {
            continue;
        }
        manifests.push(desc);
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", OCI_INDEX);
    if filter.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    Ok(b.body(Body::from(body.to_string()))
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn pages() {
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let (p, next) = paginate(items.clone(), &q(&[("n", "2")])).unwrap();
        assert_eq!(p, ["a", "b"]);
        assert_eq!(next, Some((2, "b".into())));
        let (p, next) = paginate(items.clone(), &q(&[("n", "2"), ("last", "b")])).unwrap();
        assert_eq!(p, ["c", "d"]);
        assert_eq!(next, None);
        let (p, next) = paginate(items.clone(), &q(&[("n", "0")])).unwrap();
        assert!(p.is_empty() && next.is_none());
        let (p, _) = paginate(items.clone(), &q(&[("last", "c")])).unwrap();
        assert_eq!(p, ["d"]);
        assert!(paginate(items, &q(&[("n", "-1")])).is_err());
    }
}
