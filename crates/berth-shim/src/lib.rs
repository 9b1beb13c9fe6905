//! berth's per-container shim and the daemon's client for it.
//!
//! The daemon is a multi-threaded tokio process and never forks containers
//! itself. For each container it runs `berth shim start` (the same binary)
//! with the bundle the daemon prepared; the shim detaches, creates and
//! starts the container through youki's `libcontainer` (or an external
//! runc), and from then on is the container's only keeper:
//!
//! - it holds the container's stdio (pipes, or a pty master) and copies the
//!   output into a Docker json-file log ([`logs`]) and to attached clients;
//! - it is the init process's parent and records how it ended in
//!   `STATE_DIR/exit.json` ([`exit`]), then deletes the container from the
//!   runtime so its cgroups go away, and exits;
//! - it serves `STATE_DIR/shim.sock` ([`protocol`]): state, kill, wait,
//!   resize, attach, pause, resume, and `exec`: more processes in the
//!   running container, each streamed over the connection that started it.
//!
//! The shim never depends on the daemon: a daemon that restarts finds
//! running shims by their sockets and finished ones by `exit.json`
//! ([`ShimClient`], [`read_exit_file`]).
//!
//! Files under the state dir: `shim.sock`, `shim.pid`, `shim.log` (the
//! shim's own diagnostics), `exit.json`, `execs.json` (how the execs ended,
//! written when the shim exits), `runtime/` (the runtime's state).

mod args;
mod bundle;
mod client;
mod detach;
mod error;
mod exec_failure;
mod executor;
pub mod exit;
pub mod logs;
pub mod protocol;
mod runtime;
pub mod seccomp;
mod server;
mod stdio;
mod workload;

pub use args::{
    parse_size as parse_log_size, ShimArgs, DEFAULT_LOG_MAX_FILE, DEFAULT_LOG_MAX_SIZE,
};
pub use client::{read_exec_record, spawn_shim, ShimClient};
pub use detach::{SHIM_LOG_FILE, SHIM_PID_FILE, SOCKET_FILE};
pub use error::ShimError;
pub use exit::{read_exit_file, EXIT_FILE};
pub use protocol::{
    ExecFailure, ExecFailureClass, ExecRequest, ExecStarted, ExecStateReply, ExitStatus,
    ShimStarted, StateReply, Status, StreamType,
};
pub use runtime::RUNTIME_DIR;
pub use server::EXECS_FILE;

const USAGE: &str = "usage: berth shim start --id ID --bundle DIR --state-dir DIR --log-path FILE \
[--tty] [--stdin] [--runtime PATH] [--log-max-size BYTES] [--log-max-file N] [--seccomp-cache DIR]";

/// Entry point for `berth shim ...`: `argv[1]` is `shim`. Returns the
/// process exit code.
pub fn main() -> i32 {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().as_deref() != Some(std::ffi::OsStr::new("shim")) {
        eprintln!("{USAGE}");
        return 2;
    }
    match argv.next().as_deref().and_then(|s| s.to_str()) {
        Some("start") => match ShimArgs::parse(argv) {
            Ok(args) => detach::start(args),
            Err(e) => {
                eprintln!("berth shim: {e}\n{USAGE}");
                2
            }
        },
        Some("-h") | Some("--help") | Some("help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}
