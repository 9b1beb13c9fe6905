//! `pull`, `push`, `login`, `logout`: talk to the engine, which talks to
//! the registry; credentials come from docker's config.json and travel as
//! `X-Registry-Auth`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use anyhow::{anyhow, bail, Result};
use berth_core::Reference;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::conn::{empty_body, full_body, Engine};
use crate::credentials;

/// Renders a JSON progress stream: on a terminal each layer keeps one line
/// that is rewritten in place (docker's rendering); otherwise one line per
/// status change, without progress bars.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    /// id → line number (0 = first line printed).
    lines: HashMap<String, usize>,
    printed: usize,
    last: HashMap<String, String>,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, tty: bool) -> Self {
        Renderer {
            out,
            tty,
            lines: HashMap::new(),
            printed: 0,
            last: HashMap::new(),
        }
    }

    pub fn message(&mut self, m: &Value) -> Result<()> {
        if let Err(e) = crate::stream::render_message(m) {
            return Err(e.into());
        }
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = s("status");
        if status.is_empty() || m.get("aux").is_some() {
            return Ok(());
        }
        let id = s("id");
        let progress = s("progress");
        if id.is_empty() {
            writeln!(self.out, "{status}")?;
            self.printed += 1;
            return self.out.flush().map_err(Into::into);
        }
        if self.tty {
            let text = if progress.is_empty() {
                format!("{id}: {status}")
            } else {
                format!("{id}: {status} {progress}")
            };
            match self.lines.get(&id) {
                Some(&line) => {
                    let up = self.printed - line;
                    write!(self.out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")?;
                }
                None => {
                    self.lines.insert(id.clone(), self.printed);
                    writeln!(self.out, "{text}")?;
                    self.printed += 1;
                }
            }
        } else {
            // Plain: one line per status change, no bars.
            if self.last.get(&id) == Some(&status) {
                return Ok(());
            }
            self.last.insert(id.clone(), status.clone());
            writeln!(self.out, "{id}: {status}")?;
        }
        self.out.flush().map_err(Into::into)
    }
}

/// Sends a request whose answer is a progress stream and renders it.
pub async fn stream_progress<W: Write>(
    e: &Engine,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    render: &mut Renderer<W>,
    quiet: bool,
) -> Result<()> {
    let resp = e.raw(method, path, empty_body(), headers).await?;
    let mut body = resp.into_body();
    let mut msgs = crate::stream::JsonMessages::default();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            msgs.push(data);
            for m in msgs.drain()? {
                if quiet {
                    crate::stream::render_message(&m)?;
                } else {
                    render.message(&m)?;
                }
            }
        }
    }
    Ok(())
}

/// The `X-Registry-Auth` header for an image name's registry, if logged in.
pub fn auth_headers(image: &str) -> Vec<(&'static str, String)> {
    Reference::parse_normalized(image)
        .ok()
        .and_then(|r| credentials::registry_auth_header(r.domain()))
        .map(|h| vec![("X-Registry-Auth", h)])
        .unwrap_or_default()
}

pub async fn pull(e: &Engine, a: PullArgs) -> Result<()> {
    // Not normalized to `:latest`: whether a tag was given matters.
    let r = Reference::parse_name_only_ok(&a.name)
        .map_err(|err| anyhow!("invalid reference format: {err}"))?;
    if a.all_tags && (r.tag().is_some() || r.digest().is_some()) {
        bail!("tag can't be used with --all-tags/-a");
    }
    let mut q: Vec<(&str, String)> = vec![("fromImage", r.familiar_name())];
    // All tags: the bare name and no `tag`, as docker's client sends it.
    match (r.tag(), r.digest()) {
        _ if a.all_tags => {}
        (_, Some(d)) => q.push(("tag", d.to_string())),
        (Some(t), None) => q.push(("tag", t.to_string())),
        (None, None) => q.push(("tag", "latest".into())),
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    if !a.all_tags && r.tag().is_none() && r.digest().is_none() && !a.quiet {
        println!("Using default tag: latest");
    }
    let path = format!("/images/create?{}", serde_urlencoded::to_string(&q)?);
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut render = Renderer::new(stdout.lock(), tty);
    stream_progress(
        e,
        Method::POST,
        &path,
        &auth_headers(&a.name),
        &mut render,
        a.quiet,
    )
    .await?;
    let shown = if a.all_tags || r.tag().is_some() || r.digest().is_some() {
        r.to_string()
    } else {
        r.with_tag("latest")?.to_string()
    };
    println!("{shown}");
    Ok(())
}

pub async fn push(e: &Engine, a: PushArgs) -> Result<()> {
    // Not normalized to `:latest`: whether a tag was given matters.
    let r = Reference::parse_name_only_ok(&a.name)
        .map_err(|err| anyhow!("invalid reference format: {err}"))?;
    if r.digest().is_some() {
        bail!("cannot push a digest reference");
    }
    let tag = match r.tag() {
        Some(t) => t.to_string(),
        None => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let mut q = vec![("tag", tag.as_str())];
    if let Some(c) = &a.compression {
        q.push(("compression", c.as_str()));
    }
    let path = format!(
        "/images/{}/push?{}",
        r.familiar_name(),
        serde_urlencoded::to_string(&q)?
    );
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut render = Renderer::new(stdout.lock(), tty);
    stream_progress(
        e,
        Method::POST,
        &path,
        &auth_headers(&a.name),
        &mut render,
        a.quiet,
    )
    .await?;
    if a.quiet {
        println!("{}", r.with_tag(&tag)?.familiar());
    }
    Ok(())
}

pub async fn login(e: &Engine, a: LoginArgs) -> Result<()> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| credentials::DOCKER_HUB_KEY.to_string());
    let key = credentials::key_for(&server);
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let mut password = a.password.clone();
    if a.password_stdin {
        if a.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let (username, password) = match (a.username.clone(), password) {
        (Some(u), Some(p)) => (u, p),
        (u, p) => match credentials::lookup(&key) {
            Some((su, sp)) if u.as_deref().is_none_or(|u| u == su) && p.is_none() => (su, sp),
            _ => {
                let u = match u {
                    Some(u) => u,
                    None => prompt("Username: ")?,
                };
                let p = match p {
                    Some(p) => p,
                    None => prompt("Password: ")?,
                };
                (u, p)
            }
        },
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let body = json!({"username": username, "password": password, "serveraddress": key});
    let resp = e
        .raw(
            Method::POST,
            "/auth",
            full_body(serde_json::to_vec(&body)?),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    let _ = resp.into_body().collect().await?;
    credentials::store(&key, &username, &password)?;
    println!("Login Succeeded");
    Ok(())
}

fn prompt(what: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("Error: Cannot perform an interactive login from a non TTY device");
    }
    eprint!("{what}");
    let mut s = String::new();
    std::io::stdin().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

pub fn logout(a: LogoutArgs) -> Result<()> {
    let server = a
        .server
        .unwrap_or_else(|| credentials::DOCKER_HUB_KEY.to_string());
    let key = credentials::key_for(&server);
    if credentials::erase(&key)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}
