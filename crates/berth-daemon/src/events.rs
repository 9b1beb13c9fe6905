//! The event bus. Every state change a service makes is published once, as
//! a typed [`EngineEvent`]: what happened to which object, in berth's own
//! terms. Subscribers — `GET /events` through the API adapter (which turns
//! an event into Docker's wire shape in one place, `api/events.rs`), and
//! later the metrics and the orchestrator — receive the same values. The
//! latest [`KEEP`] events are kept for `since`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

/// How many past events `since` can reach.
pub const KEEP: usize = 1024;

/// Something that happened in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    Container {
        id: String,
        /// Without the leading '/'.
        name: String,
        /// The image as the user named it.
        image: String,
        action: ContainerAction,
    },
    Image {
        /// The image ID (`sha256:…`); empty for a prune.
        id: String,
        /// The reference involved (`busybox:latest`), when there is one.
        name: Option<String>,
        action: ImageAction,
    },
    Network {
        id: String,
        name: String,
        action: NetworkAction,
    },
    Volume {
        name: String,
        action: VolumeAction,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    Create,
    Start,
    /// The main process ended.
    Die {
        exit_code: i64,
    },
    /// The kernel's OOM killer killed a process of the container.
    Oom,
    Kill {
        signal: String,
    },
    Stop,
    Destroy,
    Pause,
    Unpause,
    Update,
    Rename {
        /// Without the leading '/'.
        old_name: String,
    },
    Commit {
        comment: String,
    },
    /// `cp` out of the container (`GET /containers/{id}/archive`).
    ArchivePath,
    /// `cp` into the container (`PUT /containers/{id}/archive`).
    ExtractToDir,
    /// `healthy`, `unhealthy` or `starting`.
    HealthStatus {
        status: String,
    },
    ExecCreate {
        exec_id: String,
        command: Vec<String>,
    },
    ExecStart {
        exec_id: String,
        command: Vec<String>,
    },
    ExecDie {
        exec_id: String,
        exit_code: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAction {
    Pull,
    Push,
    Tag,
    Untag,
    Delete,
    Import,
    Load,
    Save,
    Prune { reclaimed: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkAction {
    Create,
    Destroy,
    /// `container` is the container's ID.
    Connect {
        container: String,
    },
    Disconnect {
        container: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeAction {
    Create,
    Destroy,
}

/// An event with the moment it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// Unix time in nanoseconds.
    pub time_nano: i64,
    pub event: EngineEvent,
}

/// A subscription: the kept events at or after `since`, then every new one.
pub struct Subscription {
    pub past: Vec<Arc<Stamped>>,
    pub live: broadcast::Receiver<Arc<Stamped>>,
}

pub struct EventBus {
    tx: broadcast::Sender<Arc<Stamped>>,
    recent: Mutex<VecDeque<Arc<Stamped>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(256).0,
            recent: Mutex::new(VecDeque::with_capacity(KEEP)),
        }
    }
}

impl EventBus {
    pub fn publish(&self, event: EngineEvent) {
        let time_nano = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        tracing::debug!(?event, "event");
        let e = Arc::new(Stamped { time_nano, event });
        {
            let mut r = self.recent.lock().expect("events lock");
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// A container event about the container whose record is `r`.
    pub fn container(&self, r: &crate::containers::ContainerRecord, action: ContainerAction) {
        self.publish(EngineEvent::Container {
            id: r.id.clone(),
            name: r.name.clone(),
            image: r.image.clone(),
            action,
        });
    }

    pub fn image(&self, action: ImageAction, id: &str, name: Option<&str>) {
        self.publish(EngineEvent::Image {
            id: id.to_string(),
            name: name.map(str::to_string),
            action,
        });
    }

    pub fn network(&self, action: NetworkAction, id: &str, name: &str) {
        self.publish(EngineEvent::Network {
            id: id.to_string(),
            name: name.to_string(),
            action,
        });
    }

    pub fn volume(&self, action: VolumeAction, name: &str) {
        self.publish(EngineEvent::Volume {
            name: name.to_string(),
            action,
        });
    }

    /// Subscribes; `since` (unix nanoseconds) selects kept events.
    pub fn subscribe(&self, since: Option<i64>) -> Subscription {
        // Subscribe before copying the buffer so nothing falls in between.
        let live = self.tx.subscribe();
        let past = match since {
            Some(s) => self
                .recent
                .lock()
                .expect("events lock")
                .iter()
                .filter(|e| e.time_nano >= s)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Subscription { past, live }
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str) -> EngineEvent {
        EngineEvent::Volume {
            name: name.into(),
            action: VolumeAction::Create,
        }
    }

    #[test]
    fn subscribers_see_events_in_publish_order() {
        let bus = EventBus::default();
        let mut sub = bus.subscribe(None);
        for n in ["a", "b", "c"] {
            bus.publish(volume(n));
        }
        for n in ["a", "b", "c"] {
            assert_eq!(sub.live.try_recv().unwrap().event, volume(n));
        }
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn since_replays_kept_events_and_drops_the_oldest() {
        let bus = EventBus::default();
        for i in 0..KEEP + 5 {
            bus.publish(volume(&i.to_string()));
        }
        let sub = bus.subscribe(Some(0));
        assert_eq!(sub.past.len(), KEEP);
        assert_eq!(sub.past[0].event, volume("5"));
        let last = sub.past.last().unwrap();
        assert_eq!(last.event, volume(&(KEEP + 4).to_string()));
        let later = bus.subscribe(Some(last.time_nano + 1));
        assert!(later.past.is_empty());
    }
}
