//! The Engine API adapters: berth-api's role traits implemented over the
//! engine's services. Each file is one resource; the code here converts
//! between the services' types and Docker's wire types, applies list
//! filters, and combines services where an endpoint spans them (an image
//! cannot be removed while a container uses it; a network lists its
//! containers). No state lives here.

mod build;
mod containers;
mod events;
mod exec;
mod images;
mod networks;
mod swarm;
mod system;
mod volumes;

use std::sync::Arc;

use crate::build::BuildService;
use crate::config::DaemonConfig;
use crate::containers::ContainerService;
use crate::events::EventBus;
use crate::images::ImageService;
use crate::network::Networks;
use crate::swarm::SwarmService;
use crate::volumes::Volumes;

/// Every service the API reaches, as the composition root wired them.
pub(crate) struct Api {
    pub config: Arc<DaemonConfig>,
    pub engine_id: String,
    pub events: Arc<EventBus>,
    pub images: Arc<ImageService>,
    pub volumes: Arc<Volumes>,
    pub networks: Arc<Networks>,
    pub containers: Arc<ContainerService>,
    pub builds: Arc<BuildService>,
    pub swarm: Arc<SwarmService>,
}

/// `GraphDriver.Data.LowerDir`: layer directories, bottom first as the
/// store lists them, in overlayfs' order (topmost first, `:`-separated).
fn lower_dir(layers: &[std::path::PathBuf]) -> String {
    layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}
