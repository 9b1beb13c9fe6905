//! `berth shim start`: leave the daemon behind, start the container, report.
//!
//! The process the daemon spawned forks; the child calls `setsid` and forks
//! again, so the shim (the grandchild) is in its own session, is not the
//! daemon's child and is re-parented to init (or the nearest subreaper)
//! when the middle process exits. The shim points its stdio at `/dev/null`
//! and `STATE_DIR/shim.log`, closes every inherited descriptor, starts the
//! container and writes one JSON line down a pipe to the original process,
//! which prints it (or the error) and exits — that is all the daemon waits
//! for. A failure is printed on stderr in words and on stdout as the
//! control socket's error reply ([`ErrorReply`]), so that its kind and an
//! [`crate::ExecFailure`] reach the daemon typed.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{dup2, fork, pipe2, setsid, ForkResult};

use crate::args::ShimArgs;
use crate::bundle::BundleFacts;
use crate::error::ShimError;
use crate::exit;
use crate::logs::JsonFileLog;
use crate::protocol::{ErrorReply, ShimStarted};
use crate::runtime;
use crate::server::Shim;

/// The control socket's file name under the state dir.
pub const SOCKET_FILE: &str = "shim.sock";
/// The shim's own diagnostics (its stderr).
pub const SHIM_LOG_FILE: &str = "shim.log";
/// The shim's pid, for a daemon that restarts and wants to check on it.
pub const SHIM_PID_FILE: &str = "shim.pid";

/// Run `berth shim start`; returns the exit code of the foreground process.
pub fn start(args: ShimArgs) -> i32 {
    let args = match absolute(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth shim: {e}");
            return 1;
        }
    };
    let (report_r, report_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth shim: create report pipe: {e}");
            return 1;
        }
    };
    // SAFETY: `berth shim start` is a fresh single-threaded process (it was
    // just exec'd and has started no threads), so the child may run
    // arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("berth shim: fork: {e}");
            1
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            let mut line = String::new();
            // One line is the whole report; do not wait for EOF, since the
            // container's processes may briefly hold copies of the pipe.
            let read = BufReader::new(File::from(report_r)).read_line(&mut line);
            let _ = waitpid(child, None);
            report_result(read.map(|_| line))
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            let _ = setsid();
            // SAFETY: still single-threaded, as above.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let code = run_shim(args, report_w);
                    std::process::exit(code)
                }
                Ok(ForkResult::Parent { .. }) => {
                    // SAFETY: _exit ends this middle process without running
                    // destructors or atexit handlers that belong to the parent.
                    unsafe { libc::_exit(0) }
                }
                Err(e) => {
                    send_report(&report_w, &error_reply(&ShimError::sys("fork", e)));
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) }
                }
            }
        }
    }
}

fn report_result(read: std::io::Result<String>) -> i32 {
    let line = match read {
        Ok(l) if !l.trim().is_empty() => l,
        Ok(_) => {
            eprintln!(
                "berth shim: shim exited before reporting; see {SHIM_LOG_FILE} in the state dir"
            );
            return 1;
        }
        Err(e) => {
            eprintln!("berth shim: reading shim report: {e}");
            return 1;
        }
    };
    if let Ok(started) = serde_json::from_str::<ShimStarted>(&line) {
        println!("{}", serde_json::to_string(&started).expect("serializable"));
        return 0;
    }
    // A failure is reported twice: in words on stderr, for a person, and
    // as the error reply on stdout, for the daemon (its kind and why the
    // container's process did not start, typed).
    match serde_json::from_str::<ErrorReply>(&line) {
        Ok(e) => {
            eprintln!("{}", e.error);
            println!("{}", serde_json::to_string(&e).expect("serializable"));
        }
        Err(_) => eprintln!("berth shim: unexpected report {line:?}"),
    }
    1
}

fn error_reply(e: &ShimError) -> String {
    serde_json::to_string(&e.reply()).expect("serializable")
}

fn send_report(fd: &OwnedFd, line: &str) {
    let mut f = match fd.try_clone() {
        Ok(fd) => File::from(fd),
        Err(_) => return,
    };
    let _ = f.write_all(format!("{line}\n").as_bytes());
}

/// Paths are resolved before the shim changes directory.
fn absolute(mut args: ShimArgs) -> Result<ShimArgs, ShimError> {
    let abs = |p: &Path| -> Result<PathBuf, ShimError> {
        std::path::absolute(p).map_err(|e| ShimError::io(format!("resolve {}", p.display()), e))
    };
    args.bundle = fs::canonicalize(&args.bundle)
        .map_err(|e| ShimError::io(format!("bundle {}", args.bundle.display()), e))?;
    fs::create_dir_all(&args.state_dir)
        .map_err(|e| ShimError::io(format!("create state dir {}", args.state_dir.display()), e))?;
    args.state_dir = fs::canonicalize(&args.state_dir)
        .map_err(|e| ShimError::io(format!("state dir {}", args.state_dir.display()), e))?;
    args.log_path = abs(&args.log_path)?;
    if let Some(dir) = &args.seccomp_cache {
        args.seccomp_cache = Some(abs(dir)?);
    }
    if let Some(rt) = &args.runtime {
        args.runtime = Some(abs(rt)?);
    }
    Ok(args)
}

/// The detached shim: returns its exit code.
fn run_shim(args: ShimArgs, report: OwnedFd) -> i32 {
    if let Err(e) = detach_stdio(&args.state_dir, report.as_raw_fd()) {
        send_report(&report, &error_reply(&e));
        return 1;
    }
    init_tracing(&args.state_dir);
    match prepare_and_start(&args) {
        Ok(shim) => {
            let started = ShimStarted {
                pid: shim.pid.as_raw(),
                shim_pid: std::process::id() as i32,
            };
            send_report(
                &report,
                &serde_json::to_string(&started).expect("serializable"),
            );
            drop(report);
            tracing::info!(id = %args.id, pid = started.pid, "container started");
            shim.run();
            0
        }
        Err(e) => {
            tracing::error!(id = %args.id, error = %e, "starting container");
            send_report(&report, &error_reply(&e));
            1
        }
    }
}

fn prepare_and_start(args: &ShimArgs) -> Result<Shim, ShimError> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag; no pointers.
    // An external runtime's init is not our child: it is re-parented to us
    // when runc exits, and only a subreaper can then wait for it.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(ShimError::sys("PR_SET_CHILD_SUBREAPER", nix::Error::last()));
    }
    let facts = BundleFacts::load(&args.bundle)?;
    if facts.terminal != args.tty {
        return Err(ShimError::InvalidArgs(format!(
            "--tty is {} but process.terminal in {}/config.json is {}",
            args.tty,
            args.bundle.display(),
            facts.terminal
        )));
    }
    let log = JsonFileLog::open(&args.log_path, args.log_max_size, args.log_max_file)
        .map_err(|e| ShimError::io(format!("open log {}", args.log_path.display()), e))?;
    let socket_path = args.state_dir.join(SOCKET_FILE);
    let _ = fs::remove_file(&socket_path);
    let _ = fs::remove_file(args.state_dir.join(exit::EXIT_FILE));

    // The container inherits signal dispositions and the mask across exec:
    // undo the Rust runtime's SIGPIPE=ignore so `yes | head` behaves.
    // SAFETY: restoring the default disposition installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map_err(|e| ShimError::sys("reset SIGPIPE", e))?;
    SigSet::empty()
        .thread_set_mask()
        .map_err(|e| ShimError::sys("clear signal mask", e))?;

    let started = runtime::create_and_start(args)?;
    // SAFETY: ignoring a signal installs no handler. From here on a client
    // or the container closing a pipe must not kill the shim.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }
        .map_err(|e| ShimError::sys("ignore SIGPIPE", e))?;

    let listener = match std::os::unix::net::UnixListener::bind(&socket_path) {
        Ok(l) => l,
        Err(e) => {
            let err = ShimError::io(format!("bind {}", socket_path.display()), e);
            let _ = started.runtime.kill(libc::SIGKILL, true);
            return Err(err);
        }
    };
    let _ = fs::write(
        args.state_dir.join(SHIM_PID_FILE),
        format!("{}\n", std::process::id()),
    );
    let memory_cgroup = facts
        .cgroups_path
        .as_deref()
        .and_then(exit::memory_cgroup_dir);
    let mut shim = Shim::new(
        args.id.clone(),
        args.state_dir.clone(),
        socket_path,
        listener,
        started.runtime,
        started.pid,
        started.io,
        args.stdin,
        memory_cgroup,
        log,
    )?;
    shim.bundle = args.bundle.clone();
    shim.confinement = started.confinement;
    Ok(shim)
}

/// stdin/stdout to /dev/null, stderr to shim.log, every other inherited
/// descriptor closed (the daemon's sockets and files are none of ours).
fn detach_stdio(state_dir: &Path, keep: RawFd) -> Result<(), ShimError> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| ShimError::io("open /dev/null", e))?;
    let log_path = state_dir.join(SHIM_LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| ShimError::io(format!("open {}", log_path.display()), e))?;
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (null.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        dup2(from, to).map_err(|e| ShimError::sys("redirect stdio", e))?;
    }
    drop(null);
    drop(log);
    let fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")
        .map_err(|e| ShimError::io("list /proc/self/fd", e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|fd| *fd > 2 && *fd != keep) {
        // Closing the read_dir's own (already closed) descriptor fails
        // harmlessly with EBADF.
        let _ = nix::unistd::close(fd);
    }
    std::env::set_current_dir(state_dir).map_err(|e| ShimError::io("chdir to state dir", e))?;
    Ok(())
}

/// Diagnostics go to their own close-on-exec descriptor on shim.log, not to
/// fd 2: libcontainer's forked init logs through the same subscriber after
/// it has made the container's stderr its fd 2, and those lines must not
/// end up in the container's log.
fn init_tracing(state_dir: &Path) {
    let Ok(file) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join(SHIM_LOG_FILE))
    else {
        return;
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BERTH_SHIM_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,libcontainer=warn,libcgroups=warn")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}
