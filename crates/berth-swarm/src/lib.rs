//! Swarm mode on berth: cluster objects, the store they live in, and the
//! orchestrator's decisions.
//!
//! - [`store`]: the [`ClusterStore`] seam (etcd's model: revisions,
//!   compare-and-swap transactions, watch) and [`LocalStore`], the engine's
//!   own redb file. A distributed store is a second implementation.
//! - [`objects`]: stored forms and task states.
//! - [`plan`]: pure reconciliation, `plan(service, tasks, context) ->
//!   actions`, executed by the daemon.
//! - [`constraints`]: placement constraints.

pub mod constraints;
pub mod objects;
pub mod plan;
pub mod store;

pub use store::{ClusterStore, Kind, LocalStore, Op, Record, StoreError};
