//! The event bus: every state change publishes an [`Event`] to live
//! subscribers (`GET /events`) and keeps the latest ones for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::backend::EventSubscription;
use berth_api::types::{Actor, Event};
use tokio::sync::broadcast;

const KEEP: usize = 1024;

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
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
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let legacy = kind == "image" || kind == "container";
        let e = Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: nanos,
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: None,
        };
        tracing::debug!(kind, action, id, "event");
        {
            let mut r = self.recent.lock().expect("events lock");
            if r.len() == KEEP {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    pub fn image(&self, action: &str, id: &str, name: Option<&str>) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.unwrap_or(id).to_string());
        self.publish("image", action, id, a);
    }

    pub fn container(&self, action: &str, id: &str, name: &str, image: &str) {
        self.container_with(action, id, name, image, BTreeMap::new());
    }

    pub fn container_with(
        &self,
        action: &str,
        id: &str,
        name: &str,
        image: &str,
        mut attributes: BTreeMap<String, String>,
    ) {
        attributes.insert("name".to_string(), name.to_string());
        attributes.insert("image".to_string(), image.to_string());
        self.publish("container", action, id, attributes);
    }

    /// `network` events; `container` is the container connected or
    /// disconnected, empty for create/destroy.
    pub fn network(&self, action: &str, id: &str, name: &str, container: &str) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.to_string());
        a.insert("type".to_string(), "bridge".to_string());
        if !container.is_empty() {
            a.insert("container".to_string(), container.to_string());
        }
        self.publish("network", action, id, a);
    }

    pub fn subscribe(&self, since: Option<i64>) -> EventSubscription {
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
        EventSubscription { past, live }
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}
