//! The shim's errors. Each variant says its [`ErrorKind`]; the control
//! socket and `berth shim start` send the kind along with the message so the
//! daemon can map it once more at its own boundary.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

use berth_core::{ErrorKind, HasKind};

use crate::exec_failure::ExecFailure;
use crate::protocol::{self, ErrorReply};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("invalid shim arguments: {0}")]
    InvalidArgs(String),

    #[error("bundle config {path}: {reason}")]
    BundleConfig { path: PathBuf, reason: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },

    /// The runtime (libcontainer or the external one) refused or failed; the
    /// message keeps the whole cause chain because libcontainer's errors are
    /// terse at the top. When the container's process itself could not be
    /// started, `exec_failure` says why (the executor's marker, taken out of
    /// the message).
    #[error("container {id}: {op}: {message}")]
    Runtime {
        id: String,
        op: &'static str,
        message: String,
        exec_failure: Option<ExecFailure>,
    },

    /// Creating the container failed and so did removing what was created.
    #[error("{error}; cleanup also failed: {cleanup}")]
    CreateAndCleanup {
        #[source]
        error: Box<ShimError>,
        cleanup: String,
    },

    /// The request does not fit the container's state or configuration.
    #[error("container {id}: {reason}")]
    FailedPrecondition { id: String, reason: String },

    #[error("invalid signal {0}")]
    InvalidSignal(i32),

    #[error("no such exec: {0}")]
    ExecNotFound(String),

    #[error("exec {0} already exists")]
    ExecExists(String),

    #[error("{0} is not implemented by this shim")]
    NotImplemented(String),

    /// `berth shim start` failed before reporting a container.
    #[error("shim start failed: {message}")]
    Start {
        kind: ErrorKind,
        message: String,
        exec_failure: Option<ExecFailure>,
    },

    #[error("shim socket {path} unreachable: {source}")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("shim protocol error: {0}")]
    Protocol(String),

    /// An error the shim reported over its socket.
    #[error("{message}")]
    Remote {
        kind: ErrorKind,
        message: String,
        exec_failure: Option<ExecFailure>,
    },
}

impl ShimError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        ShimError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        ShimError::Sys {
            what: what.into(),
            source,
        }
    }

    /// A runtime error; this is where an executor's failure marker is
    /// read (and taken out of the text), once.
    pub(crate) fn runtime(id: &str, op: &'static str, err: &dyn StdError) -> Self {
        let mut message = chain(err);
        let exec_failure = ExecFailure::take_from(&mut message);
        ShimError::Runtime {
            id: id.to_owned(),
            op,
            message,
            exec_failure,
        }
    }

    /// A runtime error the shim words itself.
    pub(crate) fn runtime_msg(id: &str, op: &'static str, message: impl Into<String>) -> Self {
        ShimError::Runtime {
            id: id.to_owned(),
            op,
            message: message.into(),
            exec_failure: None,
        }
    }

    /// Why the container's process could not be started, when that is
    /// what failed: here in the shim, or as the shim reported it.
    pub fn exec_failure(&self) -> Option<ExecFailure> {
        match self {
            ShimError::Runtime { exec_failure, .. }
            | ShimError::Start { exec_failure, .. }
            | ShimError::Remote { exec_failure, .. } => *exec_failure,
            ShimError::CreateAndCleanup { error, .. } => error.exec_failure(),
            _ => None,
        }
    }

    /// The error as the control socket and `berth shim start` send it.
    pub(crate) fn reply(&self) -> ErrorReply {
        ErrorReply {
            error: self.to_string(),
            kind: protocol::kind_to_str(self.kind()).to_owned(),
            exec_failure: self.exec_failure(),
        }
    }

    /// An error reply read back on the daemon's side.
    pub(crate) fn from_reply(reply: ErrorReply) -> Self {
        ShimError::Remote {
            kind: protocol::kind_from_str(&reply.kind),
            message: reply.error,
            exec_failure: reply.exec_failure,
        }
    }
}

impl HasKind for ShimError {
    fn kind(&self) -> ErrorKind {
        match self {
            ShimError::InvalidArgs(_)
            | ShimError::BundleConfig { .. }
            | ShimError::InvalidSignal(_) => ErrorKind::InvalidArgument,
            ShimError::Io { source, .. } => HasKind::kind(source),
            ShimError::Sys { source, .. } => match source {
                nix::Error::ESRCH | nix::Error::ENOENT => ErrorKind::NotFound,
                nix::Error::EPERM | nix::Error::EACCES => ErrorKind::Forbidden,
                nix::Error::EINVAL => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            ShimError::Runtime { .. } | ShimError::Protocol(_) => ErrorKind::Internal,
            ShimError::Start { kind, .. } => *kind,
            ShimError::CreateAndCleanup { error, .. } => error.kind(),
            ShimError::FailedPrecondition { .. } => ErrorKind::FailedPrecondition,
            ShimError::ExecNotFound(_) => ErrorKind::NotFound,
            ShimError::ExecExists(_) => ErrorKind::AlreadyExists,
            ShimError::NotImplemented(_) => ErrorKind::NotImplemented,
            ShimError::Unreachable { .. } => ErrorKind::Unavailable,
            ShimError::Remote { kind, .. } => *kind,
        }
    }
}

/// Render an error and all its sources as `top: cause: root cause`,
/// skipping a source whose text the previous message already contains.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
