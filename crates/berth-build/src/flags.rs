//! Instruction flags (`--name[=value]`) and the value syntaxes they use:
//! booleans, Go durations (`time.ParseDuration`) and byte sizes
//! (go-units `RAMInBytes`, as `--mount=type=tmpfs,size=64m`).
//!
//! Each instruction declares the flags it accepts; any other flag is an
//! error naming it, a repeated single-valued flag too.

use std::collections::BTreeMap;

use crate::error::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--name=value`, once.
    Str,
    /// `--name` or `--name=true|false`, once.
    Bool,
    /// `--name=value`, any number of times.
    Multi,
}

/// Flag values by name (without the leading `--`).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    pub fn parse(raw: &[String], allowed: &[(&str, Kind)]) -> Result<Flags, Reason> {
        let mut flags = Flags::default();
        for word in raw {
            let body = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                return Err(Reason::UnknownFlag(name.to_string()));
            };
            let slot = flags.values.entry(name.to_string()).or_default();
            if kind != Kind::Multi && !slot.is_empty() {
                return Err(Reason::DuplicateFlag(name.to_string()));
            }
            let value = match (kind, value) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => {
                    parse_bool(v).ok_or_else(|| Reason::BadBool {
                        flag: name.to_string(),
                        value: v.to_string(),
                    })?;
                    v.to_string()
                }
                (_, None) => return Err(Reason::MissingFlagValue(name.to_string())),
                (_, Some(v)) => v.to_string(),
            };
            slot.push(value);
        }
        Ok(flags)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.first().cloned())
    }
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        self.string(name).and_then(|v| parse_bool(&v))
    }
    pub fn bool(&self, name: &str) -> bool {
        self.opt_bool(name).unwrap_or(false)
    }
    pub fn multi(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

/// Go's strconv.ParseBool.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`, in nanoseconds: a signed sequence of decimal
/// numbers with unit suffixes (`ns us µs ms s m h`), e.g. `1h30m`, `1.5s`.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num.parse::<f64>().ok()? * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// go-units `RAMInBytes`: `512`, `64k`, `1.5g`, `10MiB` (binary multiples).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let num: f64 = s[..num_len].parse().ok()?;
    let unit = s[num_len..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((num * mul as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        assert_eq!(parse_duration("-1m"), Some(-60_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn flag_rules() {
        let allowed = [
            ("from", Kind::Str),
            ("link", Kind::Bool),
            ("exclude", Kind::Multi),
        ];
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Flags::parse(
            &raw(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            &allowed,
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.multi("exclude"), vec!["x", "y"]);
        assert_eq!(
            Flags::parse(&raw(&["--nope"]), &allowed).unwrap_err(),
            Reason::UnknownFlag("nope".into())
        );
        assert!(Flags::parse(&raw(&["--from=a", "--from=b"]), &allowed).is_err());
        assert!(Flags::parse(&raw(&["--from"]), &allowed).is_err());
        assert!(Flags::parse(&raw(&["--link=maybe"]), &allowed).is_err());
    }
}
