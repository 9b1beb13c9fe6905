//! `exec`: `POST /containers/{id}/exec` creates the process, `POST
//! /exec/{id}/start` runs it on a hijacked connection (or detached), and
//! `GET /exec/{id}/json` gives its exit code.

use anyhow::{anyhow, Result};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use super::container::escape;
use super::is_terminal;
use crate::attach::{self, parse_detach_keys, StreamEnd};
use crate::cli::ExecArgs;
use crate::conn::{full_body, Engine};
use crate::error::ExitStatus;
use crate::opts;

/// The body of `POST /containers/{id}/exec`, as Docker's CLI builds it.
pub fn exec_config(
    a: &ExecArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> Result<String>,
    console: Option<(u16, u16)>,
) -> Result<Value> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(opts::parse_env_file(&read_file(f)?, f, lookup)?);
    }
    for e in &a.env {
        env.push(opts::expand_env(e, lookup)?);
    }
    let mut c = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    });
    if let Some(k) = &a.detach_keys {
        c["DetachKeys"] = json!(k);
    }
    if a.tty {
        let (h, w) = console.unwrap_or((0, 0));
        c["ConsoleSize"] = json!([h, w]);
    }
    Ok(c)
}

async fn post_json(e: &Engine, path: &str, body: &Value) -> Result<Value> {
    let resp = e
        .raw(
            Method::POST,
            path,
            full_body(serde_json::to_vec(body)?),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    let raw = resp.into_body().collect().await?.to_bytes();
    if raw.trim_ascii().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&raw)?)
}

pub async fn exec(e: &Engine, a: ExecArgs) -> Result<()> {
    let detach_keys = a
        .detach_keys
        .as_deref()
        .map(parse_detach_keys)
        .transpose()?;
    let lookup = |k: &str| std::env::var(k).ok();
    let read_file = |p: &str| {
        std::fs::read_to_string(p)
            .map_err(|err| anyhow!("open {p}: {}", super::create::io_reason(&err)))
    };
    let console = attach::window_size(1);
    let config = exec_config(&a, &lookup, &read_file, console)?;
    if a.interactive && a.tty && !a.detach && !is_terminal(0) {
        return Err(anyhow!("the input device is not a TTY"));
    }
    let created = post_json(
        e,
        &format!("/containers/{}/exec", escape(&a.container)),
        &config,
    )
    .await?;
    let exec_id = created["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("exec ID empty"))?
        .to_string();
    let mut start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.tty {
        start["ConsoleSize"] = config["ConsoleSize"].clone();
    }
    if a.detach {
        post_json(e, &format!("/exec/{exec_id}/start"), &start).await?;
        return Ok(());
    }
    let h = e
        .hijack(
            Method::POST,
            &format!("/exec/{exec_id}/start"),
            Some(&start),
        )
        .await?;
    let stdin = a.interactive;
    let _raw = if a.tty && stdin && is_terminal(0) {
        Some(attach::Terminal::raw(0)?)
    } else {
        None
    };
    let resize = async {
        if a.tty && is_terminal(1) {
            attach::follow_resize(e, format!("/exec/{exec_id}/resize")).await
        } else {
            std::future::pending().await
        }
    };
    let end = tokio::select! {
        r = attach::pump(h, a.tty, stdin, detach_keys) => r?,
        _ = resize => unreachable!("resize never returns"),
    };
    drop(_raw);
    if end == StreamEnd::Detached {
        return Ok(());
    }
    let inspect = e.get_json(&format!("/exec/{exec_id}/json")).await?;
    match inspect["ExitCode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        code => Err(ExitStatus(code as i32).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn exec_body() {
        let cli = crate::cli::Cli::try_parse_from([
            "berth", "exec", "-it", "-u", "1000", "-w", "/tmp", "-e", "A=1", "web", "sh", "-c",
            "ls -l",
        ])
        .unwrap();
        let Some(crate::cli::Command::Exec(a)) = cli.command else {
            panic!()
        };
        let c = exec_config(&a, &|_| None, &|_| Ok(String::new()), Some((40, 100))).unwrap();
        assert_eq!(
            c,
            json!({"User": "1000", "Privileged": false, "Tty": true, "AttachStdin": true,
                   "AttachStderr": true, "AttachStdout": true, "Detach": false, "Env": ["A=1"],
                   "WorkingDir": "/tmp", "Cmd": ["sh", "-c", "ls -l"], "ConsoleSize": [40, 100]})
        );
    }
}
