//! Health checks (`HEALTHCHECK`, `--health-*`): a thread per running
//! container runs the test command through the exec path at the configured
//! interval and keeps Docker's health record — status `starting` until the
//! first result (failures inside the start period do not count), `healthy`
//! after a success, `unhealthy` after `retries` failures in a row; the last
//! five results with their output (first 4 KiB). Status changes are
//! published as `health_status: …` events and shown by `ps` and `inspect`.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_shim::protocol::read_frame;
use serde_json::{json, Value};

use super::exec::ExecConfig;
use super::Container;
use super::ContainerService;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

impl Probe {
    /// Whether a probe made `since_start` after the container started
    /// falls in the start period.
    pub fn in_start_period(&self, since_start: Duration) -> bool {
        since_start < self.start_period
    }

    /// The wait before the next probe, `since_start` after the container
    /// started: the start interval inside the start period, the interval
    /// after it.
    pub fn next_delay(&self, since_start: Duration) -> Duration {
        if self.in_start_period(since_start) {
            self.start_interval
        } else {
            self.interval
        }
    }
}

fn dur(v: &Value, key: &str, default: Duration) -> Duration {
    match v[key].as_i64() {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// The probe of a container config's `Healthcheck`, or `None` when there
/// is none or it is disabled (`NONE`).
pub fn probe(healthcheck: Option<&Value>) -> Option<Probe> {
    let h = healthcheck?;
    let test: Vec<String> = h["Test"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None, // NONE, empty, or inherit with nothing to inherit
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        test: argv,
        interval: dur(h, "Interval", DEFAULT_INTERVAL),
        timeout: dur(h, "Timeout", DEFAULT_TIMEOUT),
        start_period: dur(h, "StartPeriod", Duration::ZERO),
        start_interval: dur(h, "StartInterval", DEFAULT_START_INTERVAL),
        retries: h["Retries"]
            .as_i64()
            .filter(|r| *r > 0)
            .unwrap_or(DEFAULT_RETRIES),
    })
}

/// Docker's `State.Health` after one result.
pub fn record_result(health: &Value, ok: bool, counts: bool, retries: i64, entry: Value) -> Value {
    let mut status = health["Status"].as_str().unwrap_or("starting").to_string();
    let mut streak = health["FailingStreak"].as_i64().unwrap_or(0);
    if ok {
        streak = 0;
        status = "healthy".into();
    } else if counts {
        streak += 1;
        if streak >= retries {
            status = "unhealthy".into();
        }
    }
    let mut log: Vec<Value> = health["Log"].as_array().cloned().unwrap_or_default();
    log.push(entry);
    if log.len() > MAX_LOG {
        log.drain(..log.len() - MAX_LOG);
    }
    json!({ "Status": status, "FailingStreak": streak, "Log": log })
}

fn now() -> String {
    berth_image::config::now_rfc3339()
}

impl ContainerService {
    /// Starts the health thread of a container that just started (or was
    /// re-attached); it ends when that run of the container ends.
    pub(crate) fn start_health(&self, c: &Arc<Container>) {
        let r = c.record();
        let Some(p) = probe(r.config.healthcheck.as_ref()) else {
            return;
        };
        let run = r.state.started_at.clone();
        if r.state.health.is_none() {
            let _ = c.update(|r| {
                r.state.health =
                    Some(json!({ "Status": "starting", "FailingStreak": 0, "Log": [] }))
            });
        }
        let service = self.arc();
        let c = c.clone();
        let _ = std::thread::Builder::new()
            .name(format!("health-{}", &c.id[..12]))
            .spawn(move || {
                let started = Instant::now();
                loop {
                    std::thread::sleep(p.next_delay(started.elapsed()));
                    let r = c.record();
                    if r.state.started_at != run || !r.state.status.is_running() {
                        return;
                    }
                    if r.state.status == super::Status::Paused {
                        continue;
                    }
                    let start = now();
                    let (code, output) = service.run_probe(&c, &p);
                    let entry =
                        json!({ "Start": start, "End": now(), "ExitCode": code, "Output": output });
                    let counts = !p.in_start_period(started.elapsed());
                    let mut changed = None;
                    let _ = c.update(|r| {
                        let before = r
                            .state
                            .health
                            .clone()
                            .unwrap_or(json!({"Status": "starting"}));
                        let after = record_result(&before, code == 0, counts, p.retries, entry);
                        if before["Status"] != after["Status"] {
                            changed = after["Status"].as_str().map(str::to_string);
                        }
                        r.state.health = Some(after);
                    });
                    if let Some(s) = changed {
                        service.events.container(
                            &r,
                            crate::events::ContainerAction::HealthStatus { status: s },
                        );
                    }
                }
            });
    }

    /// One run of the test: (exit code, output). -1 when it could not run
    /// or exceeded the timeout, as Docker reports.
    fn run_probe(&self, c: &Container, p: &Probe) -> (i64, String) {
        let cfg = ExecConfig {
            cmd: p.test.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let id = match self.exec_create(c, cfg) {
            Ok(id) => id,
            Err(e) => return (-1, e.to_string()),
        };
        let Ok(exec) = self.containers.execs.get(&id) else {
            return (-1, "exec vanished".into());
        };
        let stream = match self.exec_start(&exec, false, None) {
            Ok(Some(s)) => s,
            Ok(None) => return (-1, "no output stream".into()),
            Err(e) => {
                self.containers.execs.remove(&id);
                return (-1, e.to_string());
            }
        };
        let deadline = Instant::now() + p.timeout;
        let mut out = Vec::new();
        let mut s = stream;
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            let _ = s.set_read_timeout(Some(left));
            match read_frame(&mut s) {
                Ok(Some((_, data))) => {
                    if out.len() < MAX_OUTPUT {
                        out.extend_from_slice(&data[..data.len().min(MAX_OUTPUT - out.len())]);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    timed_out = Instant::now() >= deadline;
                    break;
                }
            }
        }
        let output = String::from_utf8_lossy(&out).to_string();
        if timed_out {
            let pid = exec.state().pid;
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = s.read_to_end(&mut Vec::new());
            self.containers.execs.remove(&id);
            return (
                -1,
                format!("Health check exceeded timeout ({:?})", p.timeout),
            );
        }
        // The exit code is recorded once the stream has ended.
        let mut code = exec.state().exit_code;
        for _ in 0..100 {
            if code.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            code = exec.state().exit_code;
        }
        self.containers.execs.remove(&id);
        (code.unwrap_or(-1), output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_forms_and_defaults() {
        assert_eq!(probe(Some(&json!({"Test": ["NONE"]}))), None);
        assert_eq!(probe(None), None);
        let p = probe(Some(&json!({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000i64, "Retries": 2}))).unwrap();
        assert_eq!(p.test, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(p.interval, Duration::from_secs(1));
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.retries, 2);
        assert_eq!(
            probe(Some(&json!({"Test": ["CMD", "true"]}))).unwrap().test,
            ["true"]
        );
    }

    fn probe_with(start_period: Duration, retries: i64) -> Probe {
        Probe {
            test: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: DEFAULT_TIMEOUT,
            start_period,
            start_interval: Duration::from_secs(5),
            retries,
        }
    }

    #[test]
    fn start_period_sets_the_pace_and_ends_on_time() {
        let p = probe_with(Duration::from_secs(60), 3);
        assert!(p.in_start_period(Duration::ZERO));
        assert!(p.in_start_period(Duration::from_millis(59_999)));
        assert!(!p.in_start_period(Duration::from_secs(60)));
        assert_eq!(p.next_delay(Duration::ZERO), Duration::from_secs(5));
        assert_eq!(
            p.next_delay(Duration::from_secs(61)),
            Duration::from_secs(30)
        );
        // Without a start period every probe counts, at the interval.
        let p = probe_with(Duration::ZERO, 3);
        assert!(!p.in_start_period(Duration::ZERO));
        assert_eq!(p.next_delay(Duration::ZERO), Duration::from_secs(30));
    }

    /// The statuses after each result, as the health thread records them:
    /// `(seconds since start, success)`.
    fn statuses(p: &Probe, results: &[(u64, bool)]) -> Vec<(String, i64)> {
        let mut h = json!({"Status": "starting", "FailingStreak": 0, "Log": []});
        results
            .iter()
            .map(|&(at, ok)| {
                let counts = !p.in_start_period(Duration::from_secs(at));
                h = record_result(&h, ok, counts, p.retries, json!({}));
                (
                    h["Status"].as_str().unwrap().to_string(),
                    h["FailingStreak"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    fn st(s: &str, streak: i64) -> (String, i64) {
        (s.to_string(), streak)
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy() {
        let p = probe_with(Duration::ZERO, 3);
        assert_eq!(
            statuses(&p, &[(30, false), (60, false), (90, false), (120, false)]),
            [
                st("starting", 1),
                st("starting", 2),
                st("unhealthy", 3),
                st("unhealthy", 4)
            ]
        );
    }

    #[test]
    fn a_success_resets_the_streak_and_makes_it_healthy() {
        let p = probe_with(Duration::ZERO, 3);
        assert_eq!(
            statuses(
                &p,
                &[
                    (30, false),
                    (60, false),
                    (90, true),
                    (120, false),
                    (150, false),
                    (180, true),
                ]
            ),
            [
                st("starting", 1),
                st("starting", 2),
                st("healthy", 0),
                st("healthy", 1),
                st("healthy", 2),
                st("healthy", 0)
            ]
        );
        // From unhealthy, one success is enough.
        let p = probe_with(Duration::ZERO, 1);
        assert_eq!(
            statuses(&p, &[(30, false), (60, true)]),
            [st("unhealthy", 1), st("healthy", 0)]
        );
    }

    #[test]
    fn failures_inside_the_start_period_do_not_count() {
        let p = probe_with(Duration::from_secs(20), 2);
        assert_eq!(
            statuses(
                &p,
                &[
                    (5, false),
                    (10, false),
                    (15, false),
                    (20, false),
                    (25, false)
                ]
            ),
            [
                st("starting", 0),
                st("starting", 0),
                st("starting", 0),
                st("starting", 1),
                st("unhealthy", 2)
            ]
        );
        // A success inside it still counts: healthy at once.
        assert_eq!(statuses(&p, &[(5, true)]), [st("healthy", 0)]);
    }

    #[test]
    fn status_follows_dockers_rules() {
        let start = json!({"Status": "starting", "FailingStreak": 0});
        let e = json!({});
        // A failure inside the start period does not count.
        let h = record_result(&start, false, false, 2, e.clone());
        assert_eq!(h["Status"], "starting");
        assert_eq!(h["FailingStreak"], 0);
        let h = record_result(&h, true, true, 2, e.clone());
        assert_eq!(h["Status"], "healthy");
        let h = record_result(&h, false, true, 2, e.clone());
        assert_eq!(
            (h["Status"].as_str(), h["FailingStreak"].as_i64()),
            (Some("healthy"), Some(1))
        );
        let mut h = record_result(&h, false, true, 2, e.clone());
        assert_eq!(h["Status"], "unhealthy");
        for _ in 0..10 {
            h = record_result(&h, false, true, 2, e.clone());
        }
        assert_eq!(h["Log"].as_array().unwrap().len(), MAX_LOG);
    }
}
