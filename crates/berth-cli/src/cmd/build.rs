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
use crate::cli::BuildArgs;
use crate::conn::{full_body, Engine};
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

pub async fn build(e: &Engine, a: BuildArgs) -> Result<()> {
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
    let resp = e
        .raw(
            Method::POST,
            &format!("/build?{query}"),
            full_body(body),
            &[("Content-Type", "application/x-tar".into())],
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
