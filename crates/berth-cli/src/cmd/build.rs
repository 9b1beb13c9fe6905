//! `build`: sends the context as a tar to `POST /build` and prints the
//! stream, as Docker's legacy builder client does. The context is filtered
//! by its `.dockerignore` here too (the Dockerfile and `.dockerignore`
//! always go); a Dockerfile outside the context is added under a private
//! name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_build::{included_files, Matcher};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use super::emit;
use crate::cli::{BuildArgs, BuilderPruneArgs};
use crate::conn::{empty_body, full_body, Engine};
use crate::error::ExitStatus;
use crate::stream::JsonMessages;

/// The context tar and the Dockerfile's name inside it.
fn context_tar(dir: &Path, file: Option<&str>) -> Result<(Vec<u8>, String)> {
    if !dir.is_dir() {
        bail!(
            "unable to prepare context: path {:?} not found",
            dir.display().to_string()
        );
    }
    let matcher = Matcher::for_context(dir).context("reading .dockerignore")?;
    let mut files = included_files(dir, &matcher).context("reading the build context")?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let (df_name, extra): (String, Option<PathBuf>) = match file {
        None => ("Dockerfile".into(), None),
        Some("-") => (".dockerfile.stdin".into(), None),
        Some(f) => {
            let p = std::fs::canonicalize(f)
                .with_context(|| format!("unable to prepare context: {f}"))?;
            let root = std::fs::canonicalize(dir)?;
            match p.strip_prefix(&root) {
                Ok(rel) => (rel.display().to_string(), None),
                Err(_) => (
                    format!(".dockerfile.{:012x}", rand_suffix()),
                    Some(p.clone()),
                ),
            }
        }
    };
    for always in [df_name.as_str(), ".dockerignore"] {
        if dir.join(always).exists() && !files.iter().any(|f| f == always) {
            files.push(always.to_string());
        }
    }
    files.sort();
    for f in &files {
        b.append_path_with_name(dir.join(f), f)
            .with_context(|| format!("adding {f} to the build context"))?;
    }
    if let Some(p) = extra {
        b.append_path_with_name(&p, &df_name)
            .with_context(|| format!("adding {} to the build context", p.display()))?;
    }
    if file == Some("-") {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut text)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, &df_name, &text[..])?;
    }
    Ok((b.into_inner()?, df_name))
}

fn rand_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64) << 32
}

fn key_values(list: &[String], from_env: bool) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
            None if from_env => {
                // `--build-arg NAME` takes the value from the environment;
                // unset means no value, as docker sends it.
                out.insert(
                    kv.clone(),
                    std::env::var(kv).map(Value::String).unwrap_or(Value::Null),
                );
            }
            None => {
                out.insert(kv.clone(), Value::String(String::new()));
            }
        }
    }
    out
}

/// Largest single secret the engine takes (its `X-Berth-Build-Secrets`
/// limits: 64 KiB a secret, 256 KiB of header).
const MAX_SECRET_SIZE: usize = 64 << 10;
const MAX_SECRETS_HEADER: usize = 256 << 10;

/// Reads `--secret id=ID[,src=PATH|,env=VAR]` values: id → bytes.
fn read_secrets(specs: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (mut id, mut src, mut env) = (None, None, None);
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => bail!("invalid secret {spec:?}: unexpected {field:?} (want id=ID[,src=PATH|,env=VAR])"),
            }
        }
        let id = match id {
            Some(id) if !id.is_empty() && !id.contains('/') => id,
            Some(id) => bail!("invalid secret {spec:?}: bad id {id:?}"),
            None => bail!("invalid secret {spec:?}: id= is required"),
        };
        let value = match (src, env) {
            (Some(_), Some(_)) => bail!("invalid secret {spec:?}: give src= or env=, not both"),
            (Some(path), None) => std::fs::read(&path)
                .with_context(|| format!("secret {id:?}: reading {path}"))?,
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| format!("secret {id:?}: environment variable {var} is not set"))?
                .into_bytes(),
            (None, None) => std::env::var(&id)
                .with_context(|| {
                    format!("secret {id:?}: no src= or env= given and no environment variable {id} is set")
                })?
                .into_bytes(),
        };
        if value.len() > MAX_SECRET_SIZE {
            bail!(
                "secret {id:?} is {} bytes; berth takes secrets up to {MAX_SECRET_SIZE} bytes",
                value.len()
            );
        }
        out.insert(id, value);
    }
    Ok(out)
}

/// The `X-Berth-Build-Secrets` header: base64 of `{"id": "base64"}`.
fn secrets_header(secrets: &BTreeMap<String, Vec<u8>>) -> Result<Option<String>> {
    use base64::Engine as _;
    if secrets.is_empty() {
        return Ok(None);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let map: BTreeMap<&str, String> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), b64.encode(v)))
        .collect();
    let header = b64.encode(serde_json::to_vec(&map)?);
    if header.len() > MAX_SECRETS_HEADER {
        bail!(
            "the secrets take {} bytes encoded; berth takes up to {MAX_SECRETS_HEADER}",
            header.len()
        );
    }
    Ok(Some(header))
}

pub async fn build(e: &Engine, a: BuildArgs) -> Result<()> {
    let secrets = secrets_header(&read_secrets(&a.secrets)?)?;
    let (body, dockerfile) = if a.context == "-" {
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut tar)?;
        (tar, a.file.clone().unwrap_or_else(|| "Dockerfile".into()))
    } else {
        context_tar(Path::new(&a.context), a.file.as_deref())?
    };
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in &a.tags {
        q.push(("t", t.clone()));
    }
    q.push(("dockerfile", dockerfile));
    let args = key_values(&a.build_args, true);
    if !args.is_empty() {
        q.push(("buildargs", serde_json::to_string(&args)?));
    }
    let labels = key_values(&a.labels, false);
    if !labels.is_empty() {
        q.push(("labels", serde_json::to_string(&labels)?));
    }
    if !a.cache_from.is_empty() {
        q.push(("cachefrom", serde_json::to_string(&a.cache_from)?));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    for (k, on) in [
        ("nocache", a.no_cache),
        ("pull", a.pull),
        ("q", a.quiet),
        ("forcerm", a.force_rm),
        ("trusthostca", a.trust_host_ca),
    ] {
        if on {
            q.push((k, "1".into()));
        }
    }
    q.push(("rm", if a.rm { "1" } else { "0" }.into()));
    q.push(("networkmode", a.network.clone()));
    let query = serde_urlencoded::to_string(&q)?;
    let mut headers = vec![("Content-Type", "application/x-tar".to_string())];
    if let Some(s) = secrets {
        headers.push(("X-Berth-Build-Secrets", s));
    }
    let resp = e
        .raw(
            Method::POST,
            &format!("/build?{query}"),
            full_body(body),
            &headers,
        )
        .await?;
    let mut body = resp.into_body();
    let mut msgs = JsonMessages::default();
    use super::build_view::{self, Progress};
    let live = !a.quiet
        && match a.progress {
            Progress::Tty => true,
            Progress::Plain => false,
            Progress::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        };
    let mut view = live.then(build_view::View::new);
    let width = build_view::width();
    let mut image_id: Option<String> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the build output")?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        msgs.push(data);
        for m in msgs.drain()? {
            if let Some(detail) = m.get("errorDetail").or(m.get("error")) {
                let message = detail
                    .get("message")
                    .and_then(Value::as_str)
                    .or(m.get("error").and_then(Value::as_str))
                    .unwrap_or("build failed");
                if let Some(v) = view.as_mut() {
                    v.draw(&mut std::io::stdout(), width, true)?;
                }
                eprintln!("{message}");
                let code = detail.get("code").and_then(Value::as_i64).unwrap_or(1);
                return Err(ExitStatus(if code == 0 { 1 } else { code as i32 }).into());
            }
            if let Some(id) = m.pointer("/aux/ID").and_then(Value::as_str) {
                image_id = Some(id.to_string());
            }
            if let Some(s) = m.get("stream").and_then(Value::as_str) {
                match view.as_mut() {
                    Some(v) => {
                        v.push(s);
                        v.draw(&mut std::io::stdout(), width, false)?;
                    }
                    None => emit(s)?,
                }
            }
        }
    }
    if let Some(v) = view.as_mut() {
        v.draw(&mut std::io::stdout(), width, true)?;
    }
    if let (Some(path), Some(id)) = (&a.iidfile, &image_id) {
        std::fs::write(path, id).with_context(|| format!("writing {path}"))?;
    }
    if image_id.is_none() {
        bail!("the engine ended the build without an image ID");
    }
    Ok(())
}

/// `builder prune`: `POST /build/prune`, as docker's output.
pub async fn prune(e: &Engine, a: BuilderPruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force {
        super::emit(&format!(
            "{warning} Are you sure you want to continue? [y/N] "
        ))?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(());
        }
    }
    let filters = super::parse_filters(&a.filter)?;
    let mut q: Vec<(&str, String)> = Vec::new();
    if a.all {
        q.push(("all", "1".into()));
    }
    if !filters.is_empty() {
        q.push(("filters", serde_json::to_string(&filters)?));
    }
    let query = serde_urlencoded::to_string(&q)?;
    let resp = e
        .raw(
            Method::POST,
            &format!("/build/prune?{query}"),
            empty_body(),
            &[],
        )
        .await?;
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the prune report")?
        .to_bytes();
    let report: Value = serde_json::from_slice(&body).context("reading the prune report")?;
    let mut out = String::new();
    let deleted: Vec<&str> = report["CachesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        out.push_str("Deleted build cache objects:\n");
        for d in deleted {
            out.push_str(d);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::units::human_size(report["SpaceReclaimed"].as_u64().unwrap_or(0) as f64)
    ));
    emit(&out)
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secret_specs() {
        let dir = std::env::temp_dir().join(format!("berth-secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("tok");
        std::fs::write(&f, "v1").unwrap();
        let s = read_secrets(&[format!("id=tok,src={}", f.display())]).unwrap();
        assert_eq!(s["tok"], b"v1");
        assert!(read_secrets(&["src=/x".into()])
            .unwrap_err()
            .to_string()
            .contains("id="));
        assert!(read_secrets(&["id=a,bogus=1".into()]).is_err());
        assert!(read_secrets(&["id=nope,src=/does/not/exist".into()])
            .unwrap_err()
            .to_string()
            .contains("nope"));
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_SIZE + 1]).unwrap();
        assert!(read_secrets(&[format!("id=big,src={}", big.display())]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
