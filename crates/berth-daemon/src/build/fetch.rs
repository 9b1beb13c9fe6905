//! `ADD <http(s) URL>`: the daemon downloads the file (Dockerfile
//! reference, "ADD", "Adding files from a URL"). The file is named after
//! the URL's last path segment (or the destination), gets mode 0600 and
//! the server's `Last-Modified` as mtime, and is never extracted.
//! `--checksum=sha256:<hex>` is checked against the bytes received. The
//! step's key comes from the content, so the download happens on every
//! build (as in Docker) and a changed file reruns the step.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::{BuildError, Result};

/// Whether an ADD source is a URL the daemon fetches.
pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name a URL gives: its last non-empty path segment.
pub(super) fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .filter(|s| *s != "." && *s != "..")
        .map(str::to_string)
}

/// Parses `--checksum`: only `sha256:<64 hex>`.
pub(super) fn parse_checksum(c: &str) -> Result<String> {
    let Some(hex) = c.strip_prefix("sha256:") else {
        return Err(BuildError::new(format!(
            "ADD --checksum={c}: unsupported digest (want sha256:<64 hex digits>)"
        )));
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BuildError::new(format!(
            "ADD --checksum={c}: invalid sha256 digest (want 64 hex digits)"
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Downloads `url` into `dir/<name>`; returns the file's path.
pub(super) fn fetch(url: &str, name: &str, checksum: Option<&str>, dir: &Path) -> Result<PathBuf> {
    let want = checksum.map(parse_checksum).transpose()?;
    let fail = |what: String| BuildError::new(format!("ADD {url}: {what}"));
    fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let path = dir.join(name);
    let mut file = fs::File::create(&path).map_err(|e| fail(e.to_string()))?;
    let handle = tokio::runtime::Handle::current();
    let (digest, last_modified) = handle.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(3600))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(format!("download failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|t| t.timestamp());
        let mut h = Sha256::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("download failed: {e}")))?
        {
            h.update(&chunk);
            file.write_all(&chunk).map_err(|e| fail(e.to_string()))?;
        }
        Ok((hex::encode(h.finalize()), last_modified))
    })?;
    drop(file);
    if let Some(want) = want {
        if want != digest {
            return Err(fail(format!(
                "checksum mismatch: expected sha256:{want}, got sha256:{digest}"
            )));
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    if let Some(t) = last_modified {
        let ts = nix::sys::time::TimeSpec::new(t, 0);
        let _ = nix::sys::stat::utimensat(
            None,
            &path,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checksums() {
        assert_eq!(
            url_file_name("https://h.example/a/b/file.tgz?x=1").as_deref(),
            Some("file.tgz")
        );
        assert_eq!(url_file_name("http://h:8080/dir/").as_deref(), Some("dir"));
        assert_eq!(url_file_name("http://h"), None);
        assert_eq!(url_file_name("http://h/"), None);
        assert!(parse_checksum("md5:abc").is_err());
        assert!(parse_checksum("sha256:abc").is_err());
        assert!(parse_checksum(&format!("sha256:{}", "A".repeat(64))).is_ok());
    }
}
