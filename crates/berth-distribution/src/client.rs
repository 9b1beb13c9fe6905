//! One conversation with one registry about one repository: picks the
//! endpoint URL that answers, authenticates on demand (a 401 carries the
//! challenge to answer; spec.md "Authentication", token.md) and wraps the
//! distribution API calls the pull and push need.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use berth_core::Digest;
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{parse_challenge, Challenge, Credentials, TokenResponse};
use crate::endpoint::Endpoint;
use crate::DistributionError;

/// Everything a pull accepts, most specific first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A session with one registry for one repository.
pub struct Session {
    http: reqwest::Client,
    /// `http(s)://host[:port]`, no trailing slash.
    pub base: String,
    /// The repository path (`library/busybox`).
    pub repo: String,
    creds: Option<Credentials>,
    /// `repository:<repo>:pull[,push]`.
    scope: String,
    /// The `Authorization` value earned by the last challenge.
    authorization: Mutex<Option<String>>,
}

/// The system's trusted root certificates, read once per process (as Go's
/// `x509.SystemCertPool`, which dockerd uses, is), and only those rustls
/// can use. reqwest would otherwise read and parse the whole system store
/// (the bundle and every file of /etc/ssl/certs) for each client it
/// builds: 20–50 ms at the start of every pull and push.
fn native_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: std::sync::OnceLock<Vec<reqwest::Certificate>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!(error = %e, "reading the system's root certificates");
        }
        let usable: Vec<reqwest::Certificate> = loaded
            .certs
            .into_iter()
            .filter(|c| rustls::RootCertStore::empty().add(c.clone()).is_ok())
            .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok())
            .collect();
        if usable.is_empty() {
            tracing::warn!("no usable root certificates found: TLS registries will not be trusted");
        }
        usable
    })
}

/// Reads the system's root certificates now if they have not been read
/// yet (a daemon does it at start-up, in the background).
pub fn load_root_certificates() {
    let n = native_roots().len();
    tracing::debug!(roots = n, "system root certificates loaded");
}

fn client(insecure: bool) -> Result<reqwest::Client, DistributionError> {
    let mut b = reqwest::Client::builder().tls_built_in_native_certs(false);
    for c in native_roots() {
        b = b.add_root_certificate(c.clone());
    }
    b.danger_accept_invalid_certs(insecure)
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(DistributionError::http("building the HTTP client"))
}

/// Docker's rendering of a registry error body: `code: message`, with the
/// code lowercased and underscores as spaces (`manifest unknown: …`).
pub fn registry_error(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        if !e.errors.is_empty() {
            return e
                .errors
                .iter()
                .map(|i| {
                    let code = i.code.to_lowercase().replace('_', " ");
                    if i.message.is_empty() {
                        code
                    } else {
                        format!("{code}: {}", i.message)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized: authentication required".to_string(),
        s => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("unexpected status from the registry: {s}")
            } else {
                format!("unexpected status from the registry: {s}: {text}")
            }
        }
    }
}

/// The target of a `Link` header's `rel="next"` entry (RFC 8288).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// Turns an unsuccessful response into an error of the right kind.
pub async fn error_of(resp: Response, what: &str) -> DistributionError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let msg = registry_error(status, &body);
    match status {
        StatusCode::UNAUTHORIZED => DistributionError::Unauthorized(msg),
        StatusCode::FORBIDDEN => DistributionError::Forbidden(msg),
        StatusCode::NOT_FOUND => DistributionError::NotFound(msg),
        _ => DistributionError::Protocol(format!("{what}: {msg}")),
    }
}

impl Session {
    /// Finds the endpoint URL that answers `GET /v2/` and answers its
    /// challenge for `actions` (`pull` or `pull,push`) on `repo`. `repo`
    /// empty: login only (no scope).
    pub async fn connect(
        endpoint: &Endpoint,
        repo: &str,
        actions: &str,
        creds: Option<Credentials>,
    ) -> Result<Session, DistributionError> {
        let http = client(endpoint.insecure)?;
        let mut last_err = None;
        for url in &endpoint.urls {
            let url = url.trim_end_matches('/');
            match http.get(format!("{url}/v2/")).send().await {
                Ok(resp) => {
                    let session = Session {
                        http,
                        base: url.to_string(),
                        repo: repo.to_string(),
                        creds,
                        scope: if repo.is_empty() {
                            String::new()
                        } else {
                            format!("repository:{repo}:{actions}")
                        },
                        authorization: Mutex::new(None),
                    };
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        session.answer(resp.headers(), true).await?;
                    }
                    return Ok(session);
                }
                Err(e) => {
                    tracing::debug!(url, error = %e, "registry endpoint does not answer");
                    last_err = Some(DistributionError::http(format!("Get \"{url}/v2/\""))(e));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| DistributionError::Protocol("no registry endpoint".into())))
    }

    /// Answers the challenge in `headers`; `ours`: use our scope rather
    /// than the challenge's.
    async fn answer(&self, headers: &HeaderMap, ours: bool) -> Result<(), DistributionError> {
        let challenges: Vec<Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .collect();
        let creds = self.creds.as_ref().filter(|c| c.has_secret());
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let realm = c.param("realm").ok_or_else(|| {
                DistributionError::Protocol("bearer challenge without realm".into())
            })?;
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(s) = c.param("service") {
                query.push(("service", s.to_string()));
            }
            let scope = if ours || c.param("scope").is_none() {
                self.scope.clone()
            } else {
                c.param("scope").unwrap_or_default().to_string()
            };
            if !scope.is_empty() {
                query.push(("scope", scope));
            }
            let mut req = self.http.get(realm).query(&query);
            if let Some(c) = creds {
                if !c.registrytoken.is_empty() {
                    *self.authorization.lock().expect("auth lock") =
                        Some(format!("Bearer {}", c.registrytoken));
                    return Ok(());
                }
                req = req.basic_auth(&c.username, Some(&c.password));
            }
            let resp = req
                .send()
                .await
                .map_err(DistributionError::http(format!("Get \"{realm}\"")))?;
            if !resp.status().is_success() {
                let status = resp.status();
                let body = resp.bytes().await.unwrap_or_default();
                let msg = if status == StatusCode::UNAUTHORIZED && creds.is_some() {
                    "unauthorized: incorrect username or password".to_string()
                } else {
                    registry_error(status, &body)
                };
                return Err(match status {
                    StatusCode::UNAUTHORIZED => DistributionError::Unauthorized(msg),
                    StatusCode::FORBIDDEN => DistributionError::Forbidden(msg),
                    _ => DistributionError::Protocol(format!("fetching a token: {msg}")),
                });
            }
            let token: TokenResponse = resp
                .json()
                .await
                .map_err(DistributionError::http("reading the token response"))?;
            let token = token.into_token().ok_or_else(|| {
                DistributionError::Protocol("the token response has no token".into())
            })?;
            *self.authorization.lock().expect("auth lock") = Some(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let c = creds.ok_or_else(|| {
                DistributionError::Unauthorized("no basic auth credentials".into())
            })?;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            *self.authorization.lock().expect("auth lock") = Some(format!("Basic {basic}"));
            return Ok(());
        }
        Err(DistributionError::Unauthorized(
            "unauthorized: authentication required".into(),
        ))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repo, path)
    }

    /// Sends the request `build` makes, answering one 401 challenge by
    /// authenticating and sending a fresh request.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, DistributionError> {
        for attempt in 0..2 {
            let mut req = build(&self.http);
            if let Some(a) = self.authorization.lock().expect("auth lock").clone() {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req
                .send()
                .await
                .map_err(DistributionError::http("talking to the registry"))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                let had = self.authorization.lock().expect("auth lock").clone();
                // A Basic answer that was refused will be refused again.
                if had.as_deref().is_some_and(|a| a.starts_with("Basic ")) {
                    return Ok(resp);
                }
                self.answer(resp.headers(), false).await?;
                continue;
            }
            return Ok(resp);
        }
        unreachable!("the loop returns")
    }

    /// Checks that the credentials are accepted (`POST /auth`).
    pub async fn check_login(&self) -> Result<(), DistributionError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(|h| h.get(&url)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        Err(DistributionError::Unauthorized(format!(
            "login attempt to {url} failed with status: {status}"
        )))
    }

    /// `GET /v2/<name>/tags/list`, following the `Link: <…>; rel="next"`
    /// pages (spec.md "Listing Tags") on the same registry, in the
    /// registry's order.
    pub async fn list_tags(&self) -> Result<Vec<String>, DistributionError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.url("tags/list");
        let mut tags = Vec::new();
        // A registry that links pages in a circle must not keep us here.
        for _ in 0..10_000 {
            let resp = self.send(|h| h.get(&url)).await?;
            if !resp.status().is_success() {
                return Err(error_of(resp, "listing tags").await);
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = resp
                .bytes()
                .await
                .map_err(DistributionError::http("reading the tag list"))?;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| {
                DistributionError::Protocol(format!("the registry's tag list is not valid: {e}"))
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                None => return Ok(tags),
                Some(n) if n.starts_with('/') && !n.starts_with("//") => {
                    url = format!("{}{n}", self.base)
                }
                Some(n) if n.starts_with(&format!("{}/", self.base)) => url = n,
                // Credentials go only where the session was opened.
                Some(n) => {
                    return Err(DistributionError::Protocol(format!(
                        "the registry links the next page of tags to another host: {n}"
                    )))
                }
            }
        }
        Err(DistributionError::Protocol(
            "the registry's tag list does not end".into(),
        ))
    }

    /// `GET /v2/<name>/manifests/<reference>`: the bytes and media type.
    pub async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>), DistributionError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self
            .send(|h| h.get(&url).header(ACCEPT, MANIFEST_ACCEPT))
            .await?;
        if !resp.status().is_success() {
            return Err(error_of(resp, "fetching the manifest").await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let bytes = resp
            .bytes()
            .await
            .map_err(DistributionError::http("reading the manifest"))?;
        Ok((bytes.to_vec(), media_type))
    }

    /// `GET /v2/<name>/blobs/<digest>` (redirects followed).
    pub async fn get_blob(&self, digest: &Digest) -> Result<Response, DistributionError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(|h| h.get(&url)).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp, &format!("fetching blob {digest}")).await);
        }
        Ok(resp)
    }

    /// `GET /v2/<name>/blobs/<digest>` from byte `offset` on (`Range:
    /// bytes=N-` when `offset` > 0). The caller checks whether the server
    /// honoured the range (206) or sent the whole blob (200).
    pub async fn get_blob_from(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<Response, DistributionError> {
        if offset == 0 {
            return self.get_blob(digest).await;
        }
        let url = self.url(&format!("blobs/{digest}"));
        let range = format!("bytes={offset}-");
        let resp = self
            .send(|h| h.get(&url).header(reqwest::header::RANGE, &range))
            .await?;
        if !resp.status().is_success() {
            return Err(
                error_of(resp, &format!("fetching blob {digest} from byte {offset}")).await,
            );
        }
        Ok(resp)
    }

    /// A whole small blob (a config), verified.
    pub async fn get_small_blob(&self, digest: &Digest) -> Result<Vec<u8>, DistributionError> {
        let resp = self.get_blob(digest).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(DistributionError::http(format!("reading blob {digest}")))?;
        let actual = Digest::sha256_of(&bytes);
        if &actual != digest {
            return Err(DistributionError::Protocol(format!(
                "blob {digest} has digest {actual}: the registry sent the wrong content"
            )));
        }
        Ok(bytes.to_vec())
    }

    /// `HEAD /v2/<name>/blobs/<digest>`.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, DistributionError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(|h| h.head(&url)).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_of(resp, &format!("checking blob {digest}")).await),
        }
    }

    /// Opens an upload session (spec.md "POST then PUT"); returns the
    /// absolute URL to send the blob's bytes to.
    pub async fn start_upload(&self) -> Result<String, DistributionError> {
        let url = self.url("blobs/uploads/");
        let resp = self
            .send(|h| h.request(Method::POST, &url).header(CONTENT_LENGTH, 0))
            .await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(error_of(resp, "starting an upload").await);
        }
        self.location(&resp)
    }

    /// The absolute URL in a response's `Location` header.
    fn location(&self, resp: &Response) -> Result<String, DistributionError> {
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DistributionError::Protocol("upload response has no Location".into()))?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{}{}", self.base, location)
            },
        )
    }

    /// Sends a blob's bytes as they are produced, in one streamed `PATCH`
    /// (chunked transfer encoding, no `Content-Range`: the whole blob is one
    /// chunk of unknown length, as docker sends it). A stream cannot be sent
    /// twice, so the session must already be authorized (the `POST` that
    /// opened it was). Returns the URL that closes the upload.
    pub async fn patch_stream(
        &self,
        location: &str,
        body: reqwest::Body,
    ) -> Result<String, DistributionError> {
        let mut req = self
            .http
            .patch(location)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some(a) = self.authorization.lock().expect("auth lock").clone() {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = req
            .send()
            .await
            .map_err(DistributionError::http("uploading to the registry"))?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(error_of(resp, "uploading a layer").await);
        }
        self.location(&resp)
    }

    /// Closes an upload whose bytes were all sent: `PUT <location>?digest=`
    /// with an empty body; the registry verifies the digest.
    pub async fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
    ) -> Result<(), DistributionError> {
        let put = with_digest(location, digest);
        let resp = self.send(|h| h.put(&put).header(CONTENT_LENGTH, 0)).await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(error_of(resp, &format!("uploading blob {digest}")).await);
        }
        Ok(())
    }

    /// Monolithic upload (spec.md "POST then PUT"): opens a session, then
    /// PUTs the whole blob with its digest. `body` makes the request body
    /// (called again if the PUT must be re-sent after a challenge).
    /// Cross-repository mount (spec.md "Mounting a blob from another
    /// repository"): `POST …/blobs/uploads/?mount=<digest>&from=<repo>`.
    /// True when the registry mounted it (201). Anything else (202 with an
    /// upload session, a refusal) is false: the caller uploads instead; a
    /// session the registry opened anyway is cancelled.
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> bool {
        let url = format!(
            "{}?{}",
            self.url("blobs/uploads/"),
            serde_urlencoded::to_string([
                ("mount", digest.to_string()),
                ("from", from.to_string())
            ])
            .expect("query encodes")
        );
        // A mount that fails in any way (no pull access to `from` with the
        // token it asks for, included) only means uploading instead.
        let resp = match self
            .send(|h| h.request(Method::POST, &url).header(CONTENT_LENGTH, 0))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%digest, from, error = %e, "cross-repository mount failed");
                return false;
            }
        };
        match resp.status() {
            StatusCode::CREATED => true,
            StatusCode::ACCEPTED => {
                if let Ok(location) = self.location(&resp) {
                    let _ = self.send(|h| h.delete(&location)).await;
                }
                false
            }
            _ => false,
        }
    }

    pub async fn upload_blob(
        &self,
        digest: &Digest,
        size: u64,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<(), DistributionError> {
        let location = self.start_upload().await?;
        let put = with_digest(&location, digest);
        let resp = self
            .send(|h| {
                h.put(&put)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(body())
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(error_of(resp, &format!("uploading blob {digest}")).await);
        }
        Ok(())
    }

    /// `PUT /v2/<name>/manifests/<tag>`; returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest, DistributionError> {
        let url = self.url(&format!("manifests/{tag}"));
        let resp = self
            .send(|h| {
                h.put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(error_of(resp, "putting the manifest").await);
        }
        Ok(Digest::sha256_of(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_the_rel_next_target() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://a/x>; rel="prev", <https://a/y>; rel=next"#).as_deref(),
            Some("https://a/y")
        );
        assert_eq!(next_link(r#"<https://a/x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
