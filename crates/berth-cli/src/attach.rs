//! The client side of a hijacked stream (attach, exec, `run` without `-d`):
//! the local terminal in raw mode, stdin pumped to the engine, output copied
//! to stdout/stderr — demultiplexed unless the container has a TTY — window
//! sizes sent on SIGWINCH, and signals forwarded to the container.
//!
//! Lifecycle: [`Terminal::raw`] (TTY only) → [`pump`] until the engine
//! closes the output (or the detach keys are typed) → the terminal is
//! restored when the guard drops.

use std::io::{self, Write};

use anyhow::{bail, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::conn::{Engine, Hijacked};

/// Puts a terminal in raw mode; the previous mode comes back on drop.
pub struct Terminal {
    fd: i32,
    saved: libc::termios,
}

impl Terminal {
    pub fn raw(fd: i32) -> io::Result<Terminal> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a termios owned by this frame.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // Like moby/term's MakeRaw, output processing is off too: the
        // container's TTY already turned "\n" into "\r\n".
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: valid pointer; fd is a terminal (tcgetattr succeeded).
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Terminal { fd, saved })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `raw` on the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The window size of the terminal on `fd` as (height, width).
pub fn window_size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data filled by the ioctl.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer given.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } != 0 || ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Docker's `term.ToBytes`: `ctrl-p,ctrl-q` → `[0x10, 0x11]`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_lowercase() => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("Unknown character: '{k}'"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("Unknown character: '{k}'");
        }
    }
    Ok(out)
}

/// Splits Docker's multiplexed stream: frames of an 8-byte header (stream
/// type, three zero bytes, big-endian length) and a payload.
#[derive(Default)]
pub struct Demux {
    buf: BytesMut,
}

impl Demux {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame: (stream, payload); stream 2 is stderr.
    pub fn next_frame(&mut self) -> Option<(u8, bytes::Bytes)> {
        if self.buf.len() < 8 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return None;
        }
        let kind = self.buf[0];
        self.buf.advance(8);
        Some((kind, self.buf.split_to(len).freeze()))
    }
}

fn write_out(stream: u8, data: &[u8]) -> io::Result<()> {
    if stream == 2 {
        let mut e = io::stderr().lock();
        e.write_all(data)?;
        e.flush()
    } else {
        let mut o = io::stdout().lock();
        o.write_all(data)?;
        o.flush()
    }
}

/// Copies the engine's output to stdout/stderr until it closes.
pub async fn copy_output<R: tokio::io::AsyncRead + Unpin>(mut r: R, tty: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut demux = Demux::default();
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if tty {
            write_out(1, &buf[..n])?;
            continue;
        }
        demux.push(&buf[..n]);
        while let Some((kind, data)) = demux.next_frame() {
            write_out(kind, &data)?;
        }
    }
}

/// Reads stdin on a detached OS thread, so a read blocked on a terminal
/// never holds up the exit; an empty chunk means end of input.
pub fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = stdin.read(&mut buf).unwrap_or(0);
            if tx.blocking_send(buf[..n].to_vec()).is_err() || n == 0 {
                return;
            }
        }
    });
    rx
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The engine closed the output (the process exited or was detached server-side).
    Closed,
    /// The detach keys were typed.
    Detached,
}

/// Finds the detach sequence in typed input; partial matches carry over.
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// Returns the bytes to forward, and whether the sequence completed.
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Runs a hijacked stream: stdin (when `stdin`) to the engine, output to
/// the terminal, until the output closes or the detach keys are typed.
pub async fn pump(
    h: Hijacked,
    tty: bool,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
) -> Result<StreamEnd> {
    let Hijacked { output, input } = h;
    let out = copy_output(output, tty);
    tokio::pin!(out);
    let (Some(mut input), true) = (input, stdin) else {
        out.await?;
        return Ok(StreamEnd::Closed);
    };
    let mut chunks = stdin_chunks();
    let mut scanner = EscapeScanner::new(if tty {
        detach_keys.unwrap_or_else(|| vec![0x10, 0x11])
    } else {
        Vec::new()
    });
    let mut stdin_open = true;
    loop {
        tokio::select! {
            r = &mut out => {
                r?;
                return Ok(StreamEnd::Closed);
            }
            chunk = chunks.recv(), if stdin_open => {
                match chunk {
                    Some(c) if !c.is_empty() => {
                        let (data, detach) = scanner.scan(&c);
                        if !data.is_empty() && input.write_all(&data).await.is_err() {
                            stdin_open = false;
                        }
                        if detach {
                            return Ok(StreamEnd::Detached);
                        }
                    }
                    _ => {
                        // Half-close, so the process sees end of input (Docker's CloseWrite).
                        let _ = input.shutdown().await;
                        stdin_open = false;
                    }
                }
            }
        }
    }
}

/// Sends the terminal size now and again on every SIGWINCH; never returns.
pub async fn follow_resize(e: &Engine, path: String) {
    let send = |h: u16, w: u16| {
        let p = format!("{path}?h={h}&w={w}");
        async move {
            let _ = e
                .raw(hyper::Method::POST, &p, crate::conn::empty_body(), &[])
                .await;
        }
    };
    if let Some((h, w)) = window_size(1) {
        send(h, w).await;
    }
    let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return std::future::pending().await;
    };
    while sig.recv().await.is_some() {
        if let Some((h, w)) = window_size(1) {
            send(h, w).await;
        }
    }
    std::future::pending().await
}

/// Forwards the signals a user sends to the CLI to the container
/// (`POST /containers/{id}/kill?signal=`); never returns.
pub async fn proxy_signals(e: &Engine, id: &str) {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    for (kind, name) in kinds {
        if let Ok(mut s) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        return;
                    }
                }
            });
        }
    }
    while let Some(name) = rx.recv().await {
        let p = format!("/containers/{id}/kill?signal={name}");
        let _ = e
            .raw(hyper::Method::POST, &p, crate::conn::empty_body(), &[])
            .await;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demultiplexes_frames_across_chunks() {
        let mut d = Demux::default();
        d.push(&[1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b']);
        assert_eq!(d.next_frame(), None);
        d.push(&[b'c', 2, 0, 0, 0, 0, 0, 0, 1, b'e']);
        assert_eq!(d.next_frame(), Some((1, bytes::Bytes::from_static(b"abc"))));
        assert_eq!(d.next_frame(), Some((2, bytes::Bytes::from_static(b"e"))));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn detach_keys() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            vec![0x10, 0x11]
        );
        assert_eq!(parse_detach_keys("ctrl-@,a").unwrap(), vec![0, b'a']);
        assert!(parse_detach_keys("ctrl-ab").is_err());
        let mut s = EscapeScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.scan(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.scan(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.scan(b"\x10\x11rest"), (Vec::new(), true));
    }
}
