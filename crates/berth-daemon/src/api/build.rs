//! The build role of the API backend.

use berth_api::backend::{
    BuildBackend, BuildFailure, BuildMessage, BuildPruneReport, BuildPruneRequest, BuildRequest,
};
use berth_api::ApiError;

use super::Api;

impl BuildBackend for Api {
    fn build(
        &self,
        context: Box<dyn std::io::Read + Send>,
        req: BuildRequest,
        progress: &mut dyn FnMut(BuildMessage),
    ) -> Result<String, BuildFailure> {
        self.builds.build(context, req, progress)
    }

    fn prune_build_cache(&self, req: BuildPruneRequest) -> Result<BuildPruneReport, ApiError> {
        self.builds.prune_cache(req)
    }
}
