//! Human-readable sizes and durations, matching Docker's `go-units` output
//! byte for byte (the CLI's tables are compared against Docker's).

use std::time::Duration;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// `units.HumanSizeWithPrecision(size, precision)`: decimal units, `%.*g`.
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    custom_size(size, precision, 1000.0, &DECIMAL_UNITS)
}

/// `units.HumanSize(size)`: precision 4.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// `units.BytesSize(size)`: binary units, precision 4 (used for memory).
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 4, 1024.0, &BINARY_UNITS)
}

fn custom_size(mut size: f64, precision: usize, base: f64, units: &[&str]) -> String {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_fmt_g(size, precision), units[i])
}

/// Go's `fmt.Sprintf("%.*g", precision, v)`.
pub fn go_fmt_g(v: f64, precision: usize) -> String {
    let p = precision.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Round to p significant digits first; the exponent is that of the rounded value.
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("exponent in {:e} output");
    let exp: i32 = exp.parse().expect("numeric exponent");
    if exp < -4 || exp >= p as i32 {
        let m = trim_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.HumanDuration(d)`: one implementation, shared with the daemon's
/// status strings, in `berth_core::units`.
pub fn human_duration(d: Duration) -> String {
    berth_core::units::human_duration(d.as_secs() as i64)
}

/// "2 hours ago" for a Unix timestamp, as Docker's `CreatedSince` columns.
pub fn since(unix_secs: i64, now_secs: i64) -> String {
    let d = Duration::from_secs(now_secs.saturating_sub(unix_secs).max(0) as u64);
    format!("{} ago", human_duration(d))
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Go's `time.Unix(t, 0).String()` in local time: `2006-01-02 15:04:05 -0700 MST`.
pub fn go_time_string(unix_secs: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix_secs, 0).single() {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                offset.clone()
            };
            format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => String::new(),
    }
}

/// Go's `time.Unix(t, 0).Format(time.RFC3339)` in local time.
pub fn rfc3339(unix_secs: i64) -> String {
    use chrono::{Local, SecondsFormat, TimeZone};
    match Local.timestamp_opt(unix_secs, 0).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        None => String::new(),
    }
}

/// Parses an RFC 3339 timestamp from the API into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        let hs = |v: f64| human_size_with_precision(v, 3);
        assert_eq!(hs(0.0), "0B");
        assert_eq!(hs(1.0), "1B");
        assert_eq!(hs(999.0), "999B");
        assert_eq!(hs(1000.0), "1kB");
        assert_eq!(hs(1999.0), "2kB");
        assert_eq!(hs(4.2e6), "4.2MB");
        assert_eq!(hs(1234567890.0), "1.23GB");
        assert_eq!(hs(4_864_000.0), "4.86MB");
        assert_eq!(hs(999_999.0), "1e+03kB");
        assert_eq!(human_size(1234567890.0), "1.235GB");
        assert_eq!(human_size(16_430_000.0), "16.43MB");
        assert_eq!(
            bytes_size(16.0 * 1024.0 * 1024.0 * 1024.0 * 0.97),
            "15.52GiB"
        );
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(go_fmt_g(0.0001234, 3), "0.000123");
        assert_eq!(go_fmt_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_fmt_g(12.0, 3), "12");
        assert_eq!(go_fmt_g(12.345, 3), "12.3");
        assert_eq!(go_fmt_g(123.5, 4), "123.5");
    }

    #[test]
    fn durations_match_go_units() {
        let hd = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(hd(1), "1 second");
        assert_eq!(hd(59), "59 seconds");
        assert_eq!(hd(60), "About a minute");
        assert_eq!(hd(119), "About a minute");
        assert_eq!(hd(120), "2 minutes");
        assert_eq!(hd(59 * 60), "59 minutes");
        assert_eq!(hd(3600), "About an hour");
        assert_eq!(hd(3600 + 29 * 60), "About an hour");
        assert_eq!(hd(3600 + 30 * 60), "2 hours");
        assert_eq!(hd(47 * 3600), "47 hours");
        assert_eq!(hd(48 * 3600), "2 days");
        assert_eq!(hd(13 * 86400), "13 days");
        assert_eq!(hd(14 * 86400), "2 weeks");
        assert_eq!(hd(59 * 86400), "8 weeks");
        assert_eq!(hd(60 * 86400), "2 months");
        assert_eq!(hd(729 * 86400), "24 months");
        assert_eq!(hd(730 * 86400), "2 years");
        assert_eq!(since(100, 160), "About a minute ago");
        assert_eq!(since(0, 7200), "2 hours ago");
    }
}
