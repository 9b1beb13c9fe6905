//! `logs`: `GET /containers/{id}/logs`. The stream is multiplexed unless
//! the container has a TTY, so the container is inspected first.

use anyhow::{anyhow, bail, Result};
use berth_wire::container_types::ContainerInspect;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;

use super::container::escape;
use crate::cli::LogsArgs;
use crate::conn::{empty_body, Engine};

/// Docker's `timetypes.GetTimestamp`: a Go duration is relative to `now`;
/// RFC 3339 dates (with or without zone, time or fraction) become
/// `seconds.nanoseconds`; a Unix timestamp passes through.
pub fn api_timestamp(value: &str, now: i64) -> Result<String> {
    use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};
    if value != "0" {
        if let Ok(d) = crate::opts::go_duration(value) {
            return Ok((now - d / 1_000_000_000).to_string());
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        let parsed = if f == "%Y-%m-%dT%H" {
            NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M")
        } else {
            NaiveDateTime::parse_from_str(value, f)
        };
        if let Ok(t) = parsed {
            if let Some(t) = Local.from_local_datetime(&t).single() {
                return Ok(format!(
                    "{}.{:09}",
                    t.timestamp(),
                    t.timestamp_subsec_nanos()
                ));
            }
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| Local.from_local_datetime(&t).single())
        {
            return Ok(format!("{}.{:09}", t.timestamp(), 0));
        }
    }
    if value.contains('-') {
        bail!("parsing time {value:?}: cannot parse as RFC 3339");
    }
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    if secs.parse::<i64>().is_ok() && nanos.parse::<u64>().is_ok() {
        return Ok(value.to_string());
    }
    Err(anyhow!(
        "failed to parse value as time or duration: {value:?}"
    ))
}

pub fn logs_query(a: &LogsArgs, now: i64) -> Result<String> {
    let mut q: Vec<(&str, String)> = vec![("stdout", "1".into()), ("stderr", "1".into())];
    if let Some(s) = &a.since {
        q.push(("since", api_timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push(("until", api_timestamp(u, now)?));
    }
    if a.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if a.follow {
        q.push(("follow", "1".into()));
    }
    q.push(("tail", a.tail.clone()));
    if a.details {
        q.push(("details", "1".into()));
    }
    Ok(serde_urlencoded::to_string(&q)?)
}

pub async fn logs(e: &Engine, a: LogsArgs) -> Result<()> {
    let c: ContainerInspect = e
        .get_as(&format!("/containers/{}/json", escape(&a.container)))
        .await?;
    let tty = c.config.tty;
    let id = if c.id.is_empty() {
        a.container.clone()
    } else {
        c.id
    };
    let q = logs_query(&a, crate::units::now_unix())?;
    let resp = e
        .raw(
            Method::GET,
            &format!("/containers/{id}/logs?{q}"),
            empty_body(),
            &[],
        )
        .await?;
    let stream = resp
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    match crate::attach::copy_output(reader, tty).await {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(api_timestamp("10m", 10_000).unwrap(), "9400");
        assert_eq!(
            api_timestamp("2013-01-02T13:23:37Z", 0).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            api_timestamp("2013-01-02T13:23:37.5+01:00", 0).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(api_timestamp("1357133017", 0).unwrap(), "1357133017");
        assert_eq!(api_timestamp("0", 0).unwrap(), "0");
        assert!(api_timestamp("yesterday", 0).is_err());
    }

    #[test]
    fn query() {
        let a = LogsArgs {
            container: "c".into(),
            details: false,
            follow: true,
            since: Some("1m".into()),
            tail: "5".into(),
            timestamps: true,
            until: None,
        };
        assert_eq!(
            logs_query(&a, 120).unwrap(),
            "stdout=1&stderr=1&since=60&timestamps=1&follow=1&tail=5"
        );
    }
}
