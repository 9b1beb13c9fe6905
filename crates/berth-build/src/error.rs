//! Errors of the Dockerfile front end. Every problem found in a Dockerfile
//! is reported with the file name, the (first) line of the instruction and
//! the instruction keyword, in the shape users know from Docker:
//! `Dockerfile:7: EXPOSE: invalid port "80x"`.

use berth_core::{ErrorKind, HasKind};

use crate::expand::ExpandError;

/// What is wrong, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: {0}")]
    MissingFlagValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    BadBool { flag: String, value: String },
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token {0:?} does not match ` or \\")]
    InvalidEscape(String),
    #[error("unterminated heredoc {0:?}")]
    UnterminatedHeredoc(String),
    #[error("{0}")]
    Arguments(String),
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    #[error("invalid duration {0:?}")]
    InvalidDuration(String),
    #[error("{0}")]
    Mount(String),
    #[error("{0}")]
    Expand(#[from] ExpandError),
}

/// A problem in a Dockerfile, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {prefix}{reason}", prefix = .instruction.as_deref().map(|i| format!("{i}: ")).unwrap_or_default())]
pub struct DockerfileError {
    /// The Dockerfile's name as given to the parser (usually `Dockerfile`).
    pub file: String,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Upper-case keyword of the instruction, when known.
    pub instruction: Option<String>,
    pub reason: Reason,
}

impl HasKind for DockerfileError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Where an error happened, to be attached to a [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc<'a> {
    pub file: &'a str,
    pub line: usize,
    pub instruction: Option<&'a str>,
}

impl Loc<'_> {
    pub fn err(&self, reason: Reason) -> DockerfileError {
        DockerfileError {
            file: self.file.to_string(),
            line: self.line,
            instruction: self.instruction.map(str::to_ascii_uppercase),
            reason,
        }
    }
}
