//! What the API needs from the engine, as small role traits (one per
//! resource, like moby's `router/<resource>/backend.go`). Methods are
//! blocking; the routes call them on the blocking pool.

use std::io::{Read, Write};

use tokio::sync::broadcast;

use crate::error::ApiResult;
use crate::filters::Filters;
use crate::types::*;

/// Everything the API serves.
pub trait Backend: SystemBackend + ImageBackend + Send + Sync + 'static {}
impl<T: SystemBackend + ImageBackend + Send + Sync + 'static> Backend for T {}

pub struct EventSubscription {
    /// Buffered events matching `since`.
    pub past: Vec<Event>,
    pub live: broadcast::Receiver<Event>,
}

pub trait SystemBackend {
    fn version(&self) -> Version;
    fn info(&self) -> ApiResult<Info>;
    fn disk_usage(&self) -> ApiResult<DiskUsage>;
    /// Subscribes to events; `since` (unix nanoseconds) selects buffered ones.
    fn subscribe_events(&self, since: Option<i64>) -> EventSubscription;
}

#[derive(Debug, Clone, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub filters: Filters,
    pub digests: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub source: String,
}

/// Writes an archive once the response has started.
pub type SaveJob = Box<dyn FnOnce(&mut dyn Write) -> ApiResult<()> + Send>;

pub trait ImageBackend {
    fn list_images(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>>;
    fn inspect_image(&self, name: &str) -> ApiResult<ImageInspect>;
    fn image_history(&self, name: &str) -> ApiResult<Vec<HistoryItem>>;
    fn tag_image(&self, name: &str, repo: &str, tag: Option<&str>) -> ApiResult<()>;
    fn remove_image(&self, name: &str, force: bool, noprune: bool) -> ApiResult<Vec<DeleteItem>>;
    fn prune_images(&self, filters: &Filters) -> ApiResult<ImagePruneReport>;
    /// Returns the new image ID.
    fn import_image(&self, body: Box<dyn Read + Send>, req: ImportRequest) -> ApiResult<String>;
    /// Returns the lines to report, e.g. `Loaded image: busybox:latest`.
    fn load_images(&self, body: Box<dyn Read + Send>) -> ApiResult<Vec<String>>;
    /// Resolves names now; the job streams the archive later.
    fn save_images(&self, names: &[String], format: Option<&str>) -> ApiResult<SaveJob>;
}
