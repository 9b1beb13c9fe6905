//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;

use super::{blocking, Shared};
use crate::filters::Filters;
use crate::query::Query;
use crate::types::Event;
use crate::ApiError;

pub async fn ping() -> Response {
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // The classic builder: BuildKit's gRPC session protocol is not served.
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    r
}

pub async fn version(State(b): State<Shared>) -> Response {
    Json(b.version()).into_response()
}

pub async fn info(State(b): State<Shared>) -> Result<Response, ApiError> {
    let info = blocking(move || b.info()).await?;
    Ok(Json(info).into_response())
}

pub async fn disk_usage(State(b): State<Shared>) -> Result<Response, ApiError> {
    let du = blocking(move || b.disk_usage()).await?;
    Ok(Json(du).into_response())
}

/// Docker timestamps: `1700000000`, `1700000000.5`, `1700000000.000000001`.
fn parse_time(key: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, "0"));
    let s: i64 = secs
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {key} timestamp {v:?}")))?;
    let mut f = frac.to_string();
    if f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "invalid {key} timestamp {v:?}"
        )));
    }
    while f.len() < 9 {
        f.push('0');
    }
    Ok(Some(s * 1_000_000_000 + f.parse::<i64>().unwrap_or(0)))
}

/// Matches an event against `type`, `event`, `image`, `container`, `label`
/// filters, each a set of alternatives.
fn matches(filters: &Filters, e: &Event) -> bool {
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let vals = filters.get(key);
        vals.is_empty() || vals.iter().any(|v| f(v))
    };
    let name = e
        .actor
        .attributes
        .get("name")
        .map(String::as_str)
        .unwrap_or("");
    any("type", &|v| v == e.kind)
        && any("event", &|v| {
            v == e.action || e.action.starts_with(&format!("{v}:"))
        })
        && any("image", &|v| {
            e.kind == "image"
                && (v == e.actor.id
                    || v == name
                    || e.actor
                        .id
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
                    || name.split(':').next() == Some(v))
        })
        && any("container", &|v| {
            e.kind == "container" && (e.actor.id.starts_with(v) || v == name)
        })
        && any("label", &|v| match v.split_once('=') {
            Some((k, val)) => e.actor.attributes.get(k).map(String::as_str) == Some(val),
            None => e.actor.attributes.contains_key(v),
        })
}

pub async fn events(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let since = parse_time("since", q.get("since"))?;
    let until = parse_time("until", q.get("until"))?;
    let filters = Filters::parse(q.get("filters"))?;
    filters.only(&[
        "type",
        "event",
        "image",
        "container",
        "label",
        "scope",
        "network",
        "volume",
        "daemon",
    ])?;
    let sub = b.subscribe_events(since);
    let past: Vec<Event> = sub
        .past
        .into_iter()
        .filter(|e| matches(&filters, e) && until.is_none_or(|u| e.time_nano <= u))
        .collect();
    let now = now_nanos();
    let live = if until.is_some_and(|u| u <= now) {
        None
    } else {
        Some(sub.live)
    };
    let deadline =
        until.map(|u| tokio::time::Instant::now() + Duration::from_nanos((u - now).max(0) as u64));

    struct St {
        past: std::vec::IntoIter<Event>,
        live: Option<tokio::sync::mpsc::Receiver<Event>>,
        filters: Filters,
        deadline: Option<tokio::time::Instant>,
    }
    let st = St {
        past: past.into_iter(),
        live,
        filters,
        deadline,
    };
    let body = stream::unfold(st, |mut st| async move {
        if let Some(e) = st.past.next() {
            return Some((Ok::<_, std::io::Error>(line(&e)), st));
        }
        loop {
            let rx = st.live.as_mut()?;
            let next = match st.deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                },
                None => rx.recv().await,
            };
            match next {
                Some(e) if matches(&st.filters, &e) => return Some((Ok(line(&e)), st)),
                Some(_) => continue,
                None => return None,
            }
        }
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn line(e: &Event) -> bytes::Bytes {
    let mut v = serde_json::to_vec(e).expect("event serializes");
    v.push(b'\n');
    v.into()
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_time("since", Some("12")).unwrap(),
            Some(12_000_000_000)
        );
        assert_eq!(
            parse_time("since", Some("1.5")).unwrap(),
            Some(1_500_000_000)
        );
        assert!(parse_time("since", Some("x")).is_err());
        assert_eq!(parse_time("since", None).unwrap(), None);
    }

    #[test]
    fn event_filters() {
        let mut e = Event {
            kind: "image".into(),
            action: "tag".into(),
            ..Default::default()
        };
        e.actor.id = "sha256:abcdef".into();
        e.actor
            .attributes
            .insert("name".into(), "busybox:latest".into());
        let f = |s: &str| Filters::parse(Some(s)).unwrap();
        assert!(matches(&f(r#"{"type":["image"]}"#), &e));
        assert!(!matches(&f(r#"{"type":["container"]}"#), &e));
        assert!(matches(&f(r#"{"event":["untag","tag"]}"#), &e));
        assert!(matches(&f(r#"{"image":["busybox"]}"#), &e));
        assert!(matches(&f(r#"{"image":["abc"]}"#), &e));
        assert!(!matches(&f(r#"{"image":["other"]}"#), &e));
    }
}
