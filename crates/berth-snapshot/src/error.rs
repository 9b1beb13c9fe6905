//! The error type shared by layer apply and diff.

use std::io;
use std::path::PathBuf;

use berth_core::{ErrorKind, HasKind};

/// A failure while applying or writing a layer tar.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry would write outside the layer directory.
    #[error("layer entry \"{path}\" escapes the layer root ({reason})")]
    Escape { path: String, reason: String },
    /// The entry is well formed tar but not something a layer may contain.
    #[error("layer entry \"{path}\" is invalid: {reason}")]
    Invalid { path: String, reason: String },
    /// A tar entry type berth does not unpack.
    #[error("layer entry \"{path}\" has unsupported type {kind}")]
    Unsupported { path: String, kind: String },
    /// The layer stream itself could not be read or parsed.
    #[error("reading layer stream: {source}")]
    Read {
        #[source]
        source: io::Error,
    },
    /// A filesystem operation failed.
    #[error("{op} \"{}\": {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the layer tar failed.
    #[error("writing layer stream: {source}")]
    Write {
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| LayerError::Io { op, path, source }
    }

    pub(crate) fn read(source: io::Error) -> Self {
        LayerError::Read { source }
    }
}

impl HasKind for LayerError {
    fn kind(&self) -> ErrorKind {
        match self {
            LayerError::Escape { .. }
            | LayerError::Invalid { .. }
            | LayerError::Unsupported { .. } => ErrorKind::InvalidArgument,
            LayerError::Read { source } => match source.kind() {
                io::ErrorKind::InvalidData
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::UnexpectedEof => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            LayerError::Io { .. } | LayerError::Write { .. } => ErrorKind::Internal,
        }
    }
}
