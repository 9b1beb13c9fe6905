//! Placement constraints (`--constraint node.labels.zone==east`): parsed
//! once when a service is created or updated, matched against a node when
//! its tasks are placed. The attributes and operators are swarmkit's.

use std::collections::BTreeMap;

/// What a constraint can look at on a node.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub os: String,
    pub arch: String,
    pub labels: BTreeMap<String, String>,
    pub engine_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    key: String,
    equal: bool,
    value: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid constraint {expr:?}: {reason}")]
pub struct ConstraintError {
    pub expr: String,
    pub reason: String,
}

const KEYS: [&str; 6] = [
    "node.id",
    "node.hostname",
    "node.role",
    "node.platform.os",
    "node.platform.arch",
    "node.ip",
];

impl Constraint {
    pub fn parse(expr: &str) -> Result<Constraint, ConstraintError> {
        let err = |reason: &str| ConstraintError {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        let (key, equal, value) = if let Some((k, v)) = expr.split_once("!=") {
            (k, false, v)
        } else if let Some((k, v)) = expr.split_once("==") {
            (k, true, v)
        } else {
            return Err(err("it needs == or !="));
        };
        let key = key.trim();
        let value = value.trim();
        if value.is_empty() {
            return Err(err("the value is empty"));
        }
        if value.contains("==") || value.contains("!=") {
            return Err(err("it has more than one operator"));
        }
        let known = KEYS.contains(&key.to_ascii_lowercase().as_str())
            || ["node.labels.", "engine.labels."]
                .iter()
                .any(|p| key.len() > p.len() && key.to_ascii_lowercase().starts_with(p));
        if !known {
            return Err(err(&format!(
                "unknown attribute {key:?} (use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>)"
            )));
        }
        Ok(Constraint {
            key: key.to_string(),
            equal,
            value: value.to_string(),
        })
    }

    /// swarmkit compares names case-insensitively and label values exactly.
    pub fn matches(&self, node: &NodeFacts) -> bool {
        let lower = self.key.to_ascii_lowercase();
        let (actual, fold) = match lower.as_str() {
            "node.id" => (Some(node.id.as_str()), true),
            "node.hostname" => (Some(node.hostname.as_str()), true),
            "node.role" => (Some(node.role.as_str()), true),
            "node.platform.os" => (Some(node.os.as_str()), true),
            "node.platform.arch" => (Some(node.arch.as_str()), true),
            "node.ip" => (None, false),
            _ => {
                let (map, name) = if lower.starts_with("node.labels.") {
                    (&node.labels, &self.key["node.labels.".len()..])
                } else {
                    (&node.engine_labels, &self.key["engine.labels.".len()..])
                };
                (map.get(name).map(String::as_str), false)
            }
        };
        let same = match actual {
            Some(a) if fold => a.eq_ignore_ascii_case(&self.value),
            Some(a) => a == self.value,
            None => false,
        };
        same == self.equal
    }
}

/// Parses every constraint; the first bad one is the error.
pub fn parse_all(exprs: &[String]) -> Result<Vec<Constraint>, ConstraintError> {
    exprs.iter().map(|e| Constraint::parse(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeFacts {
        NodeFacts {
            id: "abc".into(),
            hostname: "Host1".into(),
            role: "manager".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            labels: [("zone".to_string(), "east".to_string())].into(),
            engine_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn matches_as_swarmkit() {
        let n = node();
        for (expr, want) in [
            ("node.role==manager", true),
            ("node.role == worker", false),
            ("node.hostname==host1", true),
            ("node.labels.zone==east", true),
            ("node.labels.zone==East", false),
            ("node.labels.zone!=west", true),
            ("node.labels.missing==x", false),
            ("node.labels.missing!=x", true),
            ("node.platform.os==linux", true),
        ] {
            assert_eq!(Constraint::parse(expr).unwrap().matches(&n), want, "{expr}");
        }
    }

    #[test]
    fn bad_expressions_name_the_problem() {
        for (expr, why) in [
            ("node.role", "needs == or !="),
            ("node.role==", "value is empty"),
            ("node.color==red", "unknown attribute"),
            ("node.role==a==b", "more than one operator"),
        ] {
            let e = Constraint::parse(expr).unwrap_err();
            assert!(e.to_string().contains(why), "{expr}: {e}");
            assert!(e.to_string().contains(expr), "{e}");
        }
    }
}
