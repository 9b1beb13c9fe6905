//! The shim's single-threaded event loop.
//!
//! One `poll(2)` over: a signalfd for SIGCHLD (the shim is the container
//! init's parent, and a child subreaper for runtimes that double-fork), the
//! control socket, the container's output (pipes or the pty master), the
//! container's stdin when it has bytes queued, and every client connection.
//! Nothing blocks except `poll` itself: output fans out to the json-file log
//! and to attached clients through per-client buffers, and a client that
//! falls too far behind is dropped rather than stalling the container.
//!
//! Processes started with `exec` ([`exec`]) are children of the shim too,
//! reaped from the same signalfd, each with its own stdio and stream.
//!
//! Lifecycle: running → init reaped (exit known, `state` says `exited`) →
//! output drained to EOF or for at most [`DRAIN_TIMEOUT`] → runtime delete
//! (cgroups go away) → `exit.json` → socket removed → waiters answered,
//! attachers flushed and closed → the shim exits.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

mod exec;

pub use exec::{read_execs_file, EXECS_FILE};

use crate::error::ShimError;
use crate::exit;
use crate::logs::{JsonFileLog, LineSplitter};
use crate::protocol::{self, OkReply, Request, StateReply, Status, StreamType};
use crate::runtime::Runtime;
use crate::stdio::{self, ContainerIo};

/// How long output may keep flowing after the init process exited (a
/// process outside the container's pid namespace may hold the pipe).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// An attacher more than this far behind is disconnected.
const MAX_CLIENT_BACKLOG: usize = 4 << 20;
const MAX_REQUEST: usize = 64 << 10;
const READ_CHUNK: usize = 32 << 10;

struct Output {
    fd: OwnedFd,
    stream: StreamType,
    lines: LineSplitter,
    eof: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Waiting,
    Attached { stdin: bool },
    Replied,
}

struct Client {
    stream: UnixStream,
    phase: Phase,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    read_closed: bool,
    dead: bool,
}

struct Exited {
    code: i32,
    signal: Option<i32>,
    at: DateTime<Utc>,
    oom_killed: bool,
}

/// Everything the loop owns for one running container.
pub struct Shim {
    pub id: String,
    pub state_dir: PathBuf,
    pub socket_path: PathBuf,
    pub runtime: Runtime,
    pub pid: Pid,
    pub tty: bool,
    pub memory_cgroup: Option<PathBuf>,
    pub log: JsonFileLog,
    listener: Option<UnixListener>,
    sigfd: SignalFd,
    outputs: Vec<Output>,
    /// The container's stdin (pipe write end, or the pty master).
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    close_stdin: bool,
    /// The pty master, for resize.
    pty: Option<OwnedFd>,
    clients: Vec<Client>,
    paused: bool,
    exited: Option<Exited>,
    drain_deadline: Option<Instant>,
    log_failed: bool,
    execs: Vec<exec::Exec>,
    /// The container's bundle as the daemon wrote it (execs start from
    /// its `process`), and its seccomp filter, set after [`Shim::new`].
    pub bundle: PathBuf,
    pub(crate) confinement: crate::workload::Confinement,
}

enum Slot {
    Signal,
    Listener,
    Output(usize),
    Stdin,
    Client(usize),
    ExecOutput(usize, usize),
    ExecStdin(usize),
    ExecConn(usize),
}

impl Shim {
    /// Take over a started container. SIGCHLD must be blocked before the
    /// signalfd sees it; anything that exited earlier is reaped on the
    /// first pass of the loop.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        state_dir: PathBuf,
        socket_path: PathBuf,
        listener: UnixListener,
        runtime: Runtime,
        pid: Pid,
        io: ContainerIo,
        open_stdin: bool,
        memory_cgroup: Option<PathBuf>,
        log: JsonFileLog,
    ) -> Result<Self, ShimError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()
            .map_err(|e| ShimError::sys("block SIGCHLD", e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| ShimError::sys("signalfd", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ShimError::io("control socket", e))?;
        let (outputs, stdin, pty, tty) = match io {
            ContainerIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                let outputs = vec![
                    Output {
                        fd: stdout,
                        stream: StreamType::Stdout,
                        lines: LineSplitter::default(),
                        eof: false,
                    },
                    Output {
                        fd: stderr,
                        stream: StreamType::Stderr,
                        lines: LineSplitter::default(),
                        eof: false,
                    },
                ];
                (outputs, stdin, None, false)
            }
            ContainerIo::Pty { master } => {
                let reader = master
                    .try_clone()
                    .map_err(|e| ShimError::io("dup pty master", e))?;
                let stdin = if open_stdin {
                    Some(
                        master
                            .try_clone()
                            .map_err(|e| ShimError::io("dup pty master", e))?,
                    )
                } else {
                    None
                };
                let outputs = vec![Output {
                    fd: reader,
                    stream: StreamType::Stdout,
                    lines: LineSplitter::default(),
                    eof: false,
                }];
                (outputs, stdin, Some(master), true)
            }
        };
        for o in &outputs {
            stdio::set_nonblocking(o.fd.as_fd())?;
        }
        if let Some(s) = &stdin {
            stdio::set_nonblocking(s.as_fd())?;
        }
        Ok(Shim {
            id,
            state_dir,
            socket_path,
            runtime,
            pid,
            tty,
            memory_cgroup,
            log,
            listener: Some(listener),
            sigfd,
            outputs,
            stdin,
            stdin_pending: Vec::new(),
            close_stdin: false,
            pty,
            clients: Vec::new(),
            paused: false,
            exited: None,
            drain_deadline: None,
            log_failed: false,
            execs: Vec::new(),
            bundle: PathBuf::new(),
            confinement: Default::default(),
        })
    }

    /// Serve until the container has exited and everything is recorded.
    pub fn run(mut self) {
        self.reap();
        loop {
            if let Some(deadline) = self.drain_deadline {
                if self.outputs.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
            let deadline = [self.drain_deadline, self.execs_deadline()]
                .into_iter()
                .flatten()
                .min();
            let timeout = match deadline {
                Some(d) => {
                    let ms = d
                        .saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(60_000) as u16;
                    PollTimeout::from(ms.max(1))
                }
                None => PollTimeout::NONE,
            };
            let ready = match self.poll_once(timeout) {
                Ok(r) => r,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(id = %self.id, error = %e, "poll failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            for (slot, revents) in ready {
                match slot {
                    Slot::Signal => self.reap(),
                    Slot::Listener => self.accept(),
                    Slot::Output(i) => self.read_output(i),
                    Slot::Stdin => self.flush_stdin(),
                    Slot::Client(i) => self.client_ready(i, revents),
                    Slot::ExecOutput(e, i) => self.exec_read_output(e, i),
                    Slot::ExecStdin(e) => self.exec_stdin_ready(e),
                    Slot::ExecConn(e) => self.exec_conn_ready(e, revents),
                }
            }
            self.execs_tick();
            self.clients.retain(|c| !c.dead);
            self.outputs.retain(|o| !o.eof);
        }
        self.finish();
    }

    fn poll_once(&self, timeout: PollTimeout) -> Result<Vec<(Slot, PollFlags)>, Errno> {
        let mut slots = Vec::new();
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        slots.push(Slot::Signal);
        fds.push(PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN));
        if let Some(l) = &self.listener {
            slots.push(Slot::Listener);
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        for (i, o) in self.outputs.iter().enumerate() {
            slots.push(Slot::Output(i));
            fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(s), false) = (&self.stdin, self.stdin_pending.is_empty()) {
            slots.push(Slot::Stdin);
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if self.wants_read(c) {
                ev |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            slots.push(Slot::Client(i));
            fds.push(PollFd::new(c.stream.as_fd(), ev));
        }
        for (e, x) in self.execs.iter().enumerate() {
            x.poll_fds(e, &mut slots, &mut fds);
        }
        poll(&mut fds, timeout)?;
        Ok(slots
            .into_iter()
            .zip(fds.iter())
            .filter_map(|(s, fd)| fd.revents().filter(|r| !r.is_empty()).map(|r| (s, r)))
            .collect())
    }

    fn wants_read(&self, c: &Client) -> bool {
        match c.phase {
            Phase::Request | Phase::Waiting => true,
            // Backpressure: stop reading stdin bytes while the container
            // has not consumed the previous ones.
            Phase::Attached { stdin } => {
                !c.read_closed && (!stdin || self.stdin_pending.is_empty())
            }
            Phase::Replied => false,
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid");
                    break;
                }
                Ok(status) if status.pid() == Some(self.pid) => {
                    if let Some((code, signal)) = exit::exit_of(status) {
                        // Read the OOM counter now: delete removes the cgroup.
                        let oom_killed = self
                            .memory_cgroup
                            .as_deref()
                            .map(exit::oom_killed)
                            .unwrap_or(false);
                        tracing::info!(id = %self.id, code, ?signal, oom_killed, "container exited");
                        self.exited = Some(Exited {
                            code,
                            signal,
                            at: Utc::now(),
                            oom_killed,
                        });
                        self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                    }
                }
                Ok(status) => self.exec_reaped(status),
            }
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        tracing::warn!(error = %e, "control connection");
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        phase: Phase::Request,
                        inbuf: Vec::new(),
                        out: Vec::new(),
                        read_closed: false,
                        dead: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "accept on control socket");
                    break;
                }
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match nix::unistd::read(self.outputs[i].fd.as_raw_fd(), &mut buf) {
            Ok(n) => n,
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => return,
            // EIO: the pty's last slave descriptor closed.
            Err(_) => 0,
        };
        let now = Utc::now();
        let stream = self.outputs[i].stream;
        if n == 0 {
            let mut lines = std::mem::take(&mut self.outputs[i].lines);
            lines.finish(&mut |l| self.log_entry(stream, l, now));
            // Removed after this round of events, keeping indices valid.
            self.outputs[i].eof = true;
            return;
        }
        let data = &buf[..n];
        let mut lines = std::mem::take(&mut self.outputs[i].lines);
        lines.push(data, &mut |l| self.log_entry(stream, l, now));
        self.outputs[i].lines = lines;
        let mut framed = Vec::new();
        if !self.tty {
            framed.extend_from_slice(&protocol::frame_header(stream, n as u32));
        }
        framed.extend_from_slice(data);
        for c in self
            .clients
            .iter_mut()
            .filter(|c| matches!(c.phase, Phase::Attached { .. }))
        {
            c.out.extend_from_slice(&framed);
            if c.out.len() > MAX_CLIENT_BACKLOG {
                tracing::warn!(id = %self.id, "attached client too slow, disconnecting it");
                c.dead = true;
            } else {
                flush_client(c);
            }
        }
    }

    fn log_entry(&mut self, stream: StreamType, line: &[u8], at: DateTime<Utc>) {
        if let Err(e) = self.log.write_entry(stream, line, at) {
            if !self.log_failed {
                tracing::error!(id = %self.id, error = %e, "writing container log");
                self.log_failed = true;
            }
        }
    }

    fn flush_stdin(&mut self) {
        if let Some(fd) = &self.stdin {
            while !self.stdin_pending.is_empty() {
                match nix::unistd::write(fd, &self.stdin_pending) {
                    Ok(n) => {
                        self.stdin_pending.drain(..n);
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => return,
                    Err(e) => {
                        // The container closed its stdin: discard input.
                        tracing::debug!(error = %e, "container stdin closed");
                        self.stdin_pending.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        } else {
            self.stdin_pending.clear();
        }
        if self.close_stdin && self.stdin_pending.is_empty() && !self.tty {
            self.stdin = None;
        }
    }

    fn client_ready(&mut self, i: usize, revents: PollFlags) {
        if revents.contains(PollFlags::POLLOUT) {
            flush_client(&mut self.clients[i]);
        }
        if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            if self.wants_read(&self.clients[i]) {
                self.client_read(i);
            } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.clients[i].dead = true;
            }
        }
    }

    fn client_read(&mut self, i: usize) {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return
            }
            Err(_) => {
                self.clients[i].dead = true;
                return;
            }
        };
        let phase = self.clients[i].phase;
        match phase {
            Phase::Request => {
                if n == 0 {
                    self.clients[i].dead = true;
                    return;
                }
                let c = &mut self.clients[i];
                c.inbuf.extend_from_slice(&buf[..n]);
                let Some(nl) = c.inbuf.iter().position(|b| *b == b'\n') else {
                    if c.inbuf.len() > MAX_REQUEST {
                        c.dead = true;
                    }
                    return;
                };
                let rest = c.inbuf.split_off(nl + 1);
                let line = std::mem::take(&mut c.inbuf);
                // What followed the request line: an exec takes it as stdin.
                c.inbuf = rest.clone();
                self.handle_request(i, &line);
                if let (Phase::Attached { stdin: true }, false) =
                    (self.clients[i].phase, rest.is_empty())
                {
                    self.queue_stdin(&rest);
                }
            }
            Phase::Waiting => {
                if n == 0 {
                    self.clients[i].dead = true;
                }
            }
            Phase::Attached { stdin } => {
                if n == 0 {
                    self.clients[i].read_closed = true;
                    if stdin {
                        self.close_stdin = true;
                        self.flush_stdin();
                    }
                } else if stdin {
                    self.queue_stdin(&buf[..n]);
                }
            }
            Phase::Replied => {}
        }
    }

    fn queue_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() {
            self.stdin_pending.extend_from_slice(data);
            self.flush_stdin();
        }
    }

    fn handle_request(&mut self, i: usize, line: &[u8]) {
        let reply = match serde_json::from_slice::<Request>(line) {
            Err(e) => Err(ShimError::Protocol(format!("bad request: {e}"))),
            Ok(Request::State) => Ok(to_line(&self.state())),
            Ok(Request::Wait) => {
                self.clients[i].phase = Phase::Waiting;
                return;
            }
            Ok(Request::Attach { stdin }) => {
                self.clients[i].phase = Phase::Attached { stdin };
                let c = &mut self.clients[i];
                c.out.extend_from_slice(&to_line(&OkReply { ok: true }));
                flush_client(c);
                return;
            }
            Ok(Request::Kill { signal, all }) => self
                .running()
                .and_then(|_| self.runtime.kill(signal, all))
                .map(|_| ok_line()),
            Ok(Request::Resize { height, width }) => match &self.pty {
                Some(m) => stdio::set_window_size(m, height, width).map(|_| ok_line()),
                None => Err(self.precondition("has no tty")),
            },
            Ok(Request::Pause) => self.running().and_then(|_| self.runtime.pause()).map(|_| {
                self.paused = true;
                ok_line()
            }),
            Ok(Request::Resume) => self.running().and_then(|_| self.runtime.resume()).map(|_| {
                self.paused = false;
                ok_line()
            }),
            Ok(Request::Exec(req)) => match self.start_exec(i, req) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Ok(Request::ExecState { id }) => self.exec_state(&id).map(|s| to_line(&s)),
            Ok(Request::ExecResize { id, height, width }) => {
                self.exec_resize(&id, height, width).map(|_| ok_line())
            }
            Ok(Request::ExecKill { id, signal }) => self.exec_kill(&id, signal).map(|_| ok_line()),
        };
        let c = &mut self.clients[i];
        c.phase = Phase::Replied;
        c.out
            .extend_from_slice(&reply.unwrap_or_else(|e| error_line(&e)));
        flush_client(c);
    }

    fn precondition(&self, reason: &str) -> ShimError {
        ShimError::FailedPrecondition {
            id: self.id.clone(),
            reason: reason.to_owned(),
        }
    }

    fn running(&self) -> Result<(), ShimError> {
        match self.exited {
            Some(_) => Err(self.precondition("is not running")),
            None => Ok(()),
        }
    }

    fn state(&self) -> StateReply {
        match &self.exited {
            None => StateReply {
                status: if self.paused {
                    Status::Paused
                } else {
                    Status::Running
                },
                pid: self.pid.as_raw(),
                exit_code: None,
                exited_at: None,
                oom_killed: None,
                signal: None,
            },
            Some(e) => StateReply {
                status: Status::Exited,
                pid: self.pid.as_raw(),
                exit_code: Some(e.code),
                exited_at: Some(e.at),
                oom_killed: Some(e.oom_killed),
                signal: e.signal,
            },
        }
    }

    /// Record the exit and tear down; every step runs even if one fails.
    fn finish(mut self) {
        let now = Utc::now();
        for o in std::mem::take(&mut self.outputs) {
            let mut lines = o.lines;
            lines.finish(&mut |l| self.log_entry(o.stream, l, now));
        }
        let Some(e) = self.exited.take() else { return };
        let status = exit::exit_status(e.code, e.signal, e.oom_killed, e.at);
        // The kernel killed every exec with the pid namespace's init: reap
        // them, then close their streams and record how they ended.
        self.reap();
        self.finish_execs();
        if let Err(err) = self.runtime.delete() {
            tracing::error!(id = %self.id, error = %err, "deleting container from runtime");
        }
        if let Err(err) = exit::write_exit_file(&self.state_dir, &status) {
            tracing::error!(id = %self.id, error = %err, "writing exit file");
        }
        // Answer everyone already connected (a `wait` often races the exit),
        // then close: later connections find no socket and read exit.json.
        self.accept();
        self.listener = None;
        for i in 0..self.clients.len() {
            if self.clients[i].phase == Phase::Request {
                self.read_last_request(i, &status);
            }
        }
        if let Err(err) = std::fs::remove_file(&self.socket_path) {
            tracing::warn!(id = %self.id, error = %err, "removing control socket");
        }
        self.stdin = None;
        self.pty = None;
        let wait_reply = to_line(&status);
        for c in &mut self.clients {
            if c.phase == Phase::Waiting {
                c.out.extend_from_slice(&wait_reply);
            }
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = c.stream.write_all(&c.out);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Shim {
    /// A client that connected but had not sent its request when the
    /// container finished: give it a moment and answer from the record.
    fn read_last_request(&mut self, i: usize, status: &protocol::ExitStatus) {
        let id = self.id.clone();
        let state = self.state();
        let exec_states: Vec<_> = self
            .execs
            .iter()
            .map(|x| (x.id().to_owned(), x.state()))
            .collect();
        let c = &mut self.clients[i];
        let _ = c.stream.set_nonblocking(false);
        let _ = c.stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut byte = [0u8; 1];
        while !c.inbuf.contains(&b'\n') && c.inbuf.len() < MAX_REQUEST {
            match c.stream.read(&mut byte) {
                Ok(1) => c.inbuf.push(byte[0]),
                _ => break,
            }
        }
        let reply = match serde_json::from_slice::<Request>(
            c.inbuf.split(|b| *b == b'\n').next().unwrap_or(&[]),
        ) {
            Ok(Request::Wait) => to_line(status),
            Ok(Request::State) => to_line(&state),
            Ok(Request::ExecState { id: exec }) => {
                match exec_states.iter().find(|(x, _)| *x == exec) {
                    Some((_, s)) => to_line(s),
                    None => error_line(&ShimError::ExecNotFound(exec)),
                }
            }
            // An attacher gets its ok and then an immediate EOF.
            Ok(Request::Attach { .. }) => ok_line(),
            _ => error_line(&ShimError::FailedPrecondition {
                id,
                reason: "is not running".into(),
            }),
        };
        c.out.extend_from_slice(&reply);
        c.phase = Phase::Replied;
    }
}

fn flush_client(c: &mut Client) {
    while !c.out.is_empty() {
        match c.stream.write(&c.out) {
            Ok(0) => {
                c.dead = true;
                return;
            }
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                c.dead = true;
                return;
            }
        }
    }
    if c.phase == Phase::Replied {
        c.dead = true;
    }
}

fn to_line<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(v).expect("wire types serialize");
    line.push(b'\n');
    line
}

fn ok_line() -> Vec<u8> {
    to_line(&OkReply { ok: true })
}

fn error_line(e: &ShimError) -> Vec<u8> {
    to_line(&e.reply())
}
