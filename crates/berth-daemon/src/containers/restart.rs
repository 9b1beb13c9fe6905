//! Restart policies (`--restart`): after a container's main process ends,
//! whether the engine starts it again, and after how long. Pure: the exit
//! monitor applies the decision.

use std::time::Duration;

use berth_api::container_types::RestartPolicy;

/// The longest back-off between restarts, as Docker's.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// What the container's record says about its last run.
#[derive(Debug, Clone, Copy)]
pub struct LastRun {
    pub exit_code: i64,
    /// Restarts the policy already made.
    pub restart_count: i64,
    /// Stopped by `stop`/`kill` through the API (not by itself).
    pub stopped_by_user: bool,
}

impl LastRun {
    /// The last run as the container's record holds it.
    pub fn of(r: &super::ContainerRecord) -> LastRun {
        LastRun {
            exit_code: r.state.exit_code,
            restart_count: r.restart_count,
            stopped_by_user: r.state.stopped_by_user,
        }
    }
}

/// `Some(delay)` when `policy` restarts the container after `last`:
/// `always` and `unless-stopped` unless a user stopped it, `on-failure[:N]`
/// on a non-zero exit while fewer than N restarts were made (no limit when
/// N is 0), `no` never. The delay is Docker's back-off: 100 ms doubling
/// with every restart, capped at one minute.
pub fn decide(policy: &RestartPolicy, last: LastRun) -> Option<Duration> {
    let restart = match policy.name.as_str() {
        "always" | "unless-stopped" => !last.stopped_by_user,
        "on-failure" => {
            last.exit_code != 0
                && (policy.maximum_retry_count == 0
                    || last.restart_count < policy.maximum_retry_count)
        }
        _ => false,
    };
    restart.then(|| {
        Duration::from_millis(100u64.saturating_mul(1 << last.restart_count.clamp(0, 10)))
            .min(MAX_DELAY)
    })
}

/// Whether a stopped container is started again when the engine starts,
/// as dockerd does: `always` even after a user's `stop` (that stop held only
/// while the engine ran), `unless-stopped` unless a user stopped it,
/// `on-failure[:N]` after a failure with restarts left.
pub fn restarts_with_engine(policy: &RestartPolicy, last: LastRun) -> bool {
    match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !last.stopped_by_user,
        "on-failure" => decide(policy, last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    fn run(exit_code: i64, restart_count: i64, stopped_by_user: bool) -> LastRun {
        LastRun {
            exit_code,
            restart_count,
            stopped_by_user,
        }
    }

    #[test]
    fn no_policy_never_restarts() {
        assert_eq!(decide(&policy("", 0), run(1, 0, false)), None);
        assert_eq!(decide(&policy("no", 0), run(1, 0, false)), None);
    }

    #[test]
    fn always_and_unless_stopped_restart_unless_a_user_stopped_it() {
        for p in ["always", "unless-stopped"] {
            assert!(decide(&policy(p, 0), run(0, 0, false)).is_some(), "{p}");
            assert!(decide(&policy(p, 0), run(3, 7, false)).is_some(), "{p}");
            assert_eq!(decide(&policy(p, 0), run(137, 0, true)), None, "{p}");
        }
    }

    #[test]
    fn on_failure_counts_restarts() {
        let p = policy("on-failure", 2);
        assert_eq!(decide(&p, run(0, 0, false)), None, "a clean exit");
        assert!(decide(&p, run(1, 0, false)).is_some());
        assert!(decide(&p, run(1, 1, false)).is_some());
        assert_eq!(decide(&p, run(1, 2, false)), None, "the third restart");
        assert!(
            decide(&policy("on-failure", 0), run(1, 1000, false)).is_some(),
            "no limit"
        );
    }

    #[test]
    fn engine_start_brings_back_always_even_after_a_user_stop() {
        let stopped = run(137, 0, true);
        assert!(restarts_with_engine(&policy("always", 0), stopped));
        assert!(!restarts_with_engine(&policy("unless-stopped", 0), stopped));
        assert!(restarts_with_engine(
            &policy("unless-stopped", 0),
            run(0, 0, false)
        ));
        assert!(!restarts_with_engine(&policy("no", 0), run(1, 0, false)));
        assert!(restarts_with_engine(
            &policy("on-failure", 2),
            run(1, 1, false)
        ));
        assert!(!restarts_with_engine(
            &policy("on-failure", 2),
            run(1, 2, false)
        ));
        assert!(!restarts_with_engine(
            &policy("on-failure", 0),
            run(0, 0, false)
        ));
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = policy("always", 0);
        let d = |n| decide(&p, run(1, n, false)).unwrap();
        assert_eq!(d(0), Duration::from_millis(100));
        assert_eq!(d(1), Duration::from_millis(200));
        assert_eq!(d(3), Duration::from_millis(800));
        assert_eq!(d(9), Duration::from_millis(51_200));
        assert_eq!(d(10), MAX_DELAY);
        assert_eq!(d(500), MAX_DELAY);
    }
}
