//! `run`, `start`, `attach` and `wait`: the commands that follow a
//! container's process. `run` is create → attach (hijacked) → wait
//! (registered before start, so the exit is never missed) → start → copy
//! the streams → exit with the container's status.

use std::time::Duration;

use anyhow::{anyhow, Result};
use berth_wire::container_types::{ContainerInspect, ContainerWaitResponse};
use http_body_util::BodyExt;
use hyper::Method;

use super::create::{create_body, create_container, fail, Env};
use super::{emit, is_terminal};
use crate::attach::{self, parse_detach_keys, StreamEnd};
use crate::cli::{AttachArgs, ContainersArg, RunArgs, StartArgs};
use crate::conn::{empty_body, Engine};
use crate::error::{ApiError, ExitStatus};

/// Docker's `toStatusError`: the exit status for a failed start.
pub fn start_error_status(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

/// A wait registered with the engine; resolves to the exit status.
pub struct Waiter {
    handle: tokio::task::JoinHandle<Result<i32>>,
}

impl Waiter {
    /// `POST /containers/{id}/wait?condition=`; returns once the engine has
    /// answered with headers (or after a short grace period), so a start
    /// sent afterwards cannot race the registration.
    pub async fn register(e: &Engine, id: &str, condition: &str) -> Waiter {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let e = e.clone();
        let path = format!("/containers/{id}/wait?condition={condition}");
        let handle = tokio::spawn(async move {
            let resp = e.raw(Method::POST, &path, empty_body(), &[]).await;
            let _ = tx.send(());
            let body = resp?.into_body().collect().await?.to_bytes();
            let r: ContainerWaitResponse = serde_json::from_slice(&body)?;
            if let Some(m) = r.error.map(|e| e.message).filter(|m| !m.is_empty()) {
                eprintln!("Error waiting for container: {m}");
                return Ok(125);
            }
            Ok(r.status_code as i32)
        });
        let _ = tokio::time::timeout(Duration::from_secs(2), rx).await;
        Waiter { handle }
    }

    pub async fn status(self) -> Result<i32> {
        self.handle
            .await
            .map_err(|e| anyhow!("wait task failed: {e}"))?
    }
}

fn attach_query(stdin: bool, stdout: bool, stderr: bool, detach_keys: Option<&str>) -> String {
    let mut q = vec![("stream", "1".to_string())];
    if stdin {
        q.push(("stdin", "1".into()));
    }
    if stdout {
        q.push(("stdout", "1".into()));
    }
    if stderr {
        q.push(("stderr", "1".into()));
    }
    if let Some(k) = detach_keys {
        q.push(("detachKeys", k.to_string()));
    }
    serde_urlencoded::to_string(&q).unwrap_or_default()
}

/// Copies the streams while resizing the TTY and proxying signals.
async fn follow(
    e: &Engine,
    id: &str,
    h: crate::conn::Hijacked,
    tty: bool,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
    sig_proxy: bool,
) -> Result<StreamEnd> {
    let _raw = if tty && stdin && is_terminal(0) {
        Some(attach::Terminal::raw(0)?)
    } else {
        None
    };
    let resize = async {
        if tty && is_terminal(1) {
            attach::follow_resize(e, format!("/containers/{id}/resize")).await
        } else {
            std::future::pending().await
        }
    };
    let signals = async {
        if sig_proxy && !tty {
            attach::proxy_signals(e, id).await
        } else {
            std::future::pending().await
        }
    };
    tokio::select! {
        r = attach::pump(h, tty, stdin, detach_keys) => r,
        _ = resize => unreachable!("resize never returns"),
        _ = signals => unreachable!("signal proxy never returns"),
    }
}

pub async fn run(e: &Engine, a: RunArgs) -> Result<()> {
    let o = &a.opts;
    let detach_keys = a
        .detach_keys
        .as_deref()
        .map(parse_detach_keys)
        .transpose()
        .map_err(|err| fail("run", err, 125))?;
    if !a.detach && o.interactive && o.tty && !is_terminal(0) {
        return Err(anyhow!("the input device is not a TTY"));
    }
    let body =
        Env::real(|env| create_body(o, a.detach, env)).map_err(|err| fail("run", err, 125))?;
    let id = create_container(e, o, &body)
        .await
        .map_err(|err| fail("run", err, 125))?;
    let (att_in, att_out, att_err) = (
        body.config.attach_stdin,
        body.config.attach_stdout,
        body.config.attach_stderr,
    );
    let attached = att_in || att_out || att_err;

    let hijacked = if attached {
        let q = attach_query(att_in, att_out, att_err, a.detach_keys.as_deref());
        Some(
            e.hijack(Method::POST, &format!("/containers/{id}/attach?{q}"), None)
                .await
                .map_err(|err| fail("run", err, 125))?,
        )
    } else {
        None
    };
    let condition = if o.rm { "removed" } else { "next-exit" };
    let waiter = Waiter::register(e, &id, condition).await;

    if let Err(err) = e
        .raw(
            Method::POST,
            &format!("/containers/{id}/start"),
            empty_body(),
            &[],
        )
        .await
    {
        let code = err
            .downcast_ref::<ApiError>()
            .map_or(125, |a| start_error_status(&a.message));
        if o.rm {
            let _ = tokio::time::timeout(Duration::from_secs(5), waiter.status()).await;
        }
        return Err(fail("run", err, code));
    }
    if a.detach {
        return emit(&format!("{id}\n"));
    }
    if let Some(h) = hijacked {
        let end = follow(e, &id, h, o.tty, att_in, detach_keys, a.sig_proxy).await?;
        if end == StreamEnd::Detached {
            return Ok(());
        }
    }
    if !att_out && !att_err {
        return emit(&format!("{id}\n"));
    }
    match waiter.status().await? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

async fn inspect(e: &Engine, name: &str) -> Result<ContainerInspect> {
    e.get_as(&format!(
        "/containers/{}/json",
        super::container::escape(name)
    ))
    .await
}

pub async fn start(e: &Engine, a: StartArgs) -> Result<()> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(anyhow!(
                "you cannot start and attach multiple containers at once"
            ));
        }
        return start_attached(e, &a).await;
    }
    let mut failed = Vec::new();
    for c in &a.containers {
        match e
            .raw(
                Method::POST,
                &format!("/containers/{}/start", super::container::escape(c)),
                empty_body(),
                &[],
            )
            .await
        {
            Ok(_) => emit(&format!("{c}\n"))?,
            Err(err) => {
                eprintln!("{err:#}");
                failed.push(c.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(anyhow!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        ));
    }
    Ok(())
}

async fn start_attached(e: &Engine, a: &StartArgs) -> Result<()> {
    let c = inspect(e, &a.containers[0]).await?;
    let id = c.id;
    let tty = c.config.tty;
    let stdin = a.interactive && c.config.open_stdin;
    if stdin && tty && !is_terminal(0) {
        return Err(anyhow!("the input device is not a TTY"));
    }
    let detach_keys = a
        .detach_keys
        .as_deref()
        .map(parse_detach_keys)
        .transpose()?;
    let q = attach_query(stdin, true, true, a.detach_keys.as_deref());
    let h = e
        .hijack(Method::POST, &format!("/containers/{id}/attach?{q}"), None)
        .await?;
    let auto_remove = c.host_config.auto_remove;
    let waiter = Waiter::register(e, &id, if auto_remove { "removed" } else { "next-exit" }).await;
    e.raw(
        Method::POST,
        &format!("/containers/{id}/start"),
        empty_body(),
        &[],
    )
    .await?;
    if follow(e, &id, h, tty, stdin, detach_keys, true).await? == StreamEnd::Detached {
        return Ok(());
    }
    match waiter.status().await? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

pub async fn attach_cmd(e: &Engine, a: AttachArgs) -> Result<()> {
    let c = inspect(e, &a.container).await?;
    let state = &c.state;
    if !state.running {
        return Err(anyhow!(
            "You cannot attach to a stopped container, start it first"
        ));
    }
    if state.paused {
        return Err(anyhow!(
            "You cannot attach to a paused container, unpause it first"
        ));
    }
    if state.restarting {
        return Err(anyhow!(
            "You cannot attach to a restarting container, wait until it is running"
        ));
    }
    let id = c.id;
    let tty = c.config.tty;
    let stdin = !a.no_stdin && c.config.open_stdin;
    if stdin && tty && !is_terminal(0) {
        return Err(anyhow!("the input device is not a TTY"));
    }
    let detach_keys = a
        .detach_keys
        .as_deref()
        .map(parse_detach_keys)
        .transpose()?;
    let q = attach_query(stdin, true, true, a.detach_keys.as_deref());
    let h = e
        .hijack(Method::POST, &format!("/containers/{id}/attach?{q}"), None)
        .await?;
    let waiter = Waiter::register(e, &id, "not-running").await;
    if follow(e, &id, h, tty, stdin, detach_keys, a.sig_proxy).await? == StreamEnd::Detached {
        return Ok(());
    }
    match waiter.status().await? {
        0 => Ok(()),
        code => Err(ExitStatus(code).into()),
    }
}

pub async fn wait(e: &Engine, a: ContainersArg) -> Result<()> {
    let mut failed = false;
    for c in &a.containers {
        let path = format!("/containers/{}/wait", super::container::escape(c));
        let r = async {
            let resp = e.raw(Method::POST, &path, empty_body(), &[]).await?;
            let body = resp.into_body().collect().await?.to_bytes();
            let r: ContainerWaitResponse = serde_json::from_slice(&body)?;
            anyhow::Ok(r.status_code)
        }
        .await;
        match r {
            Ok(code) => emit(&format!("{code}\n"))?,
            Err(err) => {
                eprintln!("{err:#}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(ExitStatus(1).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_docker_statuses() {
        assert_eq!(
            start_error_status("exec: \"nosuch\": executable file not found in $PATH: unknown"),
            127
        );
        assert_eq!(
            start_error_status("open /x: no such file or directory"),
            127
        );
        assert_eq!(start_error_status("exec /etc: permission denied"), 126);
        assert_eq!(start_error_status("cgroup failure"), 125);
    }

    #[test]
    fn attach_queries() {
        assert_eq!(
            attach_query(false, true, true, None),
            "stream=1&stdout=1&stderr=1"
        );
        assert_eq!(
            attach_query(true, true, false, Some("ctrl-x")),
            "stream=1&stdin=1&stdout=1&detachKeys=ctrl-x"
        );
    }
}
