//! The stored forms of cluster objects and the task states.
//!
//! Services, nodes, secrets and configs are stored as their wire objects
//! (the swagger's `Service`, `Node`, …: what a client reads back is what
//! was stored); a task carries berth's own bookkeeping beside its wire
//! object ([`TaskRecord`]). The store's format version
//! ([`crate::store::FORMAT_VERSION`]) covers these shapes.

use std::fmt;
use std::str::FromStr;

use berth_wire::swarm::{Service, Task};
use serde::{Deserialize, Serialize};

/// swarmkit's task states, in their order: a task only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    New,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    /// Past running: the task will not run (again).
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "new" => TaskState::New,
            "pending" | "allocated" => TaskState::Pending,
            "assigned" => TaskState::Assigned,
            "accepted" => TaskState::Accepted,
            "preparing" => TaskState::Preparing,
            "ready" => TaskState::Ready,
            "starting" => TaskState::Starting,
            "running" => TaskState::Running,
            "complete" => TaskState::Complete,
            "shutdown" => TaskState::Shutdown,
            "failed" => TaskState::Failed,
            "rejected" => TaskState::Rejected,
            "remove" => TaskState::Remove,
            "orphaned" => TaskState::Orphaned,
            other => return Err(format!("unknown task state {other:?}")),
        })
    }
}

/// A task as stored: the wire object plus berth's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: Task,
    /// Unix nanoseconds before which the task must not start (a restart
    /// delay); 0 for at once.
    #[serde(default)]
    pub start_after: i64,
    /// Restarts of this slot counted against `RestartPolicy.MaxAttempts`,
    /// this one included, and when the count's window began.
    #[serde(default)]
    pub attempts: u64,
    #[serde(default)]
    pub attempts_since: i64,
    /// The service version whose spec this task runs.
    #[serde(default)]
    pub spec_version: u64,
    /// Unix nanoseconds when its container started; 0 if it never did.
    #[serde(default)]
    pub started_at: i64,
    /// How many tasks in a row before this one in its slot ended sooner
    /// than the restart delay after they started.
    #[serde(default)]
    pub quick_failures: u32,
}

impl TaskRecord {
    pub fn state(&self) -> TaskState {
        self.task.status.state.parse().unwrap_or(TaskState::New)
    }
    pub fn desired(&self) -> TaskState {
        self.task
            .desired_state
            .parse()
            .unwrap_or(TaskState::Running)
    }
    pub fn slot(&self) -> Option<u64> {
        self.task.slot
    }
    pub fn id(&self) -> &str {
        &self.task.id
    }
    /// Unix nanoseconds of the last status change.
    pub fn status_time(&self) -> i64 {
        parse_time(&self.task.status.timestamp)
    }
    pub fn created(&self) -> i64 {
        parse_time(&self.task.created_at)
    }
}

/// A service as stored.
pub type ServiceRecord = Service;

/// RFC 3339 → unix nanoseconds; 0 when unreadable.
pub fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Unix nanoseconds → RFC 3339 with nanoseconds, UTC, as dockerd prints
/// swarm objects' times.
pub fn format_time(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        for n in [0i64, 1_700_000_000_123_456_789, 951_782_400_000_000_001] {
            assert_eq!(parse_time(&format_time(n)), n, "{}", format_time(n));
        }
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_time("2024-02-29T12:00:00Z"),
            1_709_208_000_000_000_000
        );
        assert_eq!(parse_time("garbage"), 0);
    }

    #[test]
    fn states_order_and_parse() {
        assert!(TaskState::Running < TaskState::Complete);
        assert!(TaskState::Failed.is_terminal());
        assert!(!TaskState::Running.is_terminal());
        for s in ["new", "running", "failed", "orphaned"] {
            assert_eq!(s.parse::<TaskState>().unwrap().as_str(), s);
        }
    }
}
