//! `exec`: more processes in the running container.
//!
//! The shim joins a process to the container with libcontainer's tenant
//! builder, given a complete `process` object derived from the container's
//! own (capabilities, rlimits, no-new-privileges, AppArmor and SELinux
//! labels kept; args, env, cwd, user and terminal from the request, every
//! capability the shim holds when privileged), the container's seccomp
//! filter and the terminal's size set from inside (see `crate::workload`).
//! Like the container's init,
//! the process is the shim's child: the loop reaps it from the same
//! signalfd.
//!
//! Lifecycle of one exec: request → process started, `{"ok":true,"pid":N}`
//! → its output streamed to the connection that asked (multiplexed frames,
//! raw with a tty), the connection's bytes to its stdin → reaped (exit code
//! recorded) → output drained to EOF or for at most [`DRAIN_TIMEOUT`] →
//! connection flushed and closed. The record stays for `exec_state` while
//! the shim lives, and goes to `STATE_DIR/execs.json` when it exits.
//!
//! Unlike attach, a slow exec client is not dropped: its process's output
//! is read only while less than [`MAX_EXEC_BACKLOG`] waits for the client,
//! so the pipe applies backpressure as `docker exec` does.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use serde_json::{json, Value};

use super::{Shim, Slot, DRAIN_TIMEOUT, READ_CHUNK};
use crate::error::ShimError;
use crate::exit;
use crate::protocol::{self, ExecRequest, ExecStarted, ExecStateReply, StreamType};
use crate::runtime::Runtime;
use crate::stdio::{self, ContainerIo};
use crate::workload::Workload;

/// Output waiting for a slow exec client before the process is throttled.
pub const MAX_EXEC_BACKLOG: usize = 1 << 20;
/// How long a finished exec's client may take to read the last output.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Finished execs remembered for `exec_state`; the oldest go first.
const MAX_FINISHED: usize = 512;

struct ExecOutput {
    fd: OwnedFd,
    stream: StreamType,
    eof: bool,
}

pub(super) struct Exec {
    id: String,
    pid: Pid,
    tty: bool,
    outputs: Vec<ExecOutput>,
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    close_stdin: bool,
    pty: Option<OwnedFd>,
    /// The connection that started it, until the exec is done with it.
    conn: Option<UnixStream>,
    conn_out: Vec<u8>,
    conn_stdin: bool,
    conn_read_closed: bool,
    exit_code: Option<i32>,
    /// Set at reaping: stop waiting for output EOF at the first, close the
    /// connection at the second.
    drain_until: Option<Instant>,
    close_by: Option<Instant>,
}

impl Exec {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn state(&self) -> ExecStateReply {
        ExecStateReply {
            running: self.exit_code.is_none(),
            pid: self.pid.as_raw(),
            exit_code: self.exit_code,
        }
    }

    fn done(&self) -> bool {
        self.exit_code.is_some() && self.outputs.is_empty() && self.conn.is_none()
    }

    fn wants_conn_read(&self) -> bool {
        self.conn_stdin
            && !self.conn_read_closed
            && self.stdin.is_some()
            && self.stdin_pending.is_empty()
    }

    /// The descriptors this exec waits on, in the loop's slot order.
    pub(super) fn poll_fds<'a>(
        &'a self,
        e: usize,
        slots: &mut Vec<Slot>,
        fds: &mut Vec<PollFd<'a>>,
    ) {
        let throttled = self.conn.is_some() && self.conn_out.len() >= MAX_EXEC_BACKLOG;
        if !throttled {
            for (i, o) in self.outputs.iter().enumerate() {
                slots.push(Slot::ExecOutput(e, i));
                fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if let (Some(s), false) = (&self.stdin, self.stdin_pending.is_empty()) {
            slots.push(Slot::ExecStdin(e));
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        if let Some(conn) = &self.conn {
            let mut ev = PollFlags::empty();
            if self.wants_conn_read() {
                ev |= PollFlags::POLLIN;
            }
            if !self.conn_out.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            slots.push(Slot::ExecConn(e));
            fds.push(PollFd::new(conn.as_fd(), ev));
        }
    }

    pub(super) fn read_output(&mut self, i: usize) {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match nix::unistd::read(self.outputs[i].fd.as_raw_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return,
            // EIO: the pty's last slave descriptor closed.
            Err(_) => 0,
        };
        if n == 0 {
            self.outputs[i].eof = true;
            return;
        }
        if self.conn.is_none() {
            return; // nobody listens (detached, or the client went away)
        }
        if !self.tty {
            let header = protocol::frame_header(self.outputs[i].stream, n as u32);
            self.conn_out.extend_from_slice(&header);
        }
        self.conn_out.extend_from_slice(&buf[..n]);
        self.flush_conn();
    }

    fn flush_conn(&mut self) {
        let Some(conn) = &mut self.conn else {
            self.conn_out.clear();
            return;
        };
        while !self.conn_out.is_empty() {
            match conn.write(&self.conn_out) {
                Ok(0) => return self.drop_conn(),
                Ok(n) => {
                    self.conn_out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_conn(),
            }
        }
    }

    /// The client went away: the process keeps running, its output is
    /// discarded from now on (as dockerd does for a vanished client).
    fn drop_conn(&mut self) {
        self.conn = None;
        self.conn_out.clear();
        if self.conn_stdin && !self.tty {
            self.close_stdin = true;
            self.flush_stdin();
        }
    }

    pub(super) fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.stdin_pending.is_empty() {
                match nix::unistd::write(fd, &self.stdin_pending) {
                    Ok(n) => {
                        self.stdin_pending.drain(..n);
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => return,
                    Err(_) => {
                        // The process closed its stdin: discard input.
                        self.stdin_pending.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        } else {
            self.stdin_pending.clear();
        }
        // A pty has no half-close: its input ends with the process.
        if self.close_stdin && self.stdin_pending.is_empty() && !self.tty {
            self.stdin = None;
        }
    }

    pub(super) fn conn_ready(&mut self, revents: PollFlags) {
        if revents.contains(PollFlags::POLLOUT) {
            self.flush_conn();
        }
        if !revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return;
        }
        if !self.wants_conn_read() {
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.drop_conn();
            }
            return;
        }
        let Some(conn) = &mut self.conn else { return };
        let mut buf = vec![0u8; READ_CHUNK];
        match conn.read(&mut buf) {
            Ok(0) => {
                self.conn_read_closed = true;
                self.close_stdin = true;
                self.flush_stdin();
            }
            Ok(n) => {
                self.stdin_pending.extend_from_slice(&buf[..n]);
                self.flush_stdin();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.drop_conn(),
        }
    }

    /// After each round: forget finished outputs, end a finished exec's
    /// stream once its output is drained and sent.
    fn tick(&mut self, now: Instant) {
        self.outputs.retain(|o| !o.eof);
        if self.exit_code.is_none() {
            return;
        }
        let drained = self.outputs.is_empty() || self.drain_until.is_some_and(|d| now >= d);
        if !drained {
            return;
        }
        self.outputs.clear();
        self.stdin = None;
        self.stdin_pending.clear();
        self.pty = None;
        if self.conn_out.is_empty() || self.close_by.is_some_and(|d| now >= d) {
            if let Some(conn) = self.conn.take() {
                let _ = conn.shutdown(std::net::Shutdown::Both);
            }
            self.conn_out.clear();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.exit_code?;
        if !self.outputs.is_empty() {
            self.drain_until
        } else if self.conn.is_some() {
            self.close_by
        } else {
            None
        }
    }

    /// The shim is exiting: hand over what is left, briefly blocking.
    fn close_now(&mut self) {
        self.stdin = None;
        self.pty = None;
        self.outputs.clear();
        if let Some(mut conn) = self.conn.take() {
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = conn.write_all(&self.conn_out);
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        self.conn_out.clear();
    }
}

impl Shim {
    /// `exec`: start the process and turn client `i`'s connection into its
    /// stream. On error nothing is left behind and the caller replies.
    pub(super) fn start_exec(&mut self, i: usize, req: ExecRequest) -> Result<(), ShimError> {
        self.running()?;
        if self.paused {
            return Err(self.precondition("is paused, unpause the container before exec"));
        }
        validate_exec_id(&req.id)?;
        if self.execs.iter().any(|x| x.id == req.id) {
            return Err(ShimError::ExecExists(req.id));
        }
        if req.args.is_empty() {
            return Err(ShimError::InvalidArgs("exec needs a command to run".into()));
        }
        let (root, cid) = match &self.runtime {
            Runtime::Embedded { root, id } => (root.clone(), id.clone()),
            Runtime::External { .. } => {
                return Err(ShimError::NotImplemented(
                    "exec with an external runtime".into(),
                ))
            }
        };
        let (uid, gid) = parse_user(&req.user)?;
        Container::load(root.join(&cid)).map_err(|e| ShimError::runtime(&cid, "exec", &e))?;
        // The daemon's spec, not the runtime's copy (which lacks the seccomp
        // profile and has the init's capabilities widened for loading it).
        let config_path = self.bundle.join("config.json");
        let spec: Value = std::fs::read(&config_path)
            .map_err(|e| ShimError::io(format!("read {}", config_path.display()), e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| ShimError::BundleConfig {
                    path: config_path.clone(),
                    reason: e.to_string(),
                })
            })?;
        let all_caps = req.privileged.then(held_capabilities);
        let mut process = exec_process(&spec, &req, uid, gid, all_caps.as_deref());
        let window = req.tty.then_some(req.console_size).flatten();
        let workload =
            Workload::prepare(&self.confinement, &mut process, window).map_err(|reason| {
                ShimError::BundleConfig {
                    path: config_path.clone(),
                    reason,
                }
            })?;
        let process_path = self.state_dir.join(format!("exec-{}.json", req.id));
        std::fs::write(
            &process_path,
            serde_json::to_vec(&process).expect("json serializes"),
        )
        .map_err(|e| ShimError::io(format!("write {}", process_path.display()), e))?;
        let started = self.spawn_tenant(&root, &cid, &req, &process_path, workload);
        let _ = std::fs::remove_file(&process_path);
        let (pid, io) = started?;

        let (outputs, stdin, pty) = match io {
            ContainerIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                let outputs = vec![(stdout, StreamType::Stdout), (stderr, StreamType::Stderr)];
                (outputs, stdin, None)
            }
            ContainerIo::Pty { master } => {
                if let Some([h, w]) = req.console_size.filter(|[h, w]| *h > 0 && *w > 0) {
                    let _ = stdio::set_window_size(&master, h, w);
                }
                let reader = master
                    .try_clone()
                    .map_err(|e| ShimError::io("dup pty master", e))?;
                let stdin = if req.stdin {
                    Some(
                        master
                            .try_clone()
                            .map_err(|e| ShimError::io("dup pty master", e))?,
                    )
                } else {
                    None
                };
                (vec![(reader, StreamType::Stdout)], stdin, Some(master))
            }
        };
        for (fd, _) in &outputs {
            stdio::set_nonblocking(fd.as_fd())?;
        }
        if let Some(s) = &stdin {
            stdio::set_nonblocking(s.as_fd())?;
        }
        // The client's connection now belongs to the exec: bytes it sent
        // after the request line are the first of stdin.
        let c = &mut self.clients[i];
        let conn = c
            .stream
            .try_clone()
            .map_err(|e| ShimError::io("exec connection", e))?;
        let early_input = std::mem::take(&mut c.inbuf);
        c.dead = true;
        let mut reply = serde_json::to_vec(&ExecStarted {
            ok: true,
            pid: pid.as_raw(),
        })
        .expect("json serializes");
        reply.push(b'\n');
        tracing::info!(id = %self.id, exec = %req.id, pid = pid.as_raw(), tty = req.tty, "exec started");
        let mut exec = Exec {
            id: req.id,
            pid,
            tty: req.tty,
            outputs: outputs
                .into_iter()
                .map(|(fd, stream)| ExecOutput {
                    fd,
                    stream,
                    eof: false,
                })
                .collect(),
            stdin,
            stdin_pending: if req.stdin { early_input } else { Vec::new() },
            close_stdin: false,
            pty,
            conn: Some(conn),
            conn_out: reply,
            conn_stdin: req.stdin,
            conn_read_closed: false,
            exit_code: None,
            drain_until: None,
            close_by: None,
        };
        exec.flush_conn();
        exec.flush_stdin();
        self.execs.push(exec);
        // A process that already exited is reaped now, not at the next SIGCHLD.
        self.reap();
        Ok(())
    }

    /// Join the process to the container. The child inherits the signal
    /// mask and ignored dispositions across execve: SIGCHLD is unblocked
    /// and SIGPIPE restored for the duration, then the loop's settings come
    /// back (a SIGCHLD lost meanwhile is made up by the caller's reap).
    fn spawn_tenant(
        &self,
        root: &Path,
        cid: &str,
        req: &ExecRequest,
        process_path: &Path,
        workload: Workload,
    ) -> Result<(Pid, ContainerIo), ShimError> {
        let builder = ContainerBuilder::new(cid.to_owned(), SyscallType::default())
            .with_root_path(root)
            .map_err(|e| ShimError::runtime(cid, "exec", &e))?
            .with_executor(workload);
        let mut console: Option<(UnixListener, PathBuf)> = None;
        let (builder, pipes) = if req.tty {
            // Bound by a name relative to the state dir (the shim's working
            // directory): the absolute path may exceed sun_path's 108 bytes.
            // libcontainer reaches it through a symlink in its own state.
            let name = format!("exec-{}.sock", short_hash(&req.id));
            let path = self.state_dir.join(&name);
            let _ = std::fs::remove_file(&path);
            std::env::set_current_dir(&self.state_dir)
                .map_err(|e| ShimError::io("chdir to state dir", e))?;
            let listener = UnixListener::bind(&name)
                .map_err(|e| ShimError::io(format!("bind console socket {}", path.display()), e))?;
            let b = builder.with_console_socket(Some(&path));
            console = Some((listener, path));
            (b, None)
        } else {
            let (io, child) = stdio::pipes(req.stdin)?;
            let b = builder
                .with_stdin(child.stdin)
                .with_stdout(child.stdout)
                .with_stderr(child.stderr);
            (b, Some(io))
        };
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_unblock()
            .map_err(|e| ShimError::sys("unblock SIGCHLD", e))?;
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
        let built = builder
            .as_tenant()
            .with_process(Some(process_path))
            .with_detach(true)
            .build();
        // SAFETY: ignoring a signal installs no handler.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
        if let Err(e) = mask.thread_block() {
            tracing::error!(error = %e, "re-blocking SIGCHLD after exec");
        }
        if let Some((_, path)) = &console {
            remove_tenant_links(&root.join(cid), path);
        }
        let pid = match built {
            Ok(pid) => pid,
            Err(e) => {
                if let Some((_, path)) = &console {
                    let _ = std::fs::remove_file(path);
                }
                return Err(ShimError::runtime(cid, "exec", &e));
            }
        };
        let io = match (pipes, console) {
            (Some(io), _) => io,
            (None, Some((listener, path))) => {
                let master = stdio::recv_pty_master(&listener);
                let _ = std::fs::remove_file(&path);
                ContainerIo::Pty { master: master? }
            }
            (None, None) => unreachable!("either pipes or a console socket"),
        };
        Ok((pid, io))
    }

    pub(super) fn exec_state(&self, id: &str) -> Result<ExecStateReply, ShimError> {
        self.find_exec(id).map(|e| self.execs[e].state())
    }

    pub(super) fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ShimError> {
        let x = &self.execs[self.find_exec(id)?];
        match &x.pty {
            Some(m) => stdio::set_window_size(m, height, width),
            None if !x.tty => Err(self.precondition(&format!("exec {id} has no tty"))),
            None => Err(self.precondition(&format!("exec {id} is not running"))),
        }
    }

    pub(super) fn exec_kill(&self, id: &str, sig: i32) -> Result<(), ShimError> {
        let x = &self.execs[self.find_exec(id)?];
        if x.exit_code.is_some() {
            return Err(self.precondition(&format!("exec {id} is not running")));
        }
        let sig = Signal::try_from(sig).map_err(|_| ShimError::InvalidSignal(sig))?;
        nix::sys::signal::kill(x.pid, sig)
            .map_err(|e| ShimError::sys(format!("signal exec {id}"), e))
    }

    fn find_exec(&self, id: &str) -> Result<usize, ShimError> {
        self.execs
            .iter()
            .position(|x| x.id == id)
            .ok_or_else(|| ShimError::ExecNotFound(id.to_owned()))
    }

    /// A wait status the init did not claim: maybe an exec's process.
    pub(super) fn exec_reaped(&mut self, status: WaitStatus) {
        let Some(pid) = status.pid() else { return };
        let Some((code, signal)) = exit::exit_of(status) else {
            return;
        };
        if let Some(x) = self
            .execs
            .iter_mut()
            .find(|x| x.pid == pid && x.exit_code.is_none())
        {
            tracing::info!(id = %self.id, exec = %x.id, code, ?signal, "exec exited");
            let now = Instant::now();
            x.exit_code = Some(code);
            x.drain_until = Some(now + DRAIN_TIMEOUT);
            x.close_by = Some(now + DRAIN_TIMEOUT + CLOSE_GRACE);
        }
    }

    pub(super) fn exec_read_output(&mut self, e: usize, i: usize) {
        self.execs[e].read_output(i);
    }

    pub(super) fn exec_stdin_ready(&mut self, e: usize) {
        self.execs[e].flush_stdin();
    }

    pub(super) fn exec_conn_ready(&mut self, e: usize, revents: PollFlags) {
        self.execs[e].conn_ready(revents);
    }

    /// After each round of events.
    pub(super) fn execs_tick(&mut self) {
        let now = Instant::now();
        for x in &mut self.execs {
            x.tick(now);
        }
        let finished = self.execs.iter().filter(|x| x.done()).count();
        if finished > MAX_FINISHED {
            let mut excess = finished - MAX_FINISHED;
            self.execs.retain(|x| {
                if excess > 0 && x.done() {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    pub(super) fn execs_deadline(&self) -> Option<Instant> {
        self.execs.iter().filter_map(Exec::next_deadline).min()
    }

    /// The shim is exiting: close every exec stream and record how each
    /// exec ended in `execs.json` for a daemon that asks too late.
    pub(super) fn finish_execs(&mut self) {
        if self.execs.is_empty() {
            return;
        }
        for x in &mut self.execs {
            x.close_now();
        }
        let record: BTreeMap<&str, ExecStateReply> = self
            .execs
            .iter()
            .map(|x| (x.id.as_str(), x.state()))
            .collect();
        if let Err(e) = write_execs_file(&self.state_dir, &record) {
            tracing::error!(id = %self.id, error = %e, "writing execs file");
        }
    }
}

/// Where the shim records its execs when it exits.
pub const EXECS_FILE: &str = "execs.json";

fn write_execs_file(state_dir: &Path, record: &BTreeMap<&str, ExecStateReply>) -> io::Result<()> {
    let tmp = state_dir.join(format!(".{EXECS_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
    // Not fsynced, as exit.json: runtime state for a restarting daemon.
    drop(f);
    std::fs::rename(&tmp, state_dir.join(EXECS_FILE))
}

/// One exec's record from `execs.json`, if the shim wrote it.
pub fn read_execs_file(state_dir: &Path, id: &str) -> io::Result<Option<ExecStateReply>> {
    match std::fs::read(state_dir.join(EXECS_FILE)) {
        Ok(bytes) => {
            let mut all: BTreeMap<String, ExecStateReply> =
                serde_json::from_slice(&bytes).map_err(io::Error::other)?;
            Ok(all.remove(id))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Exec IDs name files in the state dir.
fn validate_exec_id(id: &str) -> Result<(), ShimError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ShimError::InvalidArgs(format!("invalid exec id {id:?}")))
    }
}

/// `uid` or `uid:gid`, numeric; empty is root.
fn parse_user(user: &str) -> Result<(u32, u32), ShimError> {
    let bad = || ShimError::InvalidArgs(format!("exec user {user:?} is not numeric uid[:gid]"));
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, "0"));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

fn short_hash(s: &str) -> String {
    // FNV-1a: only needs to keep concurrent execs' socket names apart.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// libcontainer leaves a `tenant-tty-*.sock` symlink to the console socket
/// in the container's state dir for every tty exec; remove ours.
fn remove_tenant_links(container_dir: &Path, target: &Path) {
    let Ok(entries) = std::fs::read_dir(container_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("tenant-tty-")
            && std::fs::read_link(e.path()).is_ok_and(|t| t == target)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The capabilities in the shim's own bounding set: what a privileged
/// exec gets (Docker gives every capability; the shim cannot give more
/// than it holds).
fn held_capabilities() -> Vec<String> {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    berth_oci::caps::ALL_CAPABILITIES
        .iter()
        .filter(|(_, bit)| mask & (1u64 << bit) != 0)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

/// The OCI `process` for an exec: the container's own, with what the
/// request decides replaced. Docker's exec keeps the container's
/// capabilities, rlimits, no-new-privileges and security labels; a
/// privileged exec gets `all_caps` in its bounding, effective and
/// permitted sets.
fn exec_process(
    spec: &Value,
    req: &ExecRequest,
    uid: u32,
    gid: u32,
    all_caps: Option<&[String]>,
) -> Value {
    let mut p = spec
        .get("process")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let o = p.as_object_mut().expect("an object");
    o.insert("args".into(), json!(req.args));
    o.insert("env".into(), json!(req.env));
    o.insert("cwd".into(), json!(req.cwd));
    o.insert("terminal".into(), json!(req.tty));
    o.remove("consoleSize");
    o.remove("commandLine");
    let mut user = o
        .get("user")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    user["uid"] = json!(uid);
    user["gid"] = json!(gid);
    let u = user.as_object_mut().expect("an object");
    u.remove("username");
    if req.additional_gids.is_empty() {
        u.remove("additionalGids");
    } else {
        u.insert("additionalGids".into(), json!(req.additional_gids));
    }
    o.insert("user".into(), user);
    if let Some(all) = all_caps {
        let caps = o.entry("capabilities").or_insert_with(|| json!({}));
        if !caps.is_object() {
            *caps = json!({});
        }
        for set in ["bounding", "effective", "permitted"] {
            caps[set] = json!(all);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ExecRequest {
        ExecRequest {
            id: "e1".into(),
            args: vec!["sh".into(), "-c".into(), "id".into()],
            env: vec!["PATH=/bin".into(), "A=b".into()],
            cwd: "/tmp".into(),
            user: "65534:65534".into(),
            additional_gids: vec![],
            tty: false,
            stdin: false,
            privileged: false,
            console_size: None,
        }
    }

    fn container_spec() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": true,
                "consoleSize": {"height": 24, "width": 80},
                "user": {"uid": 0, "gid": 0, "additionalGids": [10], "umask": 18},
                "args": ["sleep", "100"],
                "env": ["PATH=/usr/bin", "HOSTNAME=x"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_CHOWN"],
                    "effective": ["CAP_CHOWN"],
                    "permitted": ["CAP_CHOWN"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true,
                "oomScoreAdj": 5
            }
        })
    }

    #[test]
    fn exec_process_keeps_the_containers_confinement() {
        let p = exec_process(&container_spec(), &req(), 65534, 65534, None);
        assert_eq!(p["args"], json!(["sh", "-c", "id"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=b"]));
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["terminal"], false);
        assert!(p.get("consoleSize").is_none());
        assert_eq!(p["user"], json!({"uid": 65534, "gid": 65534, "umask": 18}));
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_CHOWN"]));
        assert_eq!(p["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["oomScoreAdj"], 5);
    }

    #[test]
    fn privileged_exec_gets_all_capabilities() {
        let mut r = req();
        r.privileged = true;
        r.tty = true;
        r.additional_gids = vec![4, 5];
        let all = vec!["CAP_CHOWN".to_string(), "CAP_SYS_ADMIN".to_string()];
        let p = exec_process(&container_spec(), &r, 0, 0, Some(&all));
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(p["capabilities"][set], json!(all), "{set}");
        }
        assert_eq!(p["terminal"], true);
        assert_eq!(p["user"]["additionalGids"], json!([4, 5]));
        let bare = exec_process(&json!({}), &r, 0, 0, Some(&all));
        assert_eq!(bare["capabilities"]["effective"], json!(all));
    }

    #[test]
    fn users_and_ids() {
        assert_eq!(parse_user("").unwrap(), (0, 0));
        assert_eq!(parse_user("1000").unwrap(), (1000, 0));
        assert_eq!(parse_user("1000:50").unwrap(), (1000, 50));
        assert!(parse_user("nobody").is_err());
        assert!(validate_exec_id("0123abcd").is_ok());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(validate_exec_id(bad).is_err(), "{bad}");
        }
        assert_ne!(short_hash("a"), short_hash("b"));
    }

    #[test]
    fn execs_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_execs_file(dir.path(), "x").unwrap(), None);
        let mut m = BTreeMap::new();
        let s = ExecStateReply {
            running: false,
            pid: 7,
            exit_code: Some(5),
        };
        m.insert("x", s);
        write_execs_file(dir.path(), &m).unwrap();
        assert_eq!(read_execs_file(dir.path(), "x").unwrap(), Some(s));
        assert_eq!(read_execs_file(dir.path(), "y").unwrap(), None);
    }
}
