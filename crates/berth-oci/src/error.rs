//! Why a set of create options cannot become a runtime spec.
//!
//! Every variant but [`SpecError::Build`] is a user mistake (a bad flag value),
//! reported as `InvalidArgument` with the offending value named.

use berth_core::{ErrorKind, HasKind};

/// A failure while turning create options into an OCI runtime spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `--cap-add` / `--cap-drop` named something that is not a Linux capability.
    #[error("unknown capability: \"{0}\"")]
    UnknownCapability(String),
    /// A `--sysctl` outside Docker's namespaced allow-list, or one whose
    /// namespace the container shares with the host.
    #[error("sysctl \"{name}\" is not allowed: {reason}")]
    SysctlRefused { name: String, reason: String },
    /// A `--ulimit` with an unknown name or soft above hard.
    #[error("invalid ulimit \"{name}\": {reason}")]
    InvalidUlimit { name: String, reason: String },
    /// `--user` / `--group-add` could not be resolved in the image.
    #[error("unable to find {what} \"{name}\": {reason}")]
    UserNotFound {
        what: &'static str,
        name: String,
        reason: String,
    },
    /// A resource limit Docker would refuse (too small, conflicting).
    #[error("invalid resources: {0}")]
    InvalidResources(String),
    /// A mount with a relative destination, an unknown option, and the like.
    #[error("invalid mount \"{destination}\": {reason}")]
    InvalidMount { destination: String, reason: String },
    /// A `--device` entry that cannot be expressed.
    #[error("invalid device \"{path}\": {reason}")]
    InvalidDevice { path: String, reason: String },
    /// A custom seccomp profile that is not valid moby-format JSON.
    #[error("invalid seccomp profile: {reason}")]
    InvalidSeccomp { reason: String },
    /// Any other input field out of range (empty args, relative cwd, ...).
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    /// oci-spec refused to build one of its types: a bug in this crate.
    #[error("building the runtime spec")]
    Build {
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl From<oci_spec::OciSpecError> for SpecError {
    fn from(source: oci_spec::OciSpecError) -> Self {
        SpecError::Build { source }
    }
}

impl HasKind for SpecError {
    fn kind(&self) -> ErrorKind {
        match self {
            SpecError::Build { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
