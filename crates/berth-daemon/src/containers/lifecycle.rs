//! The container service's typed verbs, for callers inside the engine
//! (the API adapter today; the orchestrator and compose next): containers
//! by ID or name, typed options and outcomes. Each verb is the code path
//! the Engine API takes, so a container an orchestrator starts behaves as
//! one `docker start` starts; the events they cause come on the engine's
//! bus (`EventBus::subscribe`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::container_types::ContainerCreateBody;

use super::{Container, ContainerError, ContainerService};

/// When [`ContainerService::wait`] returns, as `docker wait --condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// The container is not running (now, or once it stops).
    #[default]
    NotRunning,
    /// The container exits after the wait began.
    NextExit,
    /// The container is removed.
    Removed,
}

/// How to stop a container; `None` takes the container's own
/// `StopSignal`/`StopTimeout` (else SIGTERM and 10 s).
#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    pub signal: Option<String>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// Kill it first if it runs.
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
}

/// A created container.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

impl ContainerService {
    /// Creates a container from `config` (the image, command, host
    /// options and networks), named `name` or a generated name.
    pub fn create(
        &self,
        name: Option<&str>,
        config: ContainerCreateBody,
    ) -> Result<Created, ContainerError> {
        let (id, warnings) = self.container_create(name, config)?;
        Ok(Created { id, warnings })
    }

    /// Starts a container; `Ok(false)` when it was already running.
    pub fn start(&self, id: &str) -> Result<bool, ContainerError> {
        let c = self.containers.get(id)?;
        self.container_start(&c)
    }

    /// Stops a container (an explicit stop: restart policies other than
    /// `always` leave it stopped); `Ok(false)` when it was not running.
    pub fn stop(&self, id: &str, opts: StopOptions) -> Result<bool, ContainerError> {
        let c = self.containers.get(id)?;
        let timeout = opts.timeout.map(|t| t.as_secs() as i64);
        self.container_stop(&c, opts.signal.as_deref(), timeout, true)
    }

    /// Removes a container.
    pub fn remove(&self, id: &str, opts: RemoveOptions) -> Result<(), ContainerError> {
        let c = self.containers.get(id)?;
        self.container_remove_v(&c, opts.force, opts.volumes)
    }

    /// Resolves to the container's exit code once `condition` holds. The
    /// container is looked up now: one that does not exist is an error,
    /// not a wait.
    pub fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<impl Future<Output = i64> + Send + 'static, ContainerError> {
        let c = self.containers.get(id)?;
        Ok(self.wait_for(&c, condition))
    }

    fn wait_for(
        &self,
        c: &Arc<Container>,
        condition: WaitCondition,
    ) -> impl Future<Output = i64> + Send + 'static {
        // Subscribed before returning, so an exit right after the call
        // (the client starts the container next) is not missed.
        let mut rx = c.subscribe();
        let start = *rx.borrow();
        async move {
            loop {
                let s = *rx.borrow_and_update();
                let done = match condition {
                    WaitCondition::NextExit => s.exits > start.exits,
                    WaitCondition::Removed => s.removed,
                    WaitCondition::NotRunning => !s.status.is_running(),
                };
                if done {
                    return s.exit_code;
                }
                if rx.changed().await.is_err() {
                    // The container is gone: its last state is the answer.
                    return rx.borrow().exit_code;
                }
            }
        }
    }
}
