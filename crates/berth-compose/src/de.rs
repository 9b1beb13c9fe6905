//! Lenient scalar decoding: compose files hold numbers and booleans that
//! interpolation turned into strings (`replicas: ${N}`), so integer, number
//! and boolean fields take their string forms too; anything else is refused
//! with `expected …, got …` naming what was found.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `string "three"`, `a mapping`, … for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a sequence".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn got<E: serde::de::Error>(what: &str, v: &Value) -> E {
    E::custom(format!("expected {what}, got {}", describe(v)))
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| got("a non-negative integer", &v)),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| got("an integer", &v)),
        _ => Err(got("an integer", &v)),
    }
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| got("an integer", &v)),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| got("an integer", &v)),
        _ => Err(got("an integer", &v)),
    }
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s.trim().parse().map(Some).map_err(|_| got("a number", &v)),
        _ => Err(got("a number", &v)),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Ok(Some(true)),
            "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(got("a boolean", &v)),
        },
        _ => Err(got("a boolean", &v)),
    }
}

pub fn bool_or_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(opt_bool(d)?.unwrap_or(false))
}

/// A string, or a number written for one (`published: 8080`, `memory: 512`).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(got("a string", &other)),
    }
}

/// A command: a string (split as a shell would) or a list.
pub fn opt_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(None),
        Value::String(s) => crate::shell::split(s).map(Some).map_err(D::Error::custom),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(got("a string", other)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(got("a string or a list of strings", &v)),
    }
}

/// A string or a list of strings, as a list.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(got("a string", other)),
            })
            .collect(),
        _ => Err(got("a string or a list of strings", &v)),
    }
}

/// serde's own wording (`invalid type: string "x", expected u64`) into the
/// loader's (`expected u64, got "x"`).
pub fn reword(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            let found = found.strip_prefix("string ").unwrap_or(found);
            return format!("expected {expected}, got {found}");
        }
    }
    message.to_string()
}
