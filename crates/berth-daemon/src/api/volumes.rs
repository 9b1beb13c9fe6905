//! The volume role of the API backend.

use std::collections::BTreeMap;

use berth_api::backend::VolumeBackend;
use berth_api::error::ApiResult;
use berth_api::filters::Filters;
use berth_api::ApiError;
use serde_json::{json, Value};

use super::Api;
use crate::events::VolumeAction;
use crate::volumes::{Volume, ANONYMOUS_LABEL};

impl Api {
    fn volume_json(&self, v: &Volume) -> Value {
        json!({
            "Name": v.name,
            "Driver": "local",
            "Mountpoint": self.volumes.mountpoint(&v.name).display().to_string(),
            "CreatedAt": v.created_at,
            "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
            "Scope": "local",
            "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        })
    }
}

fn label_match(f: &str, labels: &BTreeMap<String, String>) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f),
    }
}

impl VolumeBackend for Api {
    fn list_volumes(&self, f: &Filters) -> ApiResult<Value> {
        let mut out = Vec::new();
        for v in self.volumes.list() {
            let dangling = self.containers.volume_users(&v.name).is_empty();
            let ok = f
                .get("dangling")
                .iter()
                .all(|d| (d == "true" || d == "1") == dangling)
                && (f.get("name").is_empty()
                    || f.get("name").iter().any(|n| v.name.contains(n.as_str())))
                && f.get("driver").iter().all(|d| d == "local")
                && f.get("label").iter().all(|l| label_match(l, &v.labels));
            if ok {
                out.push(self.volume_json(&v));
            }
        }
        Ok(json!({ "Volumes": out, "Warnings": [] }))
    }

    fn create_volume(&self, body: Value) -> ApiResult<Value> {
        let name = body
            .get("Name")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        match body.get("Driver").and_then(|d| d.as_str()) {
            None | Some("") | Some("local") => {}
            Some(other) => {
                return Err(ApiError::not_found(format!(
                    "error looking up volume plugin {other}: plugin \"{other}\" not found"
                )))
            }
        }
        let labels: BTreeMap<String, String> = body
            .get("Labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let opts: BTreeMap<String, String> = body
            .get("DriverOpts")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        let v = self
            .volumes
            .create(name.as_deref(), labels, opts)
            .map_err(ApiError::from_err)?;
        self.events.volume(VolumeAction::Create, &v.name);
        Ok(self.volume_json(&v))
    }

    fn inspect_volume(&self, name: &str) -> ApiResult<Value> {
        let v = self.volumes.get(name).map_err(ApiError::from_err)?;
        Ok(self.volume_json(&v))
    }

    fn remove_volume(&self, name: &str, force: bool) -> ApiResult<()> {
        let users = self.containers.volume_users(name);
        match self.volumes.remove(name, &users) {
            Ok(()) => {}
            Err(crate::volumes::VolumeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(ApiError::from_err(e)),
        }
        self.events.volume(VolumeAction::Destroy, name);
        Ok(())
    }

    fn prune_volumes(&self, f: &Filters) -> ApiResult<Value> {
        // API ≥ 1.42: only anonymous volumes unless `all=true`.
        let all = f.get("all").iter().any(|a| a == "true" || a == "1");
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.volumes.list() {
            if !all && !v.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !f.get("label").iter().all(|l| label_match(l, &v.labels))
                || f.get("label!").iter().any(|l| label_match(l, &v.labels))
            {
                continue;
            }
            let users = self.containers.volume_users(&v.name);
            if !users.is_empty() {
                continue;
            }
            let size = self.volumes.size(&v.name);
            if self.volumes.remove(&v.name, &users).is_ok() {
                reclaimed += size;
                deleted.push(v.name.clone());
                self.events.volume(VolumeAction::Destroy, &v.name);
            }
        }
        Ok(
            json!({ "VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed }),
        )
    }
}
