//! Manifests by tag or digest (end-3, end-7, end-9).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_core::digest::Algorithm;
use berth_core::Digest;

use super::{AppState, Reply};
use crate::error::RegistryError;
use crate::manifest::{Kind, Manifest, MAX_MANIFEST_SIZE};
use crate::names::{valid_tag, ManifestRef, RepoName};

/// The digest `reference` names in `repo`, or MANIFEST_UNKNOWN / NAME_UNKNOWN.
fn resolve(
    st: &AppState,
    repo: &RepoName,
    reference: &ManifestRef,
) -> Result<(Digest, String), RegistryError> {
    let unknown = || {
        if st.storage.repo_exists(repo) {
            RegistryError::ManifestUnknown(format!("{repo}:{reference}"))
        } else {
            RegistryError::NameUnknown(repo.to_string())
        }
    };
    let d = match reference {
        ManifestRef::Digest(d) => d.clone(),
        ManifestRef::Tag(t) => st.storage.tag(repo, t)?.ok_or_else(unknown)?,
    };
    let mt = st
        .storage
        .manifest_media_type(repo, &d)?
        .ok_or_else(unknown)?;
    Ok((d, mt))
}

pub(super) fn get(st: &AppState, repo: &RepoName, reference: &ManifestRef, head: bool) -> Reply {
    let (d, media_type) = resolve(st, repo, reference)?;
    let path = st.storage.blob_path(&d);
    let b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", media_type)
        .header("docker-content-digest", d.to_string())
        .header("etag", format!("\"{d}\""));
    if head {
        let size = st
            .storage
            .blob_size(&d)?
            .ok_or_else(|| RegistryError::ManifestUnknown(d.to_string()))?;
        return Ok(b
            .header("content-length", size)
            .body(Body::empty())
            .expect("valid response"));
    }
    let bytes = std::fs::read(&path).map_err(RegistryError::io(&path))?;
    Ok(b.header("content-length", bytes.len())
        .body(Body::from(bytes))
        .expect("valid response"))
}

pub(super) async fn put(
    st: &AppState,
    repo: &RepoName,
    reference: &ManifestRef,
    h: &HeaderMap,
    q: &[(String, String)],
    body: Body,
) -> Reply {
    let declared = h
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|&n| n > MAX_MANIFEST_SIZE) {
        return Err(RegistryError::ManifestTooLarge(n));
    }
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_SIZE)
        .await
        .map_err(|e| {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                // A chunked body (no Content-Length) past the cap: same 413.
                RegistryError::ManifestTooLarge(MAX_MANIFEST_SIZE + 1)
            } else {
                RegistryError::ManifestInvalid(format!("reading manifest: {e}"))
            }
        })?;
    let content_type = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let m = Manifest::parse(&bytes, content_type)?;
    let digest = Digest::sha256_of(&bytes);
    let mut tags: Vec<String> = Vec::new();
    match reference {
        ManifestRef::Digest(want) => {
            if want.algorithm() != Algorithm::Sha256 || want != &digest {
                return Err(RegistryError::DigestInvalid(format!(
                    "manifest digest is {digest}, not {want}"
                )));
            }
            // end-7b: extra tags on a push by digest.
            for (k, v) in q {
                if k == "tag" {
                    if !valid_tag(v) {
                        return Err(RegistryError::TagInvalid(v.clone()));
                    }
                    tags.push(v.clone());
                }
            }
        }
        ManifestRef::Tag(t) => tags.push(t.clone()),
    }
    // Held from the blob checks to the last link: gc's re-mark and sweep
    // (crate::gc) either see this manifest or run before its checks.
    let _lock = st.storage.writer_lock()?;
    // Spec "Push": a registry MAY refuse manifests whose descriptors name
    // content it does not have (MANIFEST_BLOB_UNKNOWN) — distribution does,
    // per repository. `subject` is exempt: referrers may come first.
    match m.kind {
        Kind::Image => {
            for b in m.blobs.iter().filter(|b| b.urls.is_empty()) {
                if st.storage.repo_blob_size(repo, &b.digest)?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(b.digest.clone()));
                }
            }
        }
        Kind::Index => {
            for c in &m.manifests {
                if st.storage.manifest_media_type(repo, &c.digest)?.is_none() {
                    return Err(RegistryError::ManifestBlobUnknown(c.digest.clone()));
                }
            }
        }
    }
    st.storage.put_blob_bytes(&bytes)?;
    st.storage.link_manifest(repo, &digest, &m.media_type)?;
    if let Some(s) = &m.subject {
        st.storage.add_referrer(repo, &s.digest, &digest)?;
    }
    for t in &tags {
        st.storage.set_tag(repo, t, &digest)?;
    }
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header("location", format!("/v2/{repo}/manifests/{digest}"))
        .header("docker-content-digest", digest.to_string())
        .header("content-length", 0);
    if let Some(s) = &m.subject {
        b = b.header("oci-subject", s.digest.to_string());
    }
    if matches!(reference, ManifestRef::Digest(_)) {
        for t in &tags {
            b = b.header("oci-tag", t.as_str());
        }
    }
    Ok(b.body(Body::empty()).expect("valid response"))
}

pub(super) fn delete(st: &AppState, repo: &RepoName, reference: &ManifestRef) -> Reply {
    match reference {
        ManifestRef::Tag(t) => {
            if !st.storage.delete_tag(repo, t)? {
                resolve(st, repo, reference)?;
            }
        }
        ManifestRef::Digest(d) => {
            resolve(st, repo, reference)?;
            // Forget it as a referrer before the link goes.
            if let Ok(bytes) = std::fs::read(st.storage.blob_path(d)) {
                if let Ok(m) = Manifest::parse(&bytes, "") {
                    if let Some(s) = m.subject {
                        st.storage.remove_referrer(repo, &s.digest, d)?;
                    }
                }
            }
            st.storage.unlink_manifest(repo, d)?;
            // Spec "Deleting Manifests": tags pointing to it 404 afterwards.
            for (t, td) in st.storage.tags(repo)?.unwrap_or_default() {
                if &td == d {
                    st.storage.delete_tag(repo, &t)?;
                }
            }
        }
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-length", 0)
        .body(Body::empty())
        .expect("valid response"))
}
