//! Freezing a running container for the length of a `cp`.
//!
//! While an archive is read from or unpacked into a running container, its
//! processes are frozen (cgroup freezer: v1 `freezer.state` = FROZEN, v2
//! `cgroup.freeze` = 1), as moby does since CVE-2018-15664: the path
//! resolution is already confined to the container's root, and freezing
//! also keeps the container from rearranging its tree mid-copy, which would
//! otherwise make the copy's result depend on the race. The freeze is the
//! same one `docker pause` uses — the shim's `Pause`/`Resume` requests,
//! which drive libcontainer's freezer for cgroups v1 and v2 — but the
//! container's recorded state stays `running` and no events are sent.
//!
//! [`Freeze::running`] freezes only a container whose status is `running`:
//! a paused container is already frozen and stays paused; a stopped one
//! has no processes. Dropping the guard thaws, also on error or panic.

use berth_shim::ShimClient;

use super::record::Status;
use super::{Container, ContainerError};

/// Holds a container frozen; thaws it when dropped.
pub(crate) struct Freeze {
    thaw: Option<(ShimClient, String)>,
}

impl Freeze {
    /// Freezes `c` if it is running; a no-op guard otherwise.
    pub(crate) fn running(c: &Container) -> Result<Freeze, ContainerError> {
        if c.record().state.status != Status::Running {
            return Ok(Freeze { thaw: None });
        }
        let id = c.id.clone();
        let failed = |e: berth_shim::ShimError| {
            ContainerError::Runtime(format!("freezing container {id} for cp: {e}"))
        };
        let client = ShimClient::connect(&c.shim_dir()).map_err(failed)?;
        client.pause().map_err(failed)?;
        Ok(Freeze {
            thaw: Some((client, c.id.clone())),
        })
    }
}

impl Drop for Freeze {
    fn drop(&mut self) {
        if let Some((client, id)) = self.thaw.take() {
            if let Err(e) = client.resume() {
                tracing::error!(container = %id, error = %e, "thawing after cp failed");
            }
        }
    }
}
