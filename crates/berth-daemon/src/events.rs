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
    /// Stamps `event` and hands it to every subscriber. The stamp is taken
    /// and the event sent under one lock, so that concurrent publishers
    /// cannot interleave: every subscriber sees the events in one order with
    /// non-decreasing times (a clock stepping back repeats the last time),
    /// which `since` and `until` rely on.
    pub fn publish(&self, event: EngineEvent) {
        tracing::debug!(?event, "event");
        let mut r = self.recent.lock().expect("events lock");
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let time_nano = r.back().map_or(now, |last| now.max(last.time_nano));
        let e = Arc::new(Stamped { time_nano, event });
        if r.len() == KEEP {
            r.pop_front();
        }
        r.push_back(e.clone());
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

    fn assert_in_time_order(events: &[Arc<Stamped>]) {
        for w in events.windows(2) {
            assert!(
                w[0].time_nano <= w[1].time_nano,
                "time went back: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn a_sequence_arrives_in_order_with_non_decreasing_times() {
        let bus = EventBus::default();
        let mut sub = bus.subscribe(None);
        let sent: Vec<EngineEvent> = (0..100).map(|i| volume(&i.to_string())).collect();
        for e in &sent {
            bus.publish(e.clone());
        }
        let got: Vec<Arc<Stamped>> = std::iter::from_fn(|| sub.live.try_recv().ok()).collect();
        assert_eq!(
            got.iter().map(|s| s.event.clone()).collect::<Vec<_>>(),
            sent
        );
        assert_in_time_order(&got);
        // The kept events are the same values in the same order.
        let kept = bus.subscribe(Some(0)).past;
        assert_eq!(kept, got);
    }

    #[test]
    fn concurrent_publishers_are_seen_in_one_order_with_non_decreasing_times() {
        let bus = Arc::new(EventBus::default());
        let mut a = bus.subscribe(None);
        let mut b = bus.subscribe(None);
        // 4 × 50 events: fewer than the live channel holds, so none lags.
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        bus.publish(volume(&format!("{t}-{i}")));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got_a: Vec<_> = std::iter::from_fn(|| a.live.try_recv().ok()).collect();
        let got_b: Vec<_> = std::iter::from_fn(|| b.live.try_recv().ok()).collect();
        assert_eq!(got_a.len(), 200);
        assert_in_time_order(&got_a);
        assert_eq!(got_a, got_b, "two subscribers saw different orders");
        assert_eq!(bus.subscribe(Some(0)).past, got_a, "kept in another order");
        // Each publisher's own events keep their order.
        for t in 0..4 {
            let mine: Vec<String> = got_a
                .iter()
                .filter_map(|s| match &s.event {
                    EngineEvent::Volume { name, .. } if name.starts_with(&format!("{t}-")) => {
                        Some(name.clone())
                    }
                    _ => None,
                })
                .collect();
            let want: Vec<String> = (0..50).map(|i| format!("{t}-{i}")).collect();
            assert_eq!(mine, want);
        }
    }

    #[test]
    fn since_selects_the_kept_events_at_or_after_it_then_live_ones_follow() {
        let bus = EventBus::default();
        for n in ["a", "b", "c"] {
            bus.publish(volume(n));
        }
        let b_time = bus.subscribe(Some(0)).past[1].time_nano;
        let mut sub = bus.subscribe(Some(b_time));
        bus.publish(volume("d"));
        let past: Vec<_> = sub.past.iter().map(|s| s.event.clone()).collect();
        // Events stamped in the same nanosecond as `b` are selected too.
        assert!(past.ends_with(&[volume("b"), volume("c")]), "{past:?}");
        assert!(!past.contains(&volume("a")) || past.len() == 3, "{past:?}");
        let live = sub.live.try_recv().unwrap();
        assert_eq!(live.event, volume("d"));
        assert!(live.time_nano >= sub.past.last().unwrap().time_nano);
        assert!(sub.live.try_recv().is_err(), "a kept event came again");
        // Without `since`, nothing kept is replayed.
        assert!(bus.subscribe(None).past.is_empty());
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
