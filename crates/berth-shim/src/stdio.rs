//! The container's stdio as the shim holds it.
//!
//! Without a tty the container gets three pipes (stdin is `/dev/null`
//! unless `--stdin`), and the shim keeps the other ends. With a tty the
//! runtime creates the pty inside the container (after pivot_root, so the
//! slave lives on the container's devpts) and sends the master back over a
//! console socket with `SCM_RIGHTS`; the shim then owns only the master.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::pipe2;

use crate::error::ShimError;

/// The shim's ends of the container's stdio.
pub enum ContainerIo {
    Pipes {
        /// Write end of the container's stdin, when it was asked for.
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Pty {
        master: OwnedFd,
    },
}

/// The ends handed to the container.
pub struct ChildStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Pipes for a container without a tty. Every end is close-on-exec: the
/// runtime dup2()s the child ends onto 0, 1, 2, which clears the flag there.
pub fn pipes(open_stdin: bool) -> Result<(ContainerIo, ChildStdio), ShimError> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("create stdio pipe", e));
    let (stdin_child, stdin_shim) = if open_stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").map_err(|e| ShimError::io("open /dev/null", e))?;
        (OwnedFd::from(null), None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((
        ContainerIo::Pipes {
            stdin: stdin_shim,
            stdout: out_r,
            stderr: err_r,
        },
        ChildStdio {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
    ))
}

/// Receive the pty master the runtime sent over the console socket.
pub fn recv_pty_master(listener: &UnixListener) -> Result<OwnedFd, ShimError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| ShimError::io("console socket", e))?;
    let (conn, _) = listener
        .accept()
        .map_err(|e| ShimError::io("runtime never connected to the console socket", e))?;
    conn.set_nonblocking(false)
        .map_err(|e| ShimError::io("console socket", e))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ShimError::sys("receive pty master", e))?;
    let mut master = None;
    for c in msg
        .cmsgs()
        .map_err(|e| ShimError::sys("receive pty master", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor in our
                // table for this message; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if master.is_none() {
                    master = Some(owned);
                }
            }
        }
    }
    master.ok_or_else(|| ShimError::Protocol("console socket message carried no descriptor".into()))
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), ShimError> {
    let flags =
        fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| ShimError::sys("F_GETFL", e))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(|e| ShimError::sys("F_SETFL", e))?;
    Ok(())
}

/// TIOCSWINSZ on the pty master; the kernel sends SIGWINCH to the
/// terminal's foreground process group.
pub fn set_window_size(master: &impl AsFd, height: u16, width: u16) -> Result<(), ShimError> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which
    // points at a live local for the duration of the call.
    let rc = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(ShimError::sys("set pty window size", nix::Error::last()));
    }
    Ok(())
}
