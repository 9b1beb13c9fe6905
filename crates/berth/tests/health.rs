//! Health checks: `--health-*` flags (and an image's HEALTHCHECK) run the
//! test inside the container on schedule; the state moves starting →
//! healthy → unhealthy as Docker's does and shows in ps, inspect and events.

mod common;

use std::time::Duration;

use common::containers::{busybox, wait_until};
use common::TestDaemon;

fn health(d: &TestDaemon, name: &str) -> String {
    d.berth_ok(&["inspect", "-f", "{{.State.Health.Status}}", name])
        .trim()
        .to_string()
}

#[test]
fn health_goes_starting_healthy_unhealthy_and_shows_everywhere() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    // The probe passes once the test creates `ok` in the bound directory:
    // healthy follows that, not a delay.
    let sync = common::scratch();
    let bind = format!("{}:/sync", sync.path().display());
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "-v",
        &bind,
        "--health-cmd",
        "test -f /sync/ok && echo fine",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "--health-timeout",
        "2s",
        "busybox",
        "sleep",
        "100",
    ]);
    let first = health(&d, "hc");
    assert!(first == "starting" || first == "unhealthy", "{first}");
    std::fs::write(sync.path().join("ok"), "").unwrap();
    wait_until("healthy", Duration::from_secs(10), || {
        health(&d, "hc") == "healthy"
    });
    let ps = d.berth_ok(&["ps", "--filter", "name=hc"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    let log = d.berth_ok(&["inspect", "-f", "{{json .State.Health.Log}}", "hc"]);
    assert!(log.contains("fine"), "{log}");

    d.berth_ok(&["exec", "hc", "rm", "/sync/ok"]);
    wait_until("unhealthy", Duration::from_secs(10), || {
        health(&d, "hc") == "unhealthy"
    });
    let streak = d.berth_ok(&["inspect", "-f", "{{.State.Health.FailingStreak}}", "hc"]);
    assert!(streak.trim().parse::<i64>().unwrap() >= 2, "{streak}");
    let ps = d.docker_ok(&["ps", "--filter", "name=hc", "--format", "{{.Status}}"]);
    assert!(ps.contains("(unhealthy)"), "{ps}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &now.to_string(),
        "--filter",
        "container=hc",
    ]);
    assert!(
        events.contains("health_status: healthy") && events.contains("health_status: unhealthy"),
        "{events}"
    );
    // Probes do not accumulate exec records: besides the user's `exec rm`
    // only a probe in flight (every 300 ms, about ten of them so far) is
    // ever listed, and between probes the user's exec alone.
    let mut seen = Vec::new();
    wait_until(
        "ExecIDs to list only the user's exec",
        Duration::from_secs(5),
        || {
            let n = d.berth_ok(&["inspect", "-f", "{{len .ExecIDs}}", "hc"]);
            seen.push(n.trim().to_string());
            n.trim() == "1"
        },
    );
    assert!(seen.iter().all(|n| n == "1" || n == "2"), "{seen:?}");
    d.berth_ok(&["rm", "-f", "hc"]);
}

#[test]
fn timeout_counts_as_failure_and_no_healthcheck_disables() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ]);
    wait_until("unhealthy", Duration::from_secs(10), || {
        health(&d, "slow") == "unhealthy"
    });
    let out = d.berth_ok(&[
        "inspect",
        "-f",
        "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}",
        "slow",
    ]);
    assert!(
        out.contains("-1") && out.contains("exceeded timeout"),
        "{out}"
    );
    d.berth_ok(&["rm", "-f", "slow"]);

    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "none",
        "--network",
        "none",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "100",
    ]);
    let test = d.berth_ok(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", "none"]);
    assert_eq!(test.trim(), r#"["NONE"]"#);
    let h = d.berth_ok(&["inspect", "-f", "{{json .State.Health}}", "none"]);
    assert!(h.trim() == "null" || h.trim().is_empty(), "{h}");
    d.berth_ok(&["rm", "-f", "none"]);
}
