//! The Docker Engine API's wire types: the JSON shapes of the swagger
//! definitions of the same names, serde both ways.
//!
//! One set, shared by the API server (`berth-api`), the CLI (`berth-cli`)
//! and compose, so a field is spelled once. Nothing here does I/O or holds
//! behaviour; the daemon converts its own records to and from these types
//! at the API boundary.

pub mod container_types;
pub mod host_config;
pub mod swarm;
pub mod types;
