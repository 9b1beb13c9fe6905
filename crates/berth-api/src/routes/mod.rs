//! Route table. One module per resource; handlers parse, call the backend
//! on the blocking pool, and shape the response.

mod build;
mod containers;
mod distribution;
mod exec;
mod images;
mod networks;
mod swarm;
mod system;
mod volumes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::{ApiError, Backend};

pub type Shared = Arc<dyn Backend>;

pub fn router(backend: Shared) -> Router {
    Router::new()
        .route("/_ping", get(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::disk_usage))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/auth", post(distribution::auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_named)
                .post(images::post_named)
                .delete(images::delete_named),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{name}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{name}/connect", post(networks::connect))
        .route("/networks/{name}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/containers/create", post(containers::create))
        .route("/commit", post(containers::commit))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/exec/{id}/resize", post(exec::resize))
        .route(
            "/containers/{*rest}",
            get(containers::get_named)
                .head(containers::head_named)
                .post(containers::post_named)
                .put(containers::put_named)
                .delete(containers::delete_named),
        )
        .route("/swarm", get(swarm::inspect))
        .route("/swarm/init", post(swarm::init))
        .route("/swarm/join", post(swarm::join))
        .route("/swarm/leave", post(swarm::leave))
        .route("/swarm/update", post(swarm::update))
        .route("/swarm/unlockkey", get(swarm::unlock_key))
        .route("/swarm/unlock", post(swarm::unlock))
        .route("/nodes", get(swarm::list_nodes))
        .route(
            "/nodes/{id}",
            get(swarm::inspect_node).delete(swarm::remove_node),
        )
        .route("/nodes/{id}/update", post(swarm::update_node))
        .route("/services", get(swarm::list_services))
        .route("/services/create", post(swarm::create_service))
        .route(
            "/services/{id}",
            get(swarm::inspect_service).delete(swarm::remove_service),
        )
        .route("/services/{id}/update", post(swarm::update_service))
        .route("/tasks", get(swarm::list_tasks))
        .route("/tasks/{id}", get(swarm::inspect_task))
        .route("/secrets", get(swarm::list_secrets))
        .route("/secrets/create", post(swarm::create_secret))
        .route(
            "/secrets/{id}",
            get(swarm::inspect_secret).delete(swarm::remove_secret),
        )
        .route("/secrets/{id}/update", post(swarm::update_secret))
        .route("/configs", get(swarm::list_configs))
        .route("/configs/create", post(swarm::create_config))
        .route(
            "/configs/{id}",
            get(swarm::inspect_config).delete(swarm::remove_config),
        )
        .route("/configs/{id}/update", post(swarm::update_config))
        .fallback(|| async { ApiError::not_found("page not found") })
        .with_state(backend)
}

/// Runs blocking backend work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("backend task failed: {e}")))?
}
