//! The shim's wire contract, shared by the shim and the daemon-side client.
//!
//! The control socket (`STATE_DIR/shim.sock`) serves one request per
//! connection: the client writes one JSON object and a newline, the shim
//! answers with one JSON object and a newline. Failures are always
//! `{"error": "...", "kind": "not_found" | ...}`.
//!
//! `attach` is the exception: after `{"ok":true}` the connection becomes a
//! raw byte stream. Bytes from the client go to the container's stdin;
//! container output goes to the client framed as Docker's multiplexed stream
//! ([`frame_header`]) when the container has no tty, raw when it has one.
//!
//! `exec` is the other: after `{"ok":true,"pid":N}` the connection becomes
//! the exec'd process's stream, framed the same way (raw with a tty, the
//! client's bytes to its stdin when asked for). When the process has exited
//! and its output is drained, the shim closes the connection; the exit code
//! is then read with `exec_state` (or from `STATE_DIR/execs.json` once the
//! shim itself is gone).
//!
//! These types are the contract only; the shim's internals keep their own.

use std::io::{self, Read};

use berth_core::ErrorKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::exec_failure::{ExecFailure, ExecFailureClass};

/// A request on the control socket, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Answered with [`StateReply`].
    State,
    /// Signal the init process (or, with `all`, every process of the
    /// container). Answered with [`OkReply`].
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Answered with [`ExitStatus`] once the container has exited and its
    /// output has been logged.
    Wait,
    /// Set the pty window size. Answered with [`OkReply`].
    Resize { height: u16, width: u16 },
    /// Answered with [`OkReply`], then the connection becomes a stream.
    /// With `stdin` (the default) the client's bytes are written to the
    /// container's stdin and the client's EOF closes it; without, the
    /// client only receives output.
    Attach {
        #[serde(default = "default_true")]
        stdin: bool,
    },
    /// Freeze the container's cgroup. Answered with [`OkReply`].
    Pause,
    /// Thaw the container's cgroup. Answered with [`OkReply`].
    Resume,
    /// Start a process in the running container. Answered with
    /// [`ExecStarted`], then the connection becomes the process's stream.
    Exec(ExecRequest),
    /// Answered with [`ExecStateReply`].
    ExecState { id: String },
    /// Set the window size of a tty exec. Answered with [`OkReply`].
    ExecResize { id: String, height: u16, width: u16 },
    /// Signal an exec'd process. Answered with [`OkReply`].
    ExecKill { id: String, signal: i32 },
}

/// What to run for `exec`: Docker's exec config with the user already
/// resolved to numbers and the environment already merged (the daemon
/// reads the image's passwd and knows the container's env).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The daemon's exec ID; unique within the container.
    pub id: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "root_dir")]
    pub cwd: String,
    /// `uid` or `uid:gid`, numeric; empty is `0:0`.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub tty: bool,
    /// Forward the client's bytes to the process's stdin (else /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// Every capability the shim holds instead of the container's set.
    #[serde(default)]
    pub privileged: bool,
    /// Initial `[height, width]` of the tty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u16; 2]>,
}

fn root_dir() -> String {
    "/".to_owned()
}

/// The reply to [`Request::Exec`]: `{"ok":true,"pid":N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    pub ok: bool,
    /// The process, as seen from the host.
    pub pid: i32,
}

/// The reply to [`Request::ExecState`]; also the values of
/// `STATE_DIR/execs.json`, keyed by exec ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStateReply {
    pub running: bool,
    pub pid: i32,
    /// Exit status, or 128 + signal; `null` while running.
    pub exit_code: Option<i32>,
}

fn default_true() -> bool {
    true
}

/// `{"ok":true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkReply {
    pub ok: bool,
}

/// `{"error":"...","kind":"..."}`, with `"exec_failure":{"class":...,
/// "errno":N}` when the container's process could not be started (absent
/// from older shims' replies, which still parse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    #[serde(default = "internal_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_failure: Option<ExecFailure>,
}

fn internal_kind() -> String {
    kind_to_str(ErrorKind::Internal).to_owned()
}

/// The lifecycle of the container as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Paused,
    Exited,
}

/// Reply to [`Request::State`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReply {
    pub status: Status,
    /// The container's init process, as seen from the host.
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// How the container's init process ended: the reply to [`Request::Wait`]
/// and the content of `STATE_DIR/exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit status, or 128 + signal number when killed by a signal
    /// (the shell's and Docker's convention).
    pub exit_code: i32,
    pub exited_at: DateTime<Utc>,
    /// The container's memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
    /// The signal that killed the init process, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// The line `berth shim start` prints once the container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStarted {
    /// The container's init process.
    pub pid: i32,
    /// The detached shim process.
    pub shim_pid: i32,
}

/// The stream a multiplexed frame belongs to (Docker's `stdcopy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamType {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

impl StreamType {
    /// The name json-file logs use for the stream.
    pub fn log_name(self) -> &'static str {
        match self {
            StreamType::Stdin => "stdin",
            StreamType::Stdout => "stdout",
            StreamType::Stderr => "stderr",
        }
    }
}

/// The 8-byte header of Docker's multiplexed stream: stream type, three
/// zero bytes, then the payload length as a big-endian u32.
pub fn frame_header(stream: StreamType, len: u32) -> [u8; 8] {
    let n = len.to_be_bytes();
    [stream as u8, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Read one multiplexed frame; `Ok(None)` on a clean EOF between frames.
pub fn read_frame(reader: &mut impl Read) -> io::Result<Option<(StreamType, Vec<u8>)>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let stream = match header[0] {
        0 => StreamType::Stdin,
        1 => StreamType::Stdout,
        2 => StreamType::Stderr,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown stream type {other} in frame header"),
            ))
        }
    };
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    Ok(Some((stream, payload)))
}

/// The wire spelling of an error kind.
pub fn kind_to_str(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::Conflict => "conflict",
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::FailedPrecondition => "failed_precondition",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::NotImplemented => "not_implemented",
        ErrorKind::Internal => "internal",
    }
}

/// The inverse of [`kind_to_str`]; unknown spellings are `Internal`.
pub fn kind_from_str(s: &str) -> ErrorKind {
    match s {
        "not_found" => ErrorKind::NotFound,
        "already_exists" => ErrorKind::AlreadyExists,
        "conflict" => ErrorKind::Conflict,
        "invalid_argument" => ErrorKind::InvalidArgument,
        "failed_precondition" => ErrorKind::FailedPrecondition,
        "unauthorized" => ErrorKind::Unauthorized,
        "forbidden" => ErrorKind::Forbidden,
        "unavailable" => ErrorKind::Unavailable,
        "not_implemented" => ErrorKind::NotImplemented,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_documented_json() {
        let cases = [
            (r#"{"op":"state"}"#, Request::State),
            (
                r#"{"op":"kill","signal":15,"all":false}"#,
                Request::Kill {
                    signal: 15,
                    all: false,
                },
            ),
            (
                r#"{"op":"kill","signal":9}"#,
                Request::Kill {
                    signal: 9,
                    all: false,
                },
            ),
            (r#"{"op":"wait"}"#, Request::Wait),
            (
                r#"{"op":"resize","height":24,"width":80}"#,
                Request::Resize {
                    height: 24,
                    width: 80,
                },
            ),
            (r#"{"op":"attach"}"#, Request::Attach { stdin: true }),
            (
                r#"{"op":"attach","stdin":false}"#,
                Request::Attach { stdin: false },
            ),
            (r#"{"op":"pause"}"#, Request::Pause),
            (r#"{"op":"resume"}"#, Request::Resume),
            (
                r#"{"op":"exec","id":"e1","args":["ls","/"]}"#,
                Request::Exec(ExecRequest {
                    id: "e1".into(),
                    args: vec!["ls".into(), "/".into()],
                    env: vec![],
                    cwd: "/".into(),
                    user: String::new(),
                    additional_gids: vec![],
                    tty: false,
                    stdin: false,
                    privileged: false,
                    console_size: None,
                }),
            ),
            (
                r#"{"op":"exec","id":"e2","args":["sh"],"env":["A=b"],"cwd":"/tmp","user":"65534:65534","additional_gids":[10],"tty":true,"stdin":true,"privileged":true,"console_size":[24,80]}"#,
                Request::Exec(ExecRequest {
                    id: "e2".into(),
                    args: vec!["sh".into()],
                    env: vec!["A=b".into()],
                    cwd: "/tmp".into(),
                    user: "65534:65534".into(),
                    additional_gids: vec![10],
                    tty: true,
                    stdin: true,
                    privileged: true,
                    console_size: Some([24, 80]),
                }),
            ),
            (
                r#"{"op":"exec_state","id":"e1"}"#,
                Request::ExecState { id: "e1".into() },
            ),
            (
                r#"{"op":"exec_resize","id":"e1","height":30,"width":90}"#,
                Request::ExecResize {
                    id: "e1".into(),
                    height: 30,
                    width: 90,
                },
            ),
            (
                r#"{"op":"exec_kill","id":"e1","signal":9}"#,
                Request::ExecKill {
                    id: "e1".into(),
                    signal: 9,
                },
            ),
        ];
        for (json, want) in cases {
            let got: Request = serde_json::from_str(json).unwrap();
            assert_eq!(got, want, "{json}");
            let again: Request =
                serde_json::from_str(&serde_json::to_string(&got).unwrap()).unwrap();
            assert_eq!(again, want);
        }
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
    }

    #[test]
    fn exit_status_omits_absent_signal() {
        let status = ExitStatus {
            exit_code: 3,
            exited_at: "2026-11-27T19:13:38.449520929Z".parse().unwrap(),
            oom_killed: false,
            signal: None,
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"exit_code":3,"exited_at":"2026-11-27T19:13:38.449520929Z","oom_killed":false}"#
        );
        assert_eq!(serde_json::from_str::<ExitStatus>(&json).unwrap(), status);
    }

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&frame_header(StreamType::Stdout, 3));
        wire.extend_from_slice(b"hi\n");
        wire.extend_from_slice(&frame_header(StreamType::Stderr, 0));
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        let mut r = &wire[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((StreamType::Stdout, b"hi\n".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((StreamType::Stderr, vec![]))
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let mut short = &wire[..5];
        assert!(read_frame(&mut short).is_err());
    }

    #[test]
    fn error_replies_carry_an_exec_failure_and_old_ones_parse() {
        let old: ErrorReply = serde_json::from_str(r#"{"error":"boom"}"#).unwrap();
        assert_eq!(old.kind, "internal");
        assert_eq!(old.exec_failure, None);
        let reply = ErrorReply {
            error: "exec failed".into(),
            kind: "internal".into(),
            exec_failure: Some(ExecFailure::from_errno(libc::EACCES)),
        };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            json,
            r#"{"error":"exec failed","kind":"internal","exec_failure":{"class":"not_executable","errno":13}}"#
        );
        assert_eq!(serde_json::from_str::<ErrorReply>(&json).unwrap(), reply);
        let plain = ErrorReply {
            exec_failure: None,
            ..reply
        };
        assert!(!serde_json::to_string(&plain)
            .unwrap()
            .contains("exec_failure"));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::NotImplemented,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_from_str(kind_to_str(kind)), kind);
        }
    }
}
