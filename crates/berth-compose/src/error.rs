//! The loader's one error: which file, where in it (a dotted key path such
//! as `services.web.deploy.replicas`, or a line for YAML syntax), and what.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The file as the user named it (`compose.yml`), or several joined by
    /// `, ` when the fault is in their merged model.
    pub file: String,
    /// Key path, empty when the fault is the whole file.
    pub path: String,
    pub message: String,
}

impl Error {
    pub fn new(file: &str, path: &str, message: impl Into<String>) -> Error {
        Error {
            file: file.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// Joins a key path: `services` + `web` → `services.web`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A sequence index: `services.web.ports` + 0 → `services.web.ports[0]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
