//! Blobs (end-2, end-10) and upload sessions (end-4 to end-6, end-11,
//! end-13, end-14).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_core::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{query_get, AppState, Reply};
use crate::auth::Identity;
use crate::error::RegistryError;
use crate::names::{parse_digest, RepoName, UploadId};
use crate::storage::upload::Session;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn blob_location(repo: &RepoName, d: &Digest) -> String {
    format!("/v2/{repo}/blobs/{d}")
}

fn upload_location(repo: &RepoName, id: &UploadId) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

/// A `Range: bytes=…` request header resolved against `size`: `Ok(None)`
/// serves the whole blob (no header, or several ranges, which RFC 9110 §14.2
/// lets a server ignore); an unsatisfiable range is RANGE_INVALID.
fn parse_range(v: &str, size: u64) -> Result<Option<(u64, u64)>, RegistryError> {
    let bad = || RegistryError::RangeInvalid(format!("{v} of {size} bytes"));
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| bad())?;
            if n == 0 || size == 0 {
                return Err(bad());
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().map_err(|_| bad())?, size.saturating_sub(1)),
        (s, e) => {
            let s: u64 = s.parse().map_err(|_| bad())?;
            let e: u64 = e.parse().map_err(|_| bad())?;
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size || end < start {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

pub(super) async fn get(
    st: &AppState,
    repo: &RepoName,
    d: &Digest,
    h: &HeaderMap,
    head: bool,
) -> Reply {
    let size = st
        .storage
        .repo_blob_size(repo, d)?
        .ok_or_else(|| RegistryError::BlobUnknown(d.clone()))?;
    let range = match header(h, "range") {
        Some(v) => match parse_range(v, size) {
            Ok(r) => r,
            Err(e) => {
                let mut r = super::error_response(&e);
                r.headers_mut().insert(
                    "content-range",
                    format!("bytes */{size}").parse().expect("ascii"),
                );
                return Ok(r);
            }
        },
        None => None,
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .header("docker-content-digest", d.to_string())
        .header("accept-ranges", "bytes")
        .header("etag", format!("\"{d}\""));
    if let Some((s, e)) = range {
        b = b.header("content-range", format!("bytes {s}-{e}/{size}"));
    }
    let body = if head {
        Body::empty()
    } else {
        let path = st.storage.blob_path(d);
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(RegistryError::io(&path))?;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(RegistryError::io(&path))?;
        // 1 MiB reads: each read of a tokio file is a trip to the blocking
        // pool, so small reads cost more in hand-offs than in copying.
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            f.take(len),
            1 << 20,
        ))
    };
    Ok(b.body(body).expect("valid response"))
}

pub(super) fn delete(st: &AppState, repo: &RepoName, d: &Digest) -> Reply {
    if !st.storage.unlink_blob(repo, d)? {
        return Err(RegistryError::BlobUnknown(d.clone()));
    }
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-length", 0)
        .body(Body::empty())
        .expect("valid response"))
}

fn session_reply(status: StatusCode, repo: &RepoName, s: &Session) -> Response {
    let off = s.offset();
    // `Range: 0-<last byte>`; before any byte arrives, docker-registry says 0-0.
    let range = format!("0-{}", off.saturating_sub(1));
    Response::builder()
        .status(status)
        .header("location", upload_location(repo, s.id()))
        .header("docker-upload-uuid", s.id().as_str())
        .header("range", range)
        .header("content-length", 0)
        .body(Body::empty())
        .expect("valid response")
}

fn created(repo: &RepoName, d: &Digest) -> Response {
    Response::builder()
        .status(StatusCode::CREATED)
        .header("location", blob_location(repo, d))
        .header("docker-content-digest", d.to_string())
        .header("content-length", 0)
        .body(Body::empty())
        .expect("valid response")
}

/// POST /v2/<name>/blobs/uploads/: mount, monolithic upload, or a session.
pub(super) async fn start(
    st: &AppState,
    repo: &RepoName,
    id: &Identity,
    q: &[(String, String)],
    body: Body,
) -> Reply {
    if let Some(alg) = query_get(q, "digest-algorithm") {
        if alg != "sha256" {
            return Err(RegistryError::DigestInvalid(format!(
                "unsupported digest algorithm {alg}"
            )));
        }
    }
    if let (Some(mount), Some(from)) = (query_get(q, "mount"), query_get(q, "from")) {
        let d = parse_digest(mount)?;
        // A mount source the caller may not pull from is treated as absent,
        // as distribution does: the client falls back to uploading.
        if let Ok(from) = from.parse::<RepoName>() {
            if id.allows("repository", from.as_str(), "pull")
                && st.storage.repo_blob_size(&from, &d)?.is_some()
            {
                st.storage.link_blob(repo, &d)?;
                return Ok(created(repo, &d));
            }
        }
    }
    let mut s = st.uploads.start(repo).await?;
    if let Some(digest) = query_get(q, "digest") {
        let d = parse_digest(digest)?;
        let res = st
            .uploads
            .append(&mut s, None, body.into_data_stream())
            .await;
        if let Err(e) = res {
            st.uploads.cancel(s);
            return Err(e);
        }
        st.uploads.finish(s, &d).await?;
        st.storage.link_blob(repo, &d)?;
        return Ok(created(repo, &d));
    }
    Ok(session_reply(StatusCode::ACCEPTED, repo, &s))
}

/// `Content-Range: <start>-<end>` (also accepts `bytes <start>-<end>/<total>`).
fn content_range(h: &HeaderMap) -> Result<Option<(u64, u64)>, RegistryError> {
    let Some(v) = header(h, "content-range") else {
        return Ok(None);
    };
    let bad = || RegistryError::RangeInvalid(format!("bad Content-Range {v:?}"));
    let v2 = v.trim().trim_start_matches("bytes").trim();
    let v2 = v2.split('/').next().unwrap_or("");
    let (a, b) = v2.split_once('-').ok_or_else(bad)?;
    Ok(Some((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    )))
}

pub(super) async fn status(st: &AppState, repo: &RepoName, u: &UploadId) -> Reply {
    let s = st.uploads.lock(repo, u).await?;
    Ok(session_reply(StatusCode::NO_CONTENT, repo, &s))
}

pub(super) async fn patch(
    st: &AppState,
    repo: &RepoName,
    u: &UploadId,
    h: &HeaderMap,
    body: Body,
) -> Reply {
    let mut s = st.uploads.lock(repo, u).await?;
    let range = content_range(h)?;
    match st
        .uploads
        .append(&mut s, range, body.into_data_stream())
        .await
    {
        Ok(_) => Ok(session_reply(StatusCode::ACCEPTED, repo, &s)),
        Err(e @ RegistryError::RangeInvalid(_)) => {
            // 416 with where the session stands, so the client can resume.
            let mut r = super::error_response(&e);
            let ok = session_reply(StatusCode::ACCEPTED, repo, &s);
            for k in ["location", "range", "docker-upload-uuid"] {
                if let Some(v) = ok.headers().get(k) {
                    r.headers_mut().insert(k, v.clone());
                }
            }
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn finish(
    st: &AppState,
    repo: &RepoName,
    u: &UploadId,
    h: &HeaderMap,
    q: &[(String, String)],
    body: Body,
) -> Reply {
    let d = parse_digest(
        query_get(q, "digest")
            .ok_or_else(|| RegistryError::DigestInvalid("closing PUT needs ?digest=".into()))?,
    )?;
    let mut s = st.uploads.lock(repo, u).await?;
    let range = content_range(h)?;
    st.uploads
        .append(&mut s, range, body.into_data_stream())
        .await?;
    st.uploads.finish(s, &d).await?;
    st.storage.link_blob(repo, &d)?;
    Ok(created(repo, &d))
}

pub(super) async fn cancel(st: &AppState, repo: &RepoName, u: &UploadId) -> Reply {
    let s = st.uploads.lock(repo, u).await?;
    st.uploads.cancel(s);
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-3", 10).unwrap(), Some((0, 3)));
        assert_eq!(parse_range("bytes=5-", 10).unwrap(), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10).unwrap(), Some((7, 9)));
        assert_eq!(parse_range("bytes=8-100", 10).unwrap(), Some((8, 9)));
        assert_eq!(parse_range("bytes=0-1,3-4", 10).unwrap(), None);
        assert!(parse_range("bytes=10-", 10).is_err());
        assert!(parse_range("bytes=5-2", 10).is_err());
        assert!(parse_range("bytes=x-2", 10).is_err());
    }
}
