//! Merging canonical trees of several `-f` files, later over earlier
//! (Compose Specification, "Merge and override"): mappings merge key by
//! key, sequences append, scalars are replaced; `command`, `entrypoint` and
//! `healthcheck.test` are replaced whole; `ports`, `volumes`, `secrets` and
//! `configs` merge the entries that share their unique key; `!reset`
//! removes and `!override` replaces whatever was there.

use serde_json::{Map, Value};

use crate::yaml::{is_marker, unwrap_marker, OVERRIDE, RESET};

/// Merges `over` into `base`.
pub fn merge(base: &mut Value, over: Value) {
    merge_at(&[], base, over);
}

fn merge_at(path: &[&str], base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => merge_maps(path, b, o),
        (Value::Array(b), Value::Array(o)) => match unique_key_kind(path) {
            Some(kind) => merge_unique(kind, b, o),
            None if replaced_whole(path) => *b = o,
            None => b.extend(o),
        },
        (b, o) => *b = o,
    }
}

fn merge_maps(path: &[&str], b: &mut Map<String, Value>, o: Map<String, Value>) {
    for (k, v) in o {
        if is_marker(&v, RESET) {
            b.remove(&k);
            continue;
        }
        if let Some(inner) = unwrap_marker(&v, OVERRIDE) {
            b.insert(k, inner);
            continue;
        }
        match b.get_mut(&k) {
            Some(existing) if !existing.is_null() => {
                let mut p = path.to_vec();
                p.push(&k);
                merge_at(&p, existing, v);
            }
            _ => {
                b.insert(k, v);
            }
        }
    }
}

/// `services.*.command` and its kin: a new command is not appended to the old.
fn replaced_whole(path: &[&str]) -> bool {
    matches!(
        path,
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"]
    )
}

#[derive(Clone, Copy)]
enum UniqueKey {
    Port,
    Target,
}

fn unique_key_kind(path: &[&str]) -> Option<UniqueKey> {
    match path {
        ["services", _, "ports"] => Some(UniqueKey::Port),
        ["services", _, "volumes" | "secrets" | "configs"] => Some(UniqueKey::Target),
        _ => None,
    }
}

fn key_of(kind: UniqueKey, v: &Value) -> Option<String> {
    let s = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    match kind {
        UniqueKey::Port => Some(format!(
            "{}|{}|{}|{}",
            s("host_ip"),
            s("target"),
            s("published"),
            match s("protocol").as_str() {
                "" => "tcp".to_string(),
                p => p.to_string(),
            }
        )),
        // A secret's target defaults to its source.
        UniqueKey::Target => {
            let t = s("target");
            Some(if t.is_empty() { s("source") } else { t })
        }
    }
}

fn merge_unique(kind: UniqueKey, base: &mut Vec<Value>, over: Vec<Value>) {
    for v in over {
        let key = key_of(kind, &v);
        match base
            .iter_mut()
            .find(|b| key.is_some() && key_of(kind, b) == key)
        {
            Some(existing) => {
                // Volumes of different types at one target are replaced,
                // not blended (a bind's options mean nothing to a volume).
                if existing.get("type") != v.get("type") && v.get("type").is_some() {
                    *existing = v;
                } else {
                    merge_at(&[], existing, v);
                }
            }
            None => base.push(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules() {
        let mut base = json!({"services": {"web": {
            "image": "a", "command": ["x", "y"], "dns": ["1.1.1.1"],
            "environment": {"A": "1", "B": "2"},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
            "volumes": [{"type": "volume", "source": "foo", "target": "/work"}],
            "healthcheck": {"test": ["CMD", "a"], "retries": 3}
        }}});
        let over = json!({"services": {"web": {
            "image": "b", "command": ["z"], "dns": ["8.8.8.8"],
            "environment": {"B": "3", "C": {RESET: null}},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp", "mode": "host"}, {"target": 443}],
            "volumes": [{"type": "volume", "source": "bar", "target": "/work"}],
            "healthcheck": {"test": ["CMD", "b"]}
        }}});
        merge(&mut base, over);
        let web = &base["services"]["web"];
        assert_eq!(web["image"], "b");
        assert_eq!(web["command"], json!(["z"]));
        assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(web["environment"], json!({"A": "1", "B": "3"}));
        assert_eq!(web["ports"].as_array().unwrap().len(), 2);
        assert_eq!(web["ports"][0]["mode"], "host");
        assert_eq!(
            web["volumes"],
            json!([{"type": "volume", "source": "bar", "target": "/work"}])
        );
        assert_eq!(
            web["healthcheck"],
            json!({"test": ["CMD", "b"], "retries": 3})
        );
    }

    #[test]
    fn reset_and_override() {
        let mut base =
            json!({"services": {"web": {"ports": [{"target": 80}], "environment": {"A": "1"}}}});
        merge(
            &mut base,
            json!({"services": {"web": {"ports": {RESET: []}, "environment": {OVERRIDE: {"B": "2"}}}}}),
        );
        assert_eq!(
            base,
            json!({"services": {"web": {"environment": {"B": "2"}}}})
        );
    }
}
