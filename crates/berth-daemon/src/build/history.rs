//! How the classic builder writes history (`created_by`) and its synthetic
//! `LABEL` step, byte for byte: Go's `%q` of string slices, `#(nop)`
//! comments, the `|N ARG=… cmd` prefix of `RUN` with build args.

use std::collections::BTreeMap;

pub(crate) use berth_core::text::go_quote;

/// Go's `fmt.Sprintf("%q", []string{…})`: `["a" "b"]`.
pub(crate) fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// `created_by` of a config-only step: `<shell> #(nop)  <comment>` (the
/// builder joins `[shell…, "#(nop) ", comment]` with spaces, hence two).
pub(crate) fn nop(shell: &[String], comment: &str) -> String {
    format!("{} #(nop)  {comment}", shell.join(" "))
}

/// `created_by` of `WORKDIR`, `COPY` and `ADD`: one space after `#(nop)`.
pub(crate) fn nop_layer(shell: &[String], comment: &str) -> String {
    format!("{} #(nop) {comment}", shell.join(" "))
}

/// `created_by` of `RUN`: the command, prefixed with `|N K=V…` when build
/// args are visible to it.
pub(crate) fn run_created_by(args: &[String], argv: &[String]) -> String {
    let mut sorted = args.to_vec();
    sorted.sort();
    let mut parts = Vec::new();
    if !sorted.is_empty() {
        parts.push(format!("|{}", sorted.len()));
        parts.extend(sorted);
    }
    parts.extend(argv.iter().cloned());
    parts.join(" ")
}

/// Go's `time.Duration.String()` for nanoseconds.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return if ns % 1_000_000 == 0 {
            format!("{}ms", ns / 1_000_000)
        } else if ns % 1000 == 0 {
            format!("{}µs", ns / 1000)
        } else {
            format!("{ns}ns")
        };
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let s = if frac == 0 {
        format!("{}s", secs % 60)
    } else {
        let f = format!("{:09}", frac);
        format!("{}.{}s", secs % 60, f.trim_end_matches('0'))
    };
    match (secs / 3600, (secs / 60) % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// The `LABEL` line the classic builder appends for `--label`s.
pub(crate) fn label_line(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}='{}'", go_quote(k), v.replace('\'', "'\\''")))
        .collect();
    format!("LABEL {}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn classic_builder_strings() {
        let sh = v(&["/bin/sh", "-c"]);
        assert_eq!(
            nop(
                &sh,
                &format!("CMD {}", go_quote_list(&v(&["sh", "-c", "echo \"hi\""])))
            ),
            r#"/bin/sh -c #(nop)  CMD ["sh" "-c" "echo \"hi\""]"#
        );
        assert_eq!(
            nop_layer(&sh, "WORKDIR /app"),
            "/bin/sh -c #(nop) WORKDIR /app"
        );
        assert_eq!(
            run_created_by(&v(&["B=2", "A=1"]), &v(&["/bin/sh", "-c", "echo $A"])),
            "|2 A=1 B=2 /bin/sh -c echo $A"
        );
        assert_eq!(
            run_created_by(&[], &v(&["/bin/sh", "-c", "x"])),
            "/bin/sh -c x"
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
    }

    #[test]
    fn label_option_line() {
        let l: BTreeMap<String, String> = [("a.b".to_string(), "x y".to_string())].into();
        assert_eq!(label_line(&l), r#"LABEL "a.b"='x y'"#);
    }
}
