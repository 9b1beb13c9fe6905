//! Error kinds shared by every crate. Each module keeps its own `thiserror`
//! enum and says which kind each variant is; the API maps kinds to HTTP
//! status codes in one place and the CLI maps them to exit codes.

/// The category of a failure, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    Conflict,
    InvalidArgument,
    FailedPrecondition,
    Unauthorized,
    Forbidden,
    Unavailable,
    NotImplemented,
    Internal,
}

impl ErrorKind {
    /// The HTTP status the Docker Engine API uses for this kind of failure.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::FailedPrecondition => 409,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Internal => 500,
        }
    }
}

/// Implemented by every error type that crosses a crate boundary.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

impl HasKind for std::io::Error {
    fn kind(&self) -> ErrorKind {
        match std::io::Error::kind(self) {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Internal,
        }
    }
}
