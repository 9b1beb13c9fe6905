//! Image commands: images/ls, inspect, tag, rmi, import, save, load,
//! history, prune.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use berth_core::Reference;
use bollard::models::{ImageHistoryResponseItem, ImageSummary};
use bollard::query_parameters::{
    ImportImageOptions, ListImagesOptions, PruneImagesOptions, RemoveImageOptions, TagImageOptions,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use super::{ellipsis, emit, is_terminal, parse_filters, short_id};
use crate::cli::{
    HistoryArgs, ImageInspectArgs, ImagePruneArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs,
    RmiArgs, SaveArgs, TagArgs,
};
use crate::conn::{empty_body, stream_body, Engine};
use crate::error::{is_status, ExitStatus};
use crate::format::{ListFormat, Template};
use crate::units::{
    go_time_string, human_size, human_size_with_precision, now_unix, rfc3339, since,
};

// ---- images / image ls ----

const IMAGES_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub async fn list(e: &Engine, a: ImagesArgs) -> Result<()> {
    let mut filters = parse_filters(&a.filter)?;
    if let Some(r) = &a.repository {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let opts = ListImagesOptions {
        all: a.all,
        filters: (!filters.is_empty()).then_some(filters),
        ..Default::default()
    };
    let images = e
        .docker
        .list_images(Some(opts))
        .await
        .map_err(|err| e.bollard_err(err))?;

    let user_format = match a.format.as_deref() {
        Some("table") | Some("") | None if a.quiet => Some("{{.ID}}"),
        f => f,
    };
    let default = if a.digests {
        IMAGES_TABLE_DIGESTS
    } else {
        IMAGES_TABLE
    };
    let format = ListFormat::new(user_format, default)?;
    let now = now_unix();
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| {
            image_rows(img, a.digests)
                .into_iter()
                .map(move |r| (img, r))
        })
        .map(|(img, r)| image_context(img, &r, !a.no_trunc, now))
        .collect();
    emit(&format.render(&image_header(), &rows)?)
}

/// One row of `images`: an image appears once per repository:tag (and per
/// digest with `--digests`), as in Docker's `imageFormatTaggedAndDigest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub repo: String,
    pub tag: String,
    pub digest: String,
}

fn is_dangling(img: &ImageSummary) -> bool {
    (img.repo_tags.is_empty() && img.repo_digests.is_empty())
        || (img.repo_tags == ["<none>:<none>"] && img.repo_digests == ["<none>@<none>"])
}

/// Splits `name:tag` / `name@digest` into a familiar name and the rest.
fn split_reference(s: &str) -> Option<(String, Option<String>, Option<String>)> {
    match Reference::parse_name_only_ok(s) {
        Ok(r) => Some((
            r.familiar_name(),
            r.tag().map(str::to_string),
            r.digest().map(|d| d.to_string()),
        )),
        Err(_) => {
            if let Some((name, digest)) = s.split_once('@') {
                return Some((name.to_string(), None, Some(digest.to_string())));
            }
            match s.rfind(':') {
                Some(i) if !s[i + 1..].contains('/') => {
                    Some((s[..i].to_string(), Some(s[i + 1..].to_string()), None))
                }
                _ => None,
            }
        }
    }
}

pub fn image_rows(img: &ImageSummary, show_digests: bool) -> Vec<ImageRow> {
    let none = || "<none>".to_string();
    if is_dangling(img) {
        return vec![ImageRow {
            repo: none(),
            tag: none(),
            digest: none(),
        }];
    }
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in &img.repo_digests {
        if let Some((name, _, Some(dg))) = split_reference(d) {
            digests.entry(name).or_default().push(dg);
        }
    }
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &img.repo_tags {
        if let Some((name, Some(tag), _)) = split_reference(t) {
            tags.entry(name).or_default().push(tag);
        }
    }
    let mut rows = Vec::new();
    for (repo, repo_tags) in &tags {
        let repo_digests = digests.remove(repo).unwrap_or_default();
        for tag in repo_tags {
            if !show_digests || repo_digests.is_empty() {
                rows.push(ImageRow {
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: none(),
                });
            } else {
                for d in &repo_digests {
                    rows.push(ImageRow {
                        repo: repo.clone(),
                        tag: tag.clone(),
                        digest: d.clone(),
                    });
                }
            }
        }
    }
    for (repo, repo_digests) in digests {
        if show_digests {
            for d in repo_digests {
                rows.push(ImageRow {
                    repo: repo.clone(),
                    tag: none(),
                    digest: d,
                });
            }
        } else {
            rows.push(ImageRow {
                repo,
                tag: none(),
                digest: none(),
            });
        }
    }
    if rows.is_empty() {
        rows.push(ImageRow {
            repo: none(),
            tag: none(),
            digest: none(),
        });
    }
    rows
}

fn image_id(id: &str, trunc: bool) -> String {
    if trunc {
        short_id(id)
    } else {
        id.to_string()
    }
}

fn count_or_na(n: i64) -> String {
    if n < 0 {
        "N/A".into()
    } else {
        n.to_string()
    }
}

pub fn image_context(img: &ImageSummary, row: &ImageRow, trunc: bool, now: i64) -> Value {
    let size = img.size;
    let shared = img.shared_size;
    json!({
        "Containers": count_or_na(img.containers),
        "CreatedAt": go_time_string(img.created),
        "CreatedSince": since(img.created, now),
        "Digest": row.digest,
        "ID": image_id(&img.id, trunc),
        "Repository": row.repo,
        "SharedSize": if shared < 0 { "N/A".to_string() } else { human_size(shared as f64) },
        "Size": human_size_with_precision(size as f64, 3),
        "Tag": row.tag,
        "UniqueSize": if shared < 0 { "N/A".to_string() } else { human_size((size - shared) as f64) },
        "VirtualSize": human_size_with_precision(size as f64, 3),
    })
}

pub fn image_header() -> Value {
    json!({
        "Containers": "CONTAINERS",
        "CreatedAt": "CREATED AT",
        "CreatedSince": "CREATED",
        "Digest": "DIGEST",
        "ID": "IMAGE ID",
        "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE",
        "Size": "SIZE",
        "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}

// ---- inspect ----

/// `image inspect`.
pub async fn inspect(e: &Engine, a: ImageInspectArgs) -> Result<()> {
    inspect_objects(
        e,
        &a.names,
        a.format.as_deref(),
        false,
        &[ObjectKind::Image],
        false,
    )
    .await
}

/// The kinds of object `inspect` looks for, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Container,
    Image,
}

/// `inspect`: containers first, then images (as Docker does), honoring
/// `--type`. Extension point: networks and volumes.
pub async fn inspect_any(e: &Engine, a: InspectArgs) -> Result<()> {
    let kinds: &[ObjectKind] = match a.object_type.as_deref() {
        None | Some("") => &[ObjectKind::Container, ObjectKind::Image],
        Some("container") => &[ObjectKind::Container],
        Some("image") => &[ObjectKind::Image],
        Some(t) => bail!("\"{t}\" is not a valid value for --type"),
    };
    inspect_objects(e, &a.names, a.format.as_deref(), true, kinds, a.size).await
}

/// Inspects each name as the first of `kinds` that knows it. With
/// `generic` (plain `inspect`), a name nothing knows is `No such object`.
pub async fn inspect_objects(
    e: &Engine,
    names: &[String],
    format: Option<&str>,
    generic: bool,
    kinds: &[ObjectKind],
    size: bool,
) -> Result<()> {
    let template = match format {
        Some(f) if !f.is_empty() && f != "json" => Some(Template::parse(f)?),
        _ => None,
    };
    let mut found: Vec<Bytes> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in names {
        let mut last: Option<anyhow::Error> = None;
        let mut hit = None;
        for kind in kinds {
            let path = match kind {
                ObjectKind::Container => format!(
                    "/containers/{}/json{}",
                    super::container::escape(name),
                    if size { "?size=1" } else { "" }
                ),
                ObjectKind::Image => format!("/images/{}/json", path_escape(name)),
            };
            match e.get_bytes(&path).await {
                Ok(raw) => {
                    hit = Some(raw);
                    break;
                }
                Err(err) if is_status(&err, 404) => last = Some(err),
                Err(err) => {
                    last = Some(err);
                    break;
                }
            }
        }
        match (hit, last) {
            (Some(raw), _) => found.push(raw),
            // `inspect` hides which kinds it tried; `image inspect` shows the engine's message.
            (None, Some(err)) if generic && is_status(&err, 404) => {
                errors.push(format!("Error: No such object: {name}"))
            }
            (None, Some(err)) => errors.push(format!("{err:#}")),
            (None, None) => {}
        }
    }
    let mut out = String::new();
    match &template {
        Some(t) => {
            for raw in &found {
                let v: Value = serde_json::from_slice(raw).context("decoding inspect output")?;
                out.push_str(&t.render(&v, false)?);
                out.push('\n');
            }
        }
        None => {
            let mut joined = Vec::from(&b"["[..]);
            for (i, raw) in found.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(raw.trim_ascii());
            }
            joined.push(b']');
            out.push_str(&json_indent(&String::from_utf8_lossy(&joined), "    "));
            out.push('\n');
        }
    }
    emit(&out)?;
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

/// Go's `json.Indent(dst, src, "", indent)`: keeps the server's key order.
pub fn json_indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut need_indent = false; // an opening bracket was written; the next token starts a new line
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    for c in src.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    // empty object or array stays compact
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes what cannot appear in a path segment; `/` stays (image names
/// contain it and the API routes accept it).
fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b':'
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- tag ----

fn parse_target(target: &str) -> Result<(String, String)> {
    let r = Reference::parse_normalized(target).map_err(|err| {
        anyhow!("Error parsing reference: {target:?} is not a valid repository/tag: {err}")
    })?;
    if r.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    Ok((r.familiar_name(), r.tag().unwrap_or("latest").to_string()))
}

pub async fn tag(e: &Engine, a: TagArgs) -> Result<()> {
    let (repo, tag) = parse_target(&a.target)?;
    let opts = TagImageOptions {
        repo: Some(repo),
        tag: Some(tag),
    };
    e.docker
        .tag_image(&a.source, Some(opts))
        .await
        .map_err(|err| e.bollard_err(err))
}

// ---- rmi ----

pub async fn remove(e: &Engine, a: RmiArgs) -> Result<()> {
    let mut errors = Vec::new();
    for name in &a.images {
        let opts = RemoveImageOptions {
            force: a.force,
            noprune: a.no_prune,
            platforms: None,
        };
        match e.docker.remove_image(name, Some(opts), None).await {
            Ok(items) => {
                let mut out = String::new();
                for item in items {
                    match (item.deleted.filter(|d| !d.is_empty()), item.untagged) {
                        (Some(d), _) => out.push_str(&format!("Deleted: {d}\n")),
                        (None, Some(u)) => out.push_str(&format!("Untagged: {u}\n")),
                        (None, None) => {}
                    }
                }
                emit(&out)?;
            }
            Err(err) => errors.push(format!("{:#}", e.bollard_err(err))),
        }
    }
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

// ---- import ----

fn reader_body<R: AsyncRead + Send + Sync + 'static>(r: R) -> crate::conn::RawBody {
    stream_body(ReaderStream::with_capacity(r, 256 * 1024))
}

/// The query of `POST /images/create` for an import.
pub fn import_query(a: &ImportArgs, from_src: &str) -> Result<String> {
    let mut q: Vec<(&str, String)> = vec![("fromSrc", from_src.to_string())];
    if let Some(r) = &a.reference {
        let (repo, tag) = match Reference::parse_name_only_ok(r) {
            Ok(parsed) if parsed.digest().is_none() => {
                (parsed.familiar_name(), parsed.tag().map(str::to_string))
            }
            Ok(_) => bail!("refusing to create a tag with a digest reference"),
            Err(err) => {
                bail!("Error parsing reference: {r:?} is not a valid repository/tag: {err}")
            }
        };
        q.push(("repo", repo));
        if let Some(t) = tag {
            q.push(("tag", t));
        }
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.to_lowercase()));
    }
    for c in &a.changes {
        q.push(("changes", c.clone()));
    }
    Ok(serde_urlencoded::to_string(&q)?)
}

pub async fn import(e: &Engine, a: ImportArgs) -> Result<()> {
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    let (from_src, body, len) = if a.source == "-" {
        ("-", reader_body(tokio::io::stdin()), None)
    } else if is_url {
        (a.source.as_str(), empty_body(), None)
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .with_context(|| format!("open {}", a.source))?;
        let len = f.metadata().await.ok().map(|m| m.len());
        ("-", reader_body(f), len)
    };
    let query = import_query(&a, from_src)?;
    let mut headers = vec![("Content-Type", "application/x-tar".to_string())];
    if let Some(n) = len {
        headers.push(("Content-Length", n.to_string()));
    }
    let resp = e
        .raw(
            Method::POST,
            &format!("/images/create?{query}"),
            body,
            &headers,
        )
        .await?;
    crate::stream::display(resp.into_body()).await
}

// ---- save ----

pub async fn save(e: &Engine, a: SaveArgs) -> Result<()> {
    if a.output.is_none() && is_terminal(1) {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    if let Some(out) = &a.output {
        let dir = Path::new(out)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir {
            if !d.is_dir() {
                bail!(
                    "failed to save image: invalid output path: directory {:?} does not exist",
                    d.display().to_string()
                );
            }
        }
    }
    let mut q: Vec<(&str, String)> = a.images.iter().map(|n| ("names", n.clone())).collect();
    if let Some(f) = &a.format {
        q.push(("format", f.clone()));
    }
    let resp = e
        .raw(
            Method::GET,
            &format!("/images/get?{}", serde_urlencoded::to_string(&q)?),
            empty_body(),
            &[],
        )
        .await?;
    let mut body = resp.into_body();
    match &a.output {
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame.context("reading the archive")?.data_ref() {
                    out.write_all(data)?;
                }
            }
            out.flush()?;
        }
        Some(path) => {
            // Written beside the target and renamed, so a failure leaves no partial file.
            let tmp = format!("{path}.berth-save-{}", std::process::id());
            let result = async {
                let mut f = std::fs::File::create(&tmp)
                    .with_context(|| format!("failed to save image: create {tmp}"))?;
                while let Some(frame) = body.frame().await {
                    if let Some(data) = frame.context("reading the archive")?.data_ref() {
                        f.write_all(data).context("failed to save image")?;
                    }
                }
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("failed to save image: rename to {path}"))?;
                anyhow::Ok(())
            }
            .await;
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
    }
    Ok(())
}

// ---- load ----

pub async fn load(e: &Engine, a: LoadArgs) -> Result<()> {
    let reader: Box<dyn AsyncRead + Send + Unpin> = match &a.input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("open {path}"))?,
        ),
        None => {
            if is_terminal(0) {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(tokio::io::stdin())
        }
    };
    let body = ReaderStream::with_capacity(reader, 256 * 1024);
    let opts = ImportImageOptions {
        quiet: a.quiet,
        platform: None,
    };
    let mut stream = e
        .docker
        .import_image(opts, bollard::body_try_stream(body), None)
        .boxed();
    while let Some(info) = stream.try_next().await.map_err(|err| e.bollard_err(err))? {
        // bollard turns error messages into errors; what is left is shown.
        let v = json!({
            "id": info.id,
            "stream": info.stream,
            "status": info.status,
            "progressDetail": info.progress_detail.map(|d| json!({"current": d.current, "total": d.total})),
        });
        if let Some(line) = crate::stream::render_message(&v)? {
            emit(&line)?;
        }
    }
    Ok(())
}

// ---- history ----

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const CREATED_BY_WIDTH: usize = 45;

pub fn history_context(h: &ImageHistoryResponseItem, trunc: bool, human: bool, now: i64) -> Value {
    let created_by = h.created_by.replace('\t', " ");
    json!({
        "ID": image_id(&h.id, trunc),
        "CreatedSince": if human { since(h.created, now) } else { rfc3339(h.created) },
        "CreatedAt": rfc3339(h.created),
        "CreatedBy": if trunc { ellipsis(&created_by, CREATED_BY_WIDTH) } else { created_by },
        "Size": if human { human_size_with_precision(h.size as f64, 3) } else { h.size.to_string() },
        "Comment": h.comment,
    })
}

pub fn history_header() -> Value {
    json!({
        "ID": "IMAGE",
        "CreatedSince": "CREATED",
        "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY",
        "Size": "SIZE",
        "Comment": "COMMENT",
    })
}

pub async fn history(e: &Engine, a: HistoryArgs) -> Result<()> {
    let items = e
        .docker
        .image_history(&a.image)
        .await
        .map_err(|err| e.bollard_err(err))?;
    let user_format = match a.format.as_deref() {
        Some("table") | Some("") | None if a.quiet => Some("{{.ID}}"),
        f => f,
    };
    let format = ListFormat::new(user_format, HISTORY_TABLE)?;
    let now = now_unix();
    let rows: Vec<Value> = items
        .iter()
        .map(|h| history_context(h, !a.no_trunc, a.human, now))
        .collect();
    emit(&format.render(&history_header(), &rows)?)
}

// ---- image prune ----

fn confirm(message: &str) -> Result<bool> {
    emit(&format!("{message} [y/N] "))?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

pub async fn prune(e: &Engine, a: ImagePruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(&format!("{warning}\nAre you sure you want to continue?"))? {
        return emit("Total reclaimed space: 0B\n");
    }
    let mut filters = parse_filters(&a.filter)?;
    filters.insert("dangling".into(), vec![(!a.all).to_string()]);
    let report = e
        .docker
        .prune_images(Some(PruneImagesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|err| e.bollard_err(err))?;
    let mut out = String::new();
    let deleted = report.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for d in deleted {
            match (d.untagged.filter(|u| !u.is_empty()), d.deleted) {
                (Some(u), _) => out.push_str(&format!("untagged: {u}\n")),
                (None, Some(del)) => out.push_str(&format!("deleted: {del}\n")),
                (None, None) => {}
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.space_reclaimed.unwrap_or(0) as f64)
    ));
    emit(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(tags: &[&str], digests: &[&str]) -> ImageSummary {
        ImageSummary {
            id: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            created: 1_000,
            size: 4_260_000,
            shared_size: -1,
            containers: -1,
            ..Default::default()
        }
    }

    #[test]
    fn rows_for_tags_digests_and_dangling() {
        let none = ImageRow {
            repo: "<none>".into(),
            tag: "<none>".into(),
            digest: "<none>".into(),
        };
        assert_eq!(image_rows(&summary(&[], &[]), false), vec![none.clone()]);
        assert_eq!(
            image_rows(&summary(&["<none>:<none>"], &["<none>@<none>"]), true),
            vec![none]
        );

        let d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let img = summary(
            &["docker.io/library/busybox:latest", "busybox:1.36"],
            &[&format!("busybox@{d}")],
        );
        let rows = image_rows(&img, false);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].repo.as_str(),
                rows[0].tag.as_str(),
                rows[0].digest.as_str()
            ),
            ("busybox", "latest", "<none>")
        );
        assert_eq!(rows[1].tag, "1.36");
        let rows = image_rows(&img, true);
        assert!(rows.iter().all(|r| r.digest == d));

        let only_digest = summary(&[], &[&format!("example.com/app@{d}")]);
        let rows = image_rows(&only_digest, false);
        assert_eq!(
            (rows[0].repo.as_str(), rows[0].tag.as_str()),
            ("example.com/app", "<none>")
        );
    }

    #[test]
    fn images_table_renders_like_docker() {
        let img = summary(&["busybox:latest"], &[]);
        let row = &image_rows(&img, false)[0];
        let ctx = image_context(&img, row, true, 1_000 + 2 * 3600);
        let f = ListFormat::new(None, IMAGES_TABLE).unwrap();
        assert_eq!(
            f.render(&image_header(), std::slice::from_ref(&ctx))
                .unwrap(),
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             busybox      latest    0123456789ab   2 hours ago   4.26MB\n"
        );
        let f = ListFormat::new(
            Some("{{.Repository}}:{{.Tag}} {{.Containers}}"),
            IMAGES_TABLE,
        )
        .unwrap();
        assert_eq!(
            f.render(&image_header(), std::slice::from_ref(&ctx))
                .unwrap(),
            "busybox:latest N/A\n"
        );
        let f = ListFormat::new(Some("{{.Nope}}"), IMAGES_TABLE).unwrap();
        assert!(f
            .render(&image_header(), &[ctx])
            .unwrap_err()
            .to_string()
            .contains("Nope"));
    }

    #[test]
    fn history_truncates_created_by() {
        let long =
            "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"echo hello world from a long command\"]";
        let h = ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: 0,
            created_by: long.into(),
            tags: vec![],
            size: 0,
            comment: String::new(),
        };
        let v = history_context(&h, true, true, 60);
        let by = v["CreatedBy"].as_str().unwrap();
        assert_eq!(by.chars().count(), 45);
        assert!(by.ends_with('…'));
        assert!(long.starts_with(by.trim_end_matches('…')));
        assert_eq!(v["ID"], "<missing>");
        assert_eq!(v["CreatedSince"], "About a minute ago");
        assert_eq!(v["Size"], "0B");
        let v = history_context(&h, false, false, 60);
        assert_eq!(v["CreatedBy"], long);
        assert_eq!(v["Size"], "0");
    }

    #[test]
    fn json_indent_matches_go() {
        let src = r#"[{"Id":"sha256:x","RepoTags":["a:1"],"Config":{"Env":[],"Labels":{}},"Size":12,"S":"a\"[,]b"}]"#;
        let want = "[\n    {\n        \"Id\": \"sha256:x\",\n        \"RepoTags\": [\n            \"a:1\"\n        ],\n        \
                    \"Config\": {\n            \"Env\": [],\n            \"Labels\": {}\n        },\n        \"Size\": 12,\n        \
                    \"S\": \"a\\\"[,]b\"\n    }\n]";
        assert_eq!(json_indent(src, "    "), want);
        assert_eq!(json_indent("[]", "    "), "[]");
    }

    #[test]
    fn import_query_matches_docker() {
        let a = ImportArgs {
            source: "-".into(),
            reference: Some("myimg:v1".into()),
            changes: vec!["CMD [\"sh\"]".into(), "ENV A=b".into()],
            message: Some("hi".into()),
            platform: None,
        };
        assert_eq!(
            import_query(&a, "-").unwrap(),
            "fromSrc=-&repo=myimg&tag=v1&message=hi&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3Db"
        );
        let a = ImportArgs {
            reference: Some("Bad".into()),
            ..a
        };
        assert!(import_query(&a, "-").is_err());
    }

    #[test]
    fn tag_targets() {
        assert_eq!(
            parse_target("busybox").unwrap(),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            parse_target("localhost:5000/a/b:v2").unwrap(),
            ("localhost:5000/a/b".into(), "v2".into())
        );
        assert!(parse_target("UPPER").is_err());
    }
}
