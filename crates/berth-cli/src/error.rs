//! Errors the CLI reports, worded as Docker's CLI words them.

use std::fmt;

/// The engine answered with an error status (or an error in a JSON message
/// stream): printed as `Error response from daemon: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// The engine could not be reached at all.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub host: String,
    pub detail: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot connect to the berth engine at {}. Is the daemon running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// The command already reported its failures; exit with this status.
#[derive(Debug, Clone, Copy)]
pub struct ExitStatus(pub i32);

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

/// Maps a bollard error onto the CLI's errors.
pub fn from_bollard(e: bollard::errors::Error, host: &str) -> anyhow::Error {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError {
            status_code,
            message,
        } => ApiError {
            status: status_code,
            message: server_message(&message),
        }
        .into(),
        B::DockerStreamError { error } => ApiError {
            status: 200,
            message: error,
        }
        .into(),
        B::SocketNotFoundError(path) => ConnectError {
            host: host.to_string(),
            detail: format!("socket not found: {path}"),
        }
        .into(),
        B::HyperLegacyError { err } if err.is_connect() => ConnectError {
            host: host.to_string(),
            detail: err.to_string(),
        }
        .into(),
        B::RequestTimeoutError => anyhow::anyhow!("timed out waiting for the engine at {host}"),
        other => anyhow::Error::new(other),
    }
}

/// bollard passes the body through when it is not `{"message": ...}`.
pub fn server_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    match serde_json::from_str::<Msg>(body) {
        Ok(m) => m.message,
        Err(_) => body.trim().to_string(),
    }
}

/// True when `e` is an API error with HTTP status `status`.
pub fn is_status(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status == status)
}
