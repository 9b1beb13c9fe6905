//! `cp`: copies between a container and the local filesystem through the
//! archive endpoints (`HEAD`/`GET`/`PUT /containers/{id}/archive?path=`),
//! with Docker's path semantics (`archive.PrepareArchiveCopy`): a directory
//! destination receives the source by name, a missing destination takes the
//! source's place, `SRC/.` copies a directory's contents, `-` streams a tar.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use super::container::escape;
use super::is_terminal;
use crate::cli::CpArgs;
use crate::conn::{empty_body, stream_body, Engine};
use crate::error::is_status;

/// Docker's `splitCpArg`: `container:path`, unless the argument is a local
/// absolute path or starts with `.`.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// `archive.SplitPathDirEntry`: the parent and the last element, keeping
/// a trailing `/.` as the element `.`.
pub fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = crate::opts::clean_path(
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        }
        .as_str(),
    );
    if !path.starts_with('/') {
        cleaned = cleaned.trim_start_matches('/').to_string();
        if cleaned.is_empty() {
            cleaned = ".".into();
        }
    }
    if path == "." || path.ends_with("/.") {
        cleaned = if cleaned == "/" {
            "/.".into()
        } else {
            format!("{cleaned}/.")
        };
    }
    match cleaned.rsplit_once('/') {
        Some(("", base)) => ("/".into(), base.into()),
        Some((dir, base)) => (dir.into(), base.into()),
        None => (".".into(), cleaned),
    }
}

/// Docker's `RebaseArchiveEntries` for one name.
pub fn rebase(name: &str, old: &str, new: &str) -> String {
    let trimmed = name.trim_end_matches('/');
    if trimmed == old {
        return format!("{new}{}", &name[trimmed.len()..]);
    }
    match name.strip_prefix(&format!("{old}/")) {
        Some(rest) => format!("{new}/{rest}"),
        None => name.to_string(),
    }
}

/// Where an archive lands and how its entries are renamed:
/// `(extract into, Some((old base, new base)))`.
pub fn prepare_copy(
    src_path: &str,
    src_is_dir: bool,
    rebase_name: Option<&str>,
    dst_path: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> Result<(String, Option<(String, String)>)> {
    let (dst_dir, dst_base) = split_path_dir_entry(dst_path);
    let (_, src_base) = split_path_dir_entry(src_path);
    let src_base = rebase_name.map(str::to_string).unwrap_or(src_base);
    if dst_exists && dst_is_dir {
        return Ok((dst_path.to_string(), None));
    }
    if dst_exists && src_is_dir {
        bail!("cannot copy a directory to an existing file location");
    }
    if !dst_exists && !src_is_dir && (dst_path.ends_with('/') || dst_path.ends_with("/.")) {
        bail!("no such directory");
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// `X-Docker-Container-Path-Stat`: base64 JSON `{name,size,mode,mtime,linkTarget}`.
fn decode_stat(header: Option<&hyper::header::HeaderValue>) -> Option<Value> {
    let raw = base64_decode(header?.as_bytes())?;
    serde_json::from_slice(&raw).ok()
}

/// Standard-alphabet base64, padding optional.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s: Vec<u8> = s.iter().copied().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;

async fn stat(e: &Engine, container: &str, path: &str) -> Result<Value> {
    let q = serde_urlencoded::to_string([("path", path)])?;
    let resp = e
        .raw(
            Method::HEAD,
            &format!("/containers/{}/archive?{q}", escape(container)),
            empty_body(),
            &[],
        )
        .await?;
    decode_stat(resp.headers().get("X-Docker-Container-Path-Stat"))
        .ok_or_else(|| anyhow!("the engine sent no path stat for {container}:{path}"))
}

pub async fn cp(e: &Engine, a: CpArgs) -> Result<()> {
    let (src_c, src_p) = split_cp_arg(&a.src);
    let (dst_c, dst_p) = split_cp_arg(&a.dest);
    match (src_c, dst_c) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => from_container(e, &a, c, src_p, dst_p).await,
        (None, Some(c)) => to_container(e, &a, c, src_p, dst_p).await,
    }
}

fn report(a: &CpArgs, bytes: u64, dest: &str) {
    if !a.quiet && is_terminal(2) {
        eprintln!(
            "Successfully copied {} to {dest}",
            crate::units::human_size(bytes as f64)
        );
    }
}

async fn from_container(e: &Engine, a: &CpArgs, c: &str, src: &str, dst: &str) -> Result<()> {
    if src.is_empty() {
        bail!("filesystem path cannot be empty");
    }
    let mut src_path = src.to_string();
    let mut rebase_name = None;
    if a.follow_link {
        let st = stat(e, c, src).await?;
        if st["mode"].as_u64().unwrap_or(0) & MODE_SYMLINK != 0 {
            let target = st["linkTarget"].as_str().unwrap_or_default().to_string();
            rebase_name = Some(split_path_dir_entry(src).1);
            src_path = target;
        }
    }
    let q = serde_urlencoded::to_string([("path", src_path.as_str())])?;
    let resp = e
        .raw(
            Method::GET,
            &format!("/containers/{}/archive?{q}", escape(c)),
            empty_body(),
            &[],
        )
        .await?;
    let st = decode_stat(resp.headers().get("X-Docker-Container-Path-Stat")).unwrap_or_default();
    let src_is_dir = st["mode"].as_u64().unwrap_or(0) & MODE_DIR != 0;
    let body = resp
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let mut reader = tokio_util::io::StreamReader::new(body);

    if dst == "-" {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut reader, &mut out).await?;
        return Ok(());
    }
    let dst_meta = std::fs::metadata(dst);
    let (dst_exists, dst_is_dir) = match &dst_meta {
        Ok(m) => (true, m.is_dir()),
        Err(_) => (false, false),
    };
    if !dst_exists {
        let (parent, _) = split_path_dir_entry(dst);
        if !Path::new(&parent).is_dir() {
            bail!("stat {parent}: no such file or directory");
        }
    }
    let (into, renames) = prepare_copy(
        &src_path,
        src_is_dir,
        rebase_name.as_deref(),
        dst,
        dst_exists,
        dst_is_dir,
    )?;
    let archive_mode = a.archive;
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    let copied = tokio::task::spawn_blocking(move || {
        extract(bridge, Path::new(&into), renames, archive_mode)
    })
    .await
    .map_err(|err| anyhow!("extraction failed: {err}"))??;
    report(a, copied, dst);
    Ok(())
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Unpacks a tar under `into`, renaming entries; refuses names that would
/// leave `into`. Returns the archive's size.
fn extract(
    r: impl Read,
    into: &Path,
    renames: Option<(String, String)>,
    owners: bool,
) -> Result<u64> {
    let mut counting = Counting { inner: r, n: 0 };
    let mut ar = tar::Archive::new(&mut counting);
    ar.set_preserve_ownerships(owners);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().to_string();
        let name = match &renames {
            Some((old, new)) => rebase(&name, old, new),
            None => name,
        };
        let target = safe_join(into, &name)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let link = entry
                .link_name()?
                .map(|l| l.to_string_lossy().to_string())
                .unwrap_or_default();
            let link = match &renames {
                Some((old, new)) => rebase(&link, old, new),
                None => link,
            };
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(safe_join(into, &link)?, &target)?;
            continue;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("extracting {}", target.display()))?;
    }
    std::io::copy(&mut counting, &mut std::io::sink())?;
    Ok(counting.n)
}

fn safe_join(root: &Path, name: &str) -> Result<PathBuf> {
    let mut out = root.to_path_buf();
    for part in Path::new(name).components() {
        match part {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir => {}
            _ => bail!("archive entry {name:?} escapes the destination"),
        }
    }
    Ok(out)
}

/// Builds the tar of a local path as Docker's `TarResourceRebase` does,
/// with names already rebased for the destination.
fn build_tar(
    src: &Path,
    base: &str,
    renames: Option<(String, String)>,
    w: impl Write,
) -> Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let name_of = |n: &str| match &renames {
        Some((old, new)) => rebase(n, old, new),
        None => n.to_string(),
    };
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> std::io::Result<()> {
        let mut items: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        items.sort_by_key(|d| d.file_name());
        for d in items {
            let name = format!("{rel}/{}", d.file_name().to_string_lossy());
            let p = d.path();
            out.push((p.clone(), name.clone()));
            if d.file_type()?.is_dir() {
                walk(&p, &name, out)?;
            }
        }
        Ok(())
    }
    let mut entries = vec![(src.to_path_buf(), base.to_string())];
    if std::fs::symlink_metadata(src)?.is_dir() {
        walk(src, base, &mut entries)?;
    }
    for (path, name) in entries {
        let name = name_of(&name);
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            b.append_dir(&name, &path)?;
        } else {
            b.append_path_with_name(&path, &name)?;
        }
    }
    b.finish()?;
    Ok(())
}

async fn to_container(e: &Engine, a: &CpArgs, c: &str, src: &str, dst: &str) -> Result<()> {
    if dst.is_empty() {
        bail!("filesystem path cannot be empty");
    }
    let mut dst_path = dst.to_string();
    let mut dst_stat = match stat(e, c, dst).await {
        Ok(s) => Some(s),
        Err(err) if is_status(&err, 404) => None,
        Err(err) => return Err(err),
    };
    if let Some(s) = &dst_stat {
        if s["mode"].as_u64().unwrap_or(0) & MODE_SYMLINK != 0 {
            let mut target = s["linkTarget"].as_str().unwrap_or_default().to_string();
            if !target.starts_with('/') {
                target = format!("{}/{target}", split_path_dir_entry(dst).0);
            }
            dst_path = target;
            dst_stat = stat(e, c, &dst_path).await.ok();
        }
    }
    let dst_is_dir = dst_stat
        .as_ref()
        .is_some_and(|s| s["mode"].as_u64().unwrap_or(0) & MODE_DIR != 0);

    let put = |dir: String, body: crate::conn::RawBody| {
        let mut q = vec![("path", dir), ("noOverwriteDirNonDir", "true".to_string())];
        if a.archive {
            q.push(("copyUIDGID", "true".into()));
        }
        let path = format!(
            "/containers/{}/archive?{}",
            escape(c),
            serde_urlencoded::to_string(&q).unwrap_or_default()
        );
        async move {
            e.raw(
                Method::PUT,
                &path,
                body,
                &[("Content-Type", "application/x-tar".to_string())],
            )
            .await
        }
    };

    if src == "-" {
        if !dst_is_dir {
            bail!("destination \"{c}:{dst}\" must be a directory");
        }
        let body = stream_body(tokio_util::io::ReaderStream::new(tokio::io::stdin()));
        put(dst_path, body).await?;
        return Ok(());
    }

    let cwd = std::env::current_dir()?;
    let abs = if src.starts_with('/') {
        src.to_string()
    } else {
        format!("{}/{src}", cwd.display())
    };
    let mut src_path = abs.clone();
    let mut rebase_name = None;
    if a.follow_link {
        let resolved = std::fs::canonicalize(&abs)
            .map_err(|err| anyhow!("lstat {abs}: {}", super::create::io_reason(&err)))?;
        let resolved = resolved.display().to_string();
        if split_path_dir_entry(&resolved).1 != split_path_dir_entry(&abs).1 {
            rebase_name = Some(split_path_dir_entry(&abs).1);
        }
        src_path = resolved;
    }
    let meta = std::fs::symlink_metadata(&src_path)
        .map_err(|err| anyhow!("lstat {src_path}: {}", super::create::io_reason(&err)))?;
    let (src_dir, src_base) = split_path_dir_entry(&src_path);
    let (into, renames) = prepare_copy(
        &src_path,
        meta.is_dir(),
        rebase_name.as_deref(),
        &dst_path,
        dst_stat.is_some(),
        dst_is_dir,
    )?;
    // The tar is built on a blocking thread and streamed through a pipe.
    let (reader, writer) = tokio::io::duplex(256 * 1024);
    let writer = tokio_util::io::SyncIoBridge::new(writer);
    let root = Path::new(&src_dir).join(&src_base);
    let builder = tokio::task::spawn_blocking(move || build_tar(&root, &src_base, renames, writer));
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n = counted.clone();
    let stream = tokio_util::io::ReaderStream::new(reader).inspect_ok(move |b| {
        n.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
    });
    let sent = put(into, stream_body(stream)).await;
    builder
        .await
        .map_err(|err| anyhow!("archiving failed: {err}"))??;
    sent?;
    report(
        a,
        counted.load(std::sync::atomic::Ordering::Relaxed),
        &format!("{c}:{dst}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"eyJhIjoxfQ==").unwrap(), b"{\"a\":1}");
        assert_eq!(base64_decode(b"YWI").unwrap(), b"ab");
        assert!(base64_decode(b"!!").is_none());
    }

    #[test]
    fn args() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
    }

    #[test]
    fn dir_entries() {
        assert_eq!(
            split_path_dir_entry("/etc/hosts"),
            ("/etc".into(), "hosts".into())
        );
        assert_eq!(split_path_dir_entry("/etc/"), ("/".into(), "etc".into()));
        assert_eq!(split_path_dir_entry("/etc/."), ("/etc".into(), ".".into()));
        assert_eq!(split_path_dir_entry("a/b"), ("a".into(), "b".into()));
        assert_eq!(split_path_dir_entry("b"), (".".into(), "b".into()));
    }

    #[test]
    fn rebasing() {
        assert_eq!(rebase("etc/hosts", "etc", "conf"), "conf/hosts");
        assert_eq!(rebase("etc", "etc", "conf"), "conf");
        assert_eq!(rebase("etc/", "etc", "conf"), "conf/");
        assert_eq!(rebase("./a", ".", "d"), "d/a");
        assert_eq!(rebase("etcetera", "etc", "x"), "etcetera");
    }

    #[test]
    fn copy_semantics() {
        // Into an existing directory: extracted as is.
        assert_eq!(
            prepare_copy("/etc", true, None, "/tmp/out", true, true).unwrap(),
            ("/tmp/out".into(), None)
        );
        // A directory to a new path: takes the new name.
        assert_eq!(
            prepare_copy("/etc", true, None, "/tmp/conf", false, false).unwrap(),
            ("/tmp".into(), Some(("etc".into(), "conf".into())))
        );
        // Contents of a directory to a new path.
        assert_eq!(
            prepare_copy("/etc/.", true, None, "/tmp/conf", false, false).unwrap(),
            ("/tmp".into(), Some((".".into(), "conf".into())))
        );
        // A file over an existing file.
        assert_eq!(
            prepare_copy("/etc/hosts", false, None, "/tmp/h", true, false).unwrap(),
            ("/tmp".into(), Some(("hosts".into(), "h".into())))
        );
        assert!(prepare_copy("/etc", true, None, "/tmp/h", true, false).is_err());
        assert!(prepare_copy("/etc/hosts", false, None, "/tmp/nodir/", false, false).is_err());
    }

    #[test]
    fn tar_roundtrip_with_rename() {
        let tmp = std::env::temp_dir().join(format!("berth-cp-test-{}", std::process::id()));
        let src = tmp.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"hello").unwrap();
        let mut buf = Vec::new();
        build_tar(&src, "src", Some(("src".into(), "dst".into())), &mut buf).unwrap();
        let out = tmp.join("out");
        std::fs::create_dir_all(&out).unwrap();
        extract(&buf[..], &out, None, false).unwrap();
        assert_eq!(std::fs::read(out.join("dst/sub/f")).unwrap(), b"hello");
        let out2 = tmp.join("out2");
        std::fs::create_dir_all(&out2).unwrap();
        extract(
            &buf[..],
            &out2,
            Some(("dst".into(), "renamed".into())),
            false,
        )
        .unwrap();
        assert!(out2.join("renamed/sub/f").is_file());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
