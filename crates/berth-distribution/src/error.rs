use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The registry has no such manifest (`MANIFEST_UNKNOWN`, 404).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry answered something the protocol does not allow.
    #[error("{0}")]
    Protocol(String),
    #[error("{context}: {source}")]
    Http {
        context: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
}

impl DistributionError {
    pub(crate) fn http(context: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let context = context.into();
        move |source| DistributionError::Http { context, source }
    }
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| DistributionError::Io { context, source }
    }
    /// Worth another attempt (a broken connection, not a refusal).
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            DistributionError::Http { .. } | DistributionError::Io { .. }
        )
    }
}

impl HasKind for DistributionError {
    fn kind(&self) -> ErrorKind {
        match self {
            DistributionError::NotFound(_) => ErrorKind::NotFound,
            DistributionError::Unauthorized(_) => ErrorKind::Unauthorized,
            DistributionError::Forbidden(_) => ErrorKind::Forbidden,
            DistributionError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            DistributionError::Protocol(_) | DistributionError::Http { .. } => {
                ErrorKind::Unavailable
            }
            DistributionError::Io { .. } => ErrorKind::Internal,
            DistributionError::Image(e) => e.kind(),
            DistributionError::Content(e) => e.kind(),
        }
    }
}
