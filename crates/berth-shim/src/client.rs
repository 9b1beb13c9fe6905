//! The daemon's side: start a shim and talk to it.
//!
//! Blocking std sockets, one connection per request, as the shim serves
//! them; a tokio daemon calls these from `spawn_blocking`. Nothing here
//! forks in the caller's process except through `std::process::Command`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_core::ErrorKind;

use crate::args::ShimArgs;
use crate::detach::SOCKET_FILE;
use crate::error::ShimError;
use crate::exit::read_exit_file;
use crate::protocol::{
    self, ErrorReply, ExecRequest, ExecStarted, ExecStateReply, ExitStatus, OkReply, Request,
    ShimStarted, StateReply,
};
use crate::server::read_execs_file;

/// Replies other than `wait` are expected within this time.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `<berth_exe> shim start ARGS` and return once the container runs
/// (or failed to). The shim itself is detached and keeps running.
pub fn spawn_shim(berth_exe: &Path, args: &ShimArgs) -> Result<ShimStarted, ShimError> {
    let out = Command::new(berth_exe)
        .arg("shim")
        .arg("start")
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ShimError::io(format!("run {} shim start", berth_exe.display()), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !out.status.success() {
        // The shim's error reply when it got that far; else only words
        // (bad arguments, a shim that died before reporting).
        let reply = serde_json::from_str::<ErrorReply>(line).ok();
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ShimError::Start {
            kind: reply
                .as_ref()
                .map_or(ErrorKind::Internal, |r| protocol::kind_from_str(&r.kind)),
            message: format!("{}: {}", out.status, stderr.trim()),
            exec_failure: reply.and_then(|r| r.exec_failure),
        });
    }
    serde_json::from_str(line)
        .map_err(|e| ShimError::Protocol(format!("shim start printed {line:?}: {e}")))
}

/// A handle on one shim's control socket.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    /// Check that the shim under `state_dir` answers; fails with
    /// `Unreachable` when it is gone (then read `exit.json`).
    pub fn connect(state_dir: &Path) -> Result<Self, ShimError> {
        let client = ShimClient {
            socket: state_dir.join(SOCKET_FILE),
        };
        client.open()?;
        Ok(client)
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    fn open(&self) -> Result<UnixStream, ShimError> {
        UnixStream::connect(&self.socket).map_err(|source| ShimError::Unreachable {
            path: self.socket.clone(),
            source,
        })
    }

    fn send(
        &self,
        req: &Request,
        timeout: Option<Duration>,
    ) -> Result<(UnixStream, serde_json::Value), ShimError> {
        let mut stream = self.open()?;
        let io = |e| ShimError::io(format!("shim socket {}", self.socket.display()), e);
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        stream.write_all(&line).map_err(io)?;
        // Read byte-wise up to the newline so that nothing of an attach
        // stream that follows the reply is swallowed by a buffer.
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match std::io::Read::read(&mut stream, &mut byte) {
                Ok(0) => {
                    return Err(ShimError::Protocol(
                        "shim closed the connection without a reply".into(),
                    ))
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => reply.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let value: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| {
            ShimError::Protocol(format!(
                "bad reply {:?}: {e}",
                String::from_utf8_lossy(&reply)
            ))
        })?;
        if value.get("error").is_some() {
            let e: ErrorReply =
                serde_json::from_value(value).map_err(|e| ShimError::Protocol(e.to_string()))?;
            return Err(ShimError::from_reply(e));
        }
        Ok((stream, value))
    }

    fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: &Request,
        timeout: Option<Duration>,
    ) -> Result<T, ShimError> {
        let (_, value) = self.send(req, timeout)?;
        serde_json::from_value(value)
            .map_err(|e| ShimError::Protocol(format!("unexpected reply: {e}")))
    }

    fn call_ok(&self, req: &Request) -> Result<(), ShimError> {
        let reply: OkReply = self.call(req, Some(REPLY_TIMEOUT))?;
        if reply.ok {
            Ok(())
        } else {
            Err(ShimError::Protocol("shim replied ok=false".into()))
        }
    }

    pub fn state(&self) -> Result<StateReply, ShimError> {
        self.call(&Request::State, Some(REPLY_TIMEOUT))
    }

    /// Signal the container's init process.
    pub fn kill(&self, signal: i32) -> Result<(), ShimError> {
        self.call_ok(&Request::Kill { signal, all: false })
    }

    /// Signal every process in the container.
    pub fn kill_all(&self, signal: i32) -> Result<(), ShimError> {
        self.call_ok(&Request::Kill { signal, all: true })
    }

    /// Block until the container has exited and its output is logged.
    /// If the shim is already gone, the exit it recorded is returned.
    pub fn wait(&self) -> Result<ExitStatus, ShimError> {
        match self.call(&Request::Wait, None) {
            Ok(status) => Ok(status),
            Err(e @ (ShimError::Unreachable { .. } | ShimError::Protocol(_))) => {
                let state_dir = self.socket.parent().unwrap_or(Path::new("/"));
                match read_exit_file(state_dir) {
                    Ok(Some(status)) => Ok(status),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub fn resize(&self, height: u16, width: u16) -> Result<(), ShimError> {
        self.call_ok(&Request::Resize { height, width })
    }

    pub fn pause(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::Pause)
    }

    pub fn resume(&self) -> Result<(), ShimError> {
        self.call_ok(&Request::Resume)
    }

    /// Attach to the container's stdio: write to the returned stream to
    /// feed stdin (shut down its write half to close stdin), read output
    /// from it (multiplexed frames without a tty, raw with one).
    pub fn attach(&self) -> Result<UnixStream, ShimError> {
        self.attach_with(true)
    }

    /// Attach for output only; this connection never touches stdin.
    pub fn attach_output(&self) -> Result<UnixStream, ShimError> {
        self.attach_with(false)
    }

    fn attach_with(&self, stdin: bool) -> Result<UnixStream, ShimError> {
        let (stream, value) = self.send(&Request::Attach { stdin }, Some(REPLY_TIMEOUT))?;
        let _: OkReply =
            serde_json::from_value(value).map_err(|e| ShimError::Protocol(e.to_string()))?;
        stream
            .set_read_timeout(None)
            .map_err(|e| ShimError::io("shim attach stream", e))?;
        Ok(stream)
    }

    /// Start a process in the running container. The returned stream is
    /// the process's: write to feed its stdin (when `req.stdin`; shut down
    /// the write half to close it), read its output (multiplexed frames
    /// without a tty, raw with one) until EOF, which comes once it exited;
    /// then ask [`ShimClient::exec_state`] for the exit code.
    pub fn exec(&self, req: &ExecRequest) -> Result<(u32, UnixStream), ShimError> {
        let (stream, value) = self.send(&Request::Exec(req.clone()), Some(REPLY_TIMEOUT))?;
        let started: ExecStarted =
            serde_json::from_value(value).map_err(|e| ShimError::Protocol(e.to_string()))?;
        stream
            .set_read_timeout(None)
            .map_err(|e| ShimError::io("shim exec stream", e))?;
        Ok((started.pid as u32, stream))
    }

    /// How an exec is doing. If the shim is already gone, the record it
    /// left in `execs.json` answers.
    pub fn exec_state(&self, id: &str) -> Result<ExecStateReply, ShimError> {
        match self.call(
            &Request::ExecState { id: id.to_owned() },
            Some(REPLY_TIMEOUT),
        ) {
            Ok(s) => Ok(s),
            Err(e @ (ShimError::Unreachable { .. } | ShimError::Protocol(_))) => {
                let state_dir = self.socket.parent().unwrap_or(Path::new("/"));
                match read_execs_file(state_dir, id) {
                    Ok(Some(s)) => Ok(s),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ShimError> {
        self.call_ok(&Request::ExecResize {
            id: id.to_owned(),
            height,
            width,
        })
    }

    pub fn exec_kill(&self, id: &str, signal: i32) -> Result<(), ShimError> {
        self.call_ok(&Request::ExecKill {
            id: id.to_owned(),
            signal,
        })
    }
}

/// [`ShimClient::exec_state`] for a shim known to be gone: its
/// `execs.json` under `state_dir`.
pub fn read_exec_record(state_dir: &Path, id: &str) -> Option<ExecStateReply> {
    read_execs_file(state_dir, id).ok().flatten()
}
