//! `--change` instructions for `import` and `commit`: the subset of
//! Dockerfile instructions Docker accepts there (CMD, ENTRYPOINT, ENV,
//! EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), applied to an
//! image's container config.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::ContainerConfig;
use crate::ImageError;

const SUPPORTED: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR";

fn bad(change: &str, why: impl std::fmt::Display) -> ImageError {
    ImageError::InvalidArgument(format!("invalid change {change:?}: {why}"))
}

/// Applies each change in order.
pub fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<(), ImageError> {
    for change in changes {
        apply_one(cfg, change)?;
    }
    Ok(())
}

fn apply_one(cfg: &mut ContainerConfig, change: &str) -> Result<(), ImageError> {
    let trimmed = change.trim();
    let (word, rest) = match trimmed.split_once(|c: char| c.is_whitespace()) {
        Some((w, r)) => (w, r.trim()),
        None => (trimmed, ""),
    };
    if word.is_empty() {
        return Err(bad(change, "empty instruction"));
    }
    match word.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(exec_or_shell(change, rest)?),
        "ENTRYPOINT" => cfg.entrypoint = Some(exec_or_shell(change, rest)?),
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(change, rest, true)? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()) && e != &k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(change, rest, false)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let proto = proto.to_ascii_lowercase();
                if num.parse::<u16>().is_err() || !matches!(proto.as_str(), "tcp" | "udp" | "sctp")
                {
                    return Err(bad(change, format!("invalid port {p:?}")));
                }
                ports.insert(format!("{num}/{proto}"), Value::Object(Default::default()));
            }
            if rest.is_empty() {
                return Err(bad(change, "EXPOSE requires at least one port"));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            let list: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| bad(change, e))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            if list.is_empty() {
                return Err(bad(change, "VOLUME requires at least one path"));
            }
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        "USER" => cfg.user = Some(required(change, rest)?),
        "WORKDIR" => {
            let dir = required(change, rest)?;
            // Relative WORKDIR is relative to the previous one (Dockerfile reference).
            let base = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
            cfg.working_dir = Some(if dir.starts_with('/') {
                dir
            } else {
                format!("{}/{}", base.trim_end_matches('/'), dir)
            });
        }
        "STOPSIGNAL" => cfg.stop_signal = Some(required(change, rest)?),
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(required(change, rest)?),
        other => {
            return Err(bad(
                change,
                format!("{other} is not supported here; supported: {SUPPORTED}"),
            ))
        }
    }
    Ok(())
}

fn required(change: &str, rest: &str) -> Result<String, ImageError> {
    if rest.is_empty() {
        Err(bad(change, "missing argument"))
    } else {
        Ok(rest.to_string())
    }
}

/// JSON (exec) form `["a","b"]` or shell form `a b` → `["/bin/sh","-c","a b"]`.
fn exec_or_shell(change: &str, rest: &str) -> Result<Vec<String>, ImageError> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), required(change, rest)?])
}

/// `k=v k2="v 2"`; for ENV also the legacy `KEY value with spaces` form.
fn key_values(
    change: &str,
    rest: &str,
    legacy_ok: bool,
) -> Result<Vec<(String, String)>, ImageError> {
    let words = split_words(rest).map_err(|e| bad(change, e))?;
    if words.is_empty() {
        return Err(bad(change, "missing key=value"));
    }
    if !words[0].contains('=') {
        if legacy_ok {
            let (k, v) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(change, "ENV needs a value"))?;
            return Ok(vec![(k.to_string(), v.trim().to_string())]);
        }
        return Err(bad(change, format!("{:?} is not key=value", words[0])));
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(change, format!("{w:?} is not key=value"))),
        })
        .collect()
}

/// Splits on whitespace, honoring double and single quotes and backslashes.
fn split_words(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(chars.next().ok_or("dangling backslash")?),
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.push(chars.next().ok_or("dangling backslash")?);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, ImageError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(c)
    }

    #[test]
    fn applies_docker_changes() {
        let c = apply(&[
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT top -b",
            r#"ENV A=1 B="two words""#,
            "ENV A=3",
            "env LEGACY some value",
            "EXPOSE 80 53/udp",
            r#"LABEL maintainer="me" version=1"#,
            "USER nobody",
            "WORKDIR /app",
            "WORKDIR sub",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "top -b"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "A=3", "LEGACY=some value"]
        );
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert_eq!(c.labels.unwrap()["maintainer"], "me");
        assert_eq!(c.user.unwrap(), "nobody");
        assert_eq!(c.working_dir.unwrap(), "/app/sub");
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.unwrap(), "SIGINT");
    }

    #[test]
    fn rejects_bad_changes_naming_them() {
        let e = apply(&["RUN rm -rf /"]).unwrap_err().to_string();
        assert!(
            e.contains("RUN rm -rf /") && e.contains("not supported"),
            "{e}"
        );
        assert!(apply(&["EXPOSE http"])
            .unwrap_err()
            .to_string()
            .contains("http"));
        assert!(apply(&["USER"]).is_err());
        assert!(apply(&[r#"LABEL a="unterminated"#]).is_err());
        assert!(apply(&["LABEL novalue"]).is_err());
    }
}
