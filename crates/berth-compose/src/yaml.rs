//! YAML text → a JSON tree with every string value interpolated.
//!
//! Anchors, aliases and `<<` merge keys are resolved here; keys become
//! strings; the override tags of the merge rules (`!reset`, `!override`)
//! become one-key marker objects that [`crate::merge`] acts on.

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

use crate::error::{index, join, Error};
use crate::interpolate::{interpolate, Environment};

/// Marker keys for the `!reset` and `!override` tags.
pub const RESET: &str = "\u{0}!reset";
pub const OVERRIDE: &str = "\u{0}!override";

/// Parses one file's text and interpolates its values.
pub fn parse(file: &str, text: &str, env: &Environment) -> Result<Value, Error> {
    let mut doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| {
        let msg = match e.location() {
            Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
            None => e.to_string(),
        };
        Error::new(file, "", msg)
    })?;
    doc.apply_merge()
        .map_err(|e| Error::new(file, "", format!("merge key: {e}")))?;
    match doc {
        Yaml::Null => Ok(Value::Object(Map::new())),
        Yaml::Mapping(_) => convert(file, "", doc, env),
        _ => Err(Error::new(
            file,
            "",
            "the top level must be a mapping of keys such as services",
        )),
    }
}

fn convert(file: &str, path: &str, v: Yaml, env: &Environment) -> Result<Value, Error> {
    Ok(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| Error::new(file, path, format!("{f} is not a number")))?
            }
        }
        Yaml::String(s) => {
            Value::String(interpolate(&s, env).map_err(|e| Error::new(file, path, e.to_string()))?)
        }
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| convert(file, &index(path, i), item, env))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => {
                        return Err(Error::new(
                            file,
                            path,
                            format!("keys must be strings, got {other:?}"),
                        ))
                    }
                };
                let p = join(path, &key);
                let v = convert(file, &p, v, env)?;
                out.insert(key, v);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let inner = convert(file, path, t.value, env)?;
            let marker = match tag.as_str() {
                "!reset" => RESET,
                "!override" => OVERRIDE,
                _ => {
                    return Err(Error::new(
                        file,
                        path,
                        format!("unsupported YAML tag {tag} (compose knows !reset and !override)"),
                    ))
                }
            };
            let mut m = Map::new();
            m.insert(marker.to_string(), inner);
            Value::Object(m)
        }
    })
}

/// Replaces the markers left in a tree that was not merged over anything:
/// `!override v` is `v`, `!reset v` is absent.
pub fn strip_markers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !is_marker(v, RESET));
            for v in m.values_mut() {
                if let Some(inner) = unwrap_marker(v, OVERRIDE) {
                    *v = inner;
                }
                strip_markers(v);
            }
        }
        Value::Array(items) => {
            items.retain(|v| !is_marker(v, RESET));
            for v in items {
                strip_markers(v);
            }
        }
        _ => {}
    }
}

pub fn is_marker(v: &Value, marker: &str) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.contains_key(marker))
}

pub fn unwrap_marker(v: &Value, marker: &str) -> Option<Value> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(marker).cloned(),
        _ => None,
    }
}
