//! Engine events in Docker's wire shape: the one place where an
//! [`EngineEvent`] becomes `GET /events`' JSON object (its `Type`,
//! `Action`, `Actor.Attributes`, and the legacy `status`/`id` fields that
//! old clients read for containers and images).

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::backend::EventSubscription;
use berth_api::types::{Actor, Event};
use tokio::sync::broadcast::error::RecvError;

use crate::events::{
    ContainerAction, EngineEvent, EventBus, ImageAction, NetworkAction, Stamped, VolumeAction,
};

fn attrs<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Docker's action text and extra attributes of a container event.
fn container_action(a: &ContainerAction) -> (String, BTreeMap<String, String>) {
    use ContainerAction::*;
    let plain = |s: &str| (s.to_string(), BTreeMap::new());
    match a {
        Create => plain("create"),
        Start => plain("start"),
        Die { exit_code } => ("die".into(), attrs([("exitCode", exit_code.to_string())])),
        Oom => plain("oom"),
        Kill { signal } => ("kill".into(), attrs([("signal", signal.clone())])),
        Stop => plain("stop"),
        Destroy => plain("destroy"),
        Pause => plain("pause"),
        Unpause => plain("unpause"),
        Update => plain("update"),
        Rename { old_name } => (
            "rename".into(),
            attrs([("oldName", format!("/{old_name}"))]),
        ),
        Commit { comment } => ("commit".into(), attrs([("comment", comment.clone())])),
        ArchivePath => plain("archive-path"),
        ExtractToDir => plain("extract-to-dir"),
        HealthStatus { status } => (format!("health_status: {status}"), BTreeMap::new()),
        // dockerd names the command in the action: `exec_create: ls -l /`.
        ExecCreate { exec_id, command } => (
            format!("exec_create: {}", command.join(" ")),
            attrs([("execID", exec_id.clone())]),
        ),
        ExecStart { exec_id, command } => (
            format!("exec_start: {}", command.join(" ")),
            attrs([("execID", exec_id.clone())]),
        ),
        ExecDie { exec_id, exit_code } => (
            "exec_die".into(),
            attrs([
                ("execID", exec_id.clone()),
                ("exitCode", exit_code.to_string()),
            ]),
        ),
    }
}

fn image_action(a: &ImageAction) -> &'static str {
    match a {
        ImageAction::Pull => "pull",
        ImageAction::Push => "push",
        ImageAction::Tag => "tag",
        ImageAction::Untag => "untag",
        ImageAction::Delete => "delete",
        ImageAction::Import => "import",
        ImageAction::Load => "load",
        ImageAction::Save => "save",
        ImageAction::Prune { .. } => "prune",
    }
}

/// The wire event of `s`.
pub(crate) fn to_wire(s: &Stamped) -> Event {
    let (kind, action, id, attributes) = match &s.event {
        EngineEvent::Container {
            id,
            name,
            image,
            action,
        } => {
            let (action, mut a) = container_action(action);
            a.insert("name".into(), name.clone());
            a.insert("image".into(), image.clone());
            ("container", action, id.clone(), a)
        }
        EngineEvent::Image { id, name, action } => {
            let a = match action {
                ImageAction::Prune { reclaimed } => attrs([("reclaimed", reclaimed.to_string())]),
                _ => attrs([("name", name.clone().unwrap_or_else(|| id.clone()))]),
            };
            ("image", image_action(action).to_string(), id.clone(), a)
        }
        EngineEvent::Network { id, name, action } => {
            let mut a = attrs([("name", name.clone()), ("type", "bridge".to_string())]);
            let action = match action {
                NetworkAction::Create => "create",
                NetworkAction::Destroy => "destroy",
                NetworkAction::Connect { container } => {
                    a.insert("container".into(), container.clone());
                    "connect"
                }
                NetworkAction::Disconnect { container } => {
                    a.insert("container".into(), container.clone());
                    "disconnect"
                }
            };
            ("network", action.to_string(), id.clone(), a)
        }
        EngineEvent::Volume { name, action } => {
            let action = match action {
                VolumeAction::Create => "create",
                VolumeAction::Destroy => "destroy",
            };
            (
                "volume",
                action.to_string(),
                name.clone(),
                attrs([("driver", "local".to_string())]),
            )
        }
    };
    // API < 1.22 clients read `status`/`id`/`from`, which dockerd still
    // sends for containers and images.
    let legacy = kind == "image" || kind == "container";
    Event {
        kind: kind.into(),
        status: legacy.then(|| action.clone()),
        id: legacy.then(|| id.clone()),
        action,
        actor: Actor { id, attributes },
        scope: "local".into(),
        time: s.time_nano.div_euclid(1_000_000_000),
        time_nano: s.time_nano,
        from: None,
    }
}

/// A wire subscription over the bus: kept events now, live ones converted
/// by a task that ends when the client goes away or the bus closes.
pub(crate) fn subscribe(bus: &EventBus, since: Option<i64>) -> EventSubscription {
    let sub = bus.subscribe(since);
    let past = sub.past.iter().map(|s| to_wire(s)).collect();
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let mut live = sub.live;
    tokio::spawn(async move {
        loop {
            let next: Result<Arc<Stamped>, RecvError> = tokio::select! {
                _ = tx.closed() => return,
                r = live.recv() => r,
            };
            match next {
                Ok(s) => {
                    if tx.send(to_wire(&s)).await.is_err() {
                        return;
                    }
                }
                // A subscriber too slow for the bus misses events, as with
                // dockerd; it keeps receiving the newer ones.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    EventSubscription { past, live: rx }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(event: EngineEvent) -> Stamped {
        Stamped {
            time_nano: 1_700_000_000_123_456_789,
            event,
        }
    }

    #[test]
    fn container_events_carry_dockers_action_and_attributes() {
        let e = to_wire(&stamped(EngineEvent::Container {
            id: "abc".into(),
            name: "web".into(),
            image: "busybox".into(),
            action: ContainerAction::Die { exit_code: 3 },
        }));
        assert_eq!(e.kind, "container");
        assert_eq!(e.action, "die");
        assert_eq!(e.status.as_deref(), Some("die"));
        assert_eq!(e.id.as_deref(), Some("abc"));
        assert_eq!(e.actor.attributes["exitCode"], "3");
        assert_eq!(e.actor.attributes["name"], "web");
        assert_eq!(e.actor.attributes["image"], "busybox");
        assert_eq!(e.time, 1_700_000_000);

        let e = to_wire(&stamped(EngineEvent::Container {
            id: "abc".into(),
            name: "web".into(),
            image: "busybox".into(),
            action: ContainerAction::ExecCreate {
                exec_id: "e1".into(),
                command: vec!["ls".into(), "-l".into()],
            },
        }));
        assert_eq!(e.action, "exec_create: ls -l");
        assert_eq!(e.actor.attributes["execID"], "e1");

        let e = to_wire(&stamped(EngineEvent::Container {
            id: "abc".into(),
            name: "web".into(),
            image: "busybox".into(),
            action: ContainerAction::ExtractToDir,
        }));
        assert_eq!(e.action, "extract-to-dir");
    }

    #[test]
    fn network_volume_and_prune_events() {
        let e = to_wire(&stamped(EngineEvent::Network {
            id: "n1".into(),
            name: "front".into(),
            action: NetworkAction::Connect {
                container: "c1".into(),
            },
        }));
        assert_eq!((e.kind.as_str(), e.action.as_str()), ("network", "connect"));
        assert_eq!(e.actor.attributes["container"], "c1");
        assert_eq!(e.status, None);

        let e = to_wire(&stamped(EngineEvent::Volume {
            name: "data".into(),
            action: VolumeAction::Destroy,
        }));
        assert_eq!(
            (e.actor.id.as_str(), e.action.as_str()),
            ("data", "destroy")
        );
        assert_eq!(e.actor.attributes["driver"], "local");

        let e = to_wire(&stamped(EngineEvent::Image {
            id: String::new(),
            name: None,
            action: ImageAction::Prune { reclaimed: 42 },
        }));
        assert_eq!(e.action, "prune");
        assert_eq!(e.actor.attributes["reclaimed"], "42");
        assert!(!e.actor.attributes.contains_key("name"));
    }
}
