//! The orchestrator as pure planning: a service's desired state and the
//! tasks that exist → the task changes that bring one to the other.
//!
//! `plan` is called on every change (a task's container exits, a service
//! is created, scaled, updated or removed, a node is drained) and reads no
//! clock or store: the caller passes the time and an id generator, and
//! applies the [`Action`]s to the store, compare-and-swap on each task's
//! version. Starting and stopping containers is the executor's job: it
//! moves a task's *state* towards its *desired state*; the plan only
//! changes desired states and creates and deletes tasks.
//!
//! What it decides, as swarmkit's orchestrators do:
//! - **slots**: a replicated service has slots 1..=replicas, a global one a
//!   slot per eligible node; a slot is occupied while one of its tasks is
//!   desired running. Missing slots get a new task; slots beyond the replica
//!   count are told to `remove`, the highest and not-running first.
//! - **restarts**: a task desired running that ended is replaced in its
//!   slot per `RestartPolicy` (condition any | on-failure | none,
//!   max attempts within a window). The old task is told to `shutdown` and
//!   kept as history. `Delay` is a crash-loop brake: a task is replaced at
//!   once, unless it and its predecessor in the slot both ended within
//!   `Delay` of starting; then the replacement waits until `Delay` after
//!   the end. (swarmkit always waits `Delay`, 5 s by default from the
//!   docker CLI; berth heals a task that was not crash-looping at once.)
//! - **updates**: a task whose spec differs from the service's is
//!   replaced, `UpdateConfig.Parallelism` at a time (0: all), the next
//!   batch only once the previous one runs.
//! - **history**: per slot, the newest `TaskHistoryRetentionLimit` ended
//!   tasks are kept, older ones deleted; tasks told to `remove` are deleted
//!   once they have stopped.
//! - **jobs**: replicated jobs run `TotalCompletions` successful tasks,
//!   `MaxConcurrent` at a time; global jobs one per node; neither restarts a
//!   task that completed.

use std::collections::BTreeMap;

use berth_wire::swarm::{Service, Task, TaskStatus};

use crate::constraints::{parse_all, NodeFacts};
use crate::objects::{format_time, TaskRecord, TaskState};

/// Swarm's default `TaskHistoryRetentionLimit`.
pub const DEFAULT_HISTORY: usize = 5;

/// The one node, as placement sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub facts: NodeFacts,
    /// `active` | `pause` | `drain`.
    pub availability: String,
}

pub struct Context<'a> {
    /// Unix nanoseconds.
    pub now: i64,
    pub history: usize,
    pub node: &'a NodeView,
    pub new_id: &'a mut dyn FnMut() -> String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create(TaskRecord),
    /// Store this task (its desired state changed); compare-and-swap on
    /// the version it was read at.
    Update(TaskRecord),
    Delete {
        id: String,
        version: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Replicated(u64),
    Global,
    ReplicatedJob { max_concurrent: u64, total: u64 },
    GlobalJob,
}

fn mode(svc: &Service) -> Mode {
    let m = svc.spec.mode.clone().unwrap_or_default();
    if m.global.is_some() {
        Mode::Global
    } else if let Some(j) = m.replicated_job {
        let max_concurrent = j.max_concurrent.unwrap_or(1).max(1);
        Mode::ReplicatedJob {
            max_concurrent,
            total: j.total_completions.unwrap_or(max_concurrent),
        }
    } else if m.global_job.is_some() {
        Mode::GlobalJob
    } else {
        Mode::Replicated(m.replicated.and_then(|r| r.replicas).unwrap_or(1))
    }
}

impl Mode {
    fn is_job(self) -> bool {
        matches!(self, Mode::ReplicatedJob { .. } | Mode::GlobalJob)
    }
}

/// `RestartPolicy` with swarm's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub condition: Condition,
    pub delay: i64,
    pub max_attempts: u64,
    pub window: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    None,
    OnFailure,
    Any,
}

pub fn restart_policy(svc: &Service) -> Restart {
    let job = mode(svc).is_job();
    let p = svc
        .spec
        .task_template
        .restart_policy
        .clone()
        .unwrap_or_default();
    let condition = match p.condition.as_deref() {
        Some("none") => Condition::None,
        Some("on-failure") => Condition::OnFailure,
        Some("any") => Condition::Any,
        _ if job => Condition::OnFailure,
        _ => Condition::Any,
    };
    Restart {
        condition,
        delay: p.delay.unwrap_or(5_000_000_000).max(0),
        max_attempts: p.max_attempts.unwrap_or(0),
        window: p.window.unwrap_or(0).max(0),
    }
}

/// The key a task belongs to: its slot, or its node for global modes.
fn slot_key(t: &TaskRecord) -> String {
    match t.slot() {
        Some(s) => format!("{s:020}"),
        None => t.task.node_id.clone(),
    }
}

fn set_desired(t: &TaskRecord, d: TaskState) -> TaskRecord {
    let mut t = t.clone();
    t.task.desired_state = d.as_str().to_string();
    t
}

fn new_task(
    svc: &Service,
    slot: Option<u64>,
    ctx: &mut Context,
    placeable: Result<(), String>,
) -> TaskRecord {
    let now = format_time(ctx.now);
    let (state, message, err) = match placeable {
        Ok(()) => ("assigned", "scheduler assigned task to node", None),
        Err(e) => ("pending", "pending task scheduling", Some(e)),
    };
    TaskRecord {
        task: Task {
            id: (ctx.new_id)(),
            created_at: now.clone(),
            updated_at: now.clone(),
            spec: svc.spec.task_template.clone(),
            service_id: svc.id.clone(),
            slot,
            node_id: if err.is_none() {
                ctx.node.facts.id.clone()
            } else {
                String::new()
            },
            status: TaskStatus {
                timestamp: now,
                state: state.to_string(),
                message: message.to_string(),
                err,
                ..Default::default()
            },
            desired_state: "running".to_string(),
            ..Default::default()
        },
        spec_version: svc.version.index,
        ..Default::default()
    }
}

/// Why the node cannot take the service's tasks, in swarmkit's words.
fn placement(svc: &Service, node: &NodeView) -> Result<(), String> {
    let exprs = svc
        .spec
        .task_template
        .placement
        .as_ref()
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default();
    let constraints = parse_all(&exprs).map_err(|e| e.to_string())?;
    if node.availability != "active" {
        return Err(format!(
            "no suitable node (1 node not available for new tasks; availability {})",
            node.availability
        ));
    }
    if constraints.iter().all(|c| c.matches(&node.facts)) {
        Ok(())
    } else {
        Err("no suitable node (scheduling constraints not satisfied on 1 node)".into())
    }
}

/// Plans one service. `tasks` are all the service's tasks.
pub fn plan(svc: &Service, tasks: &[TaskRecord], ctx: &mut Context) -> Vec<Action> {
    let mode = mode(svc);
    let policy = restart_policy(svc);
    let mut actions = Vec::new();
    let placeable = placement(svc, ctx.node);
    let drained = ctx.node.availability == "drain";

    // Group by slot, oldest first.
    let mut slots: BTreeMap<String, Vec<&TaskRecord>> = BTreeMap::new();
    for t in tasks {
        slots.entry(slot_key(t)).or_default().push(t);
    }
    for group in slots.values_mut() {
        group.sort_by_key(|t| (t.created(), t.task.id.clone()));
    }

    // Ended tasks still desired running: restart or leave be.
    let mut occupied: BTreeMap<String, Occ> = BTreeMap::new();
    let mut completed = 0u64;
    for (key, group) in &slots {
        completed += group
            .iter()
            .filter(|t| t.state() == TaskState::Complete)
            .count() as u64;
        let Some(live) = group
            .iter()
            .rev()
            .find(|t| t.desired() <= TaskState::Running)
        else {
            continue;
        };
        occupied.insert(key.clone(), Occ::of(live));
        let state = live.state();
        if drained && !state.is_terminal() {
            actions.push(Action::Update(set_desired(live, TaskState::Shutdown)));
            occupied.remove(key);
            continue;
        }
        if state == TaskState::Pending && live.task.node_id.is_empty() {
            // Left pending because no node fitted; place it once one does
            // (a label added, the node made active again).
            if placeable.is_ok() {
                let mut placed = (*live).clone();
                placed.task.node_id = ctx.node.facts.id.clone();
                placed.task.status.state = TaskState::Assigned.as_str().into();
                placed.task.status.message = "scheduler assigned task to node".into();
                placed.task.status.err = None;
                placed.task.status.timestamp = format_time(ctx.now);
                actions.push(Action::Update(placed));
            }
            continue;
        }
        if !state.is_terminal() {
            continue;
        }
        let failed = state != TaskState::Complete;
        let restart = match policy.condition {
            Condition::Any => !mode.is_job() || failed,
            Condition::OnFailure => failed,
            Condition::None => false,
        };
        if !restart {
            continue;
        }
        let in_window = policy.window == 0 || ctx.now - live.attempts_since < policy.window;
        let attempts = if in_window { live.attempts } else { 0 };
        if policy.max_attempts > 0 && attempts >= policy.max_attempts {
            continue;
        }
        actions.push(Action::Update(set_desired(live, TaskState::Shutdown)));
        occupied.remove(key);
        if drained {
            continue;
        }
        let mut next = new_task(svc, live.slot(), ctx, placeable.clone());
        next.attempts = attempts + 1;
        next.attempts_since = if in_window && attempts > 0 {
            live.attempts_since
        } else {
            ctx.now
        };
        let ran_for = if live.started_at > 0 {
            live.status_time() - live.started_at
        } else {
            0
        };
        let quick = live.started_at == 0 || ran_for < policy.delay;
        next.quick_failures = if quick { live.quick_failures + 1 } else { 0 };
        if quick && live.quick_failures > 0 {
            next.start_after = live.status_time().max(ctx.now - policy.delay) + policy.delay;
            if next.start_after <= ctx.now {
                next.start_after = 0;
            }
        }
        if matches!(mode, Mode::Global | Mode::GlobalJob) {
            next.task.slot = None;
        }
        occupied.insert(
            key.clone(),
            Occ {
                slot: next.slot(),
                running: false,
                task: None,
            },
        );
        actions.push(Action::Create(next));
    }

    // Scale: create missing slots, remove extra ones.
    if !drained {
        match mode {
            Mode::Replicated(n) => {
                let mut keep: Vec<&Occ> = occupied.values().collect();
                // Keep running tasks first, then low slots.
                keep.sort_by_key(|o| (!o.running, o.slot));
                for o in keep.iter().skip(n as usize) {
                    if let Some(t) = o.task {
                        actions.push(Action::Update(set_desired(t, TaskState::Remove)));
                    }
                }
                let used: Vec<u64> = keep
                    .iter()
                    .take(n as usize)
                    .filter_map(|o| o.slot)
                    .collect();
                let missing = n.saturating_sub(keep.len().min(n as usize) as u64);
                let mut slot = 1;
                for _ in 0..missing {
                    while used.contains(&slot) || occupied_slot(&actions, slot) {
                        slot += 1;
                    }
                    let t = new_task(svc, Some(slot), ctx, placeable.clone());
                    actions.push(Action::Create(t));
                    slot += 1;
                }
            }
            Mode::Global | Mode::GlobalJob => {
                let key = ctx.node.facts.id.clone();
                let done = mode == Mode::GlobalJob && completed > 0;
                if !occupied.contains_key(&key) && !done {
                    if placeable.is_ok() {
                        let mut t = new_task(svc, None, ctx, Ok(()));
                        t.task.slot = None;
                        actions.push(Action::Create(t));
                    }
                } else if let (Some(Occ { task: Some(t), .. }), Err(_)) =
                    (occupied.get(&key), &placeable)
                {
                    if !t.state().is_terminal() && ctx.node.availability != "pause" {
                        actions.push(Action::Update(set_desired(t, TaskState::Shutdown)));
                    }
                }
            }
            Mode::ReplicatedJob {
                max_concurrent,
                total,
            } => {
                let active = occupied
                    .values()
                    .filter(|o| o.task.is_none_or(|t| !t.state().is_terminal()))
                    .count() as u64;
                let want = total
                    .saturating_sub(completed + active)
                    .min(max_concurrent.saturating_sub(active));
                let mut slot = slots
                    .values()
                    .flatten()
                    .filter_map(|t| t.slot())
                    .max()
                    .unwrap_or(0)
                    .max(created_max_slot(&actions));
                for _ in 0..want {
                    slot += 1;
                    let t = new_task(svc, Some(slot), ctx, placeable.clone());
                    actions.push(Action::Create(t));
                }
            }
        }
    }

    // Update: replace tasks that run another spec, a batch at a time.
    if !mode.is_job() && !drained {
        let parallelism = svc
            .spec
            .update_config
            .as_ref()
            .and_then(|u| u.parallelism)
            .unwrap_or(1);
        let busy = occupied.values().any(|o| {
            o.task.is_some_and(|t| {
                t.task.spec == svc.spec.task_template && t.state() < TaskState::Running
            })
        }) || actions.iter().any(|a| matches!(a, Action::Create(_)));
        if !busy {
            let mut dirty: Vec<&TaskRecord> = occupied
                .values()
                .filter_map(|o| o.task)
                .filter(|t| t.task.spec != svc.spec.task_template && !is_changed(&actions, t.id()))
                .collect();
            dirty.sort_by_key(|t| t.slot());
            let batch = if parallelism == 0 {
                dirty.len()
            } else {
                parallelism as usize
            };
            for t in dirty.into_iter().take(batch) {
                actions.push(Action::Update(set_desired(t, TaskState::Shutdown)));
                let mut next = new_task(svc, t.slot(), ctx, placeable.clone());
                if t.slot().is_none() {
                    next.task.slot = None;
                }
                actions.push(Action::Create(next));
            }
        }
    }

    // History: delete stopped tasks told to go, and all but the newest
    // `history` ended ones per slot.
    for group in slots.values() {
        let mut ended: Vec<&&TaskRecord> = group
            .iter()
            .filter(|t| {
                let desired = desired_after(&actions, t);
                desired > TaskState::Running && t.state().is_terminal()
            })
            .collect();
        for t in &ended {
            if desired_after(&actions, t) == TaskState::Remove {
                actions.push(Action::Delete {
                    id: t.task.id.clone(),
                    version: t.task.version.index,
                });
            }
        }
        ended.retain(|t| desired_after(&actions, t) != TaskState::Remove);
        let extra = ended.len().saturating_sub(ctx.history);
        for t in ended.into_iter().take(extra) {
            actions.push(Action::Delete {
                id: t.task.id.clone(),
                version: t.task.version.index,
            });
        }
    }
    actions
}

/// An occupied slot: its live task, or a task this plan creates.
struct Occ<'a> {
    slot: Option<u64>,
    running: bool,
    task: Option<&'a TaskRecord>,
}

impl<'a> Occ<'a> {
    fn of(t: &'a TaskRecord) -> Occ<'a> {
        Occ {
            slot: t.slot(),
            running: t.state() == TaskState::Running,
            task: Some(t),
        }
    }
}

fn is_changed(actions: &[Action], id: &str) -> bool {
    actions.iter().any(|a| match a {
        Action::Create(t) | Action::Update(t) => t.task.id == id,
        Action::Delete { id: d, .. } => d == id,
    })
}

fn occupied_slot(actions: &[Action], slot: u64) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Create(t) if t.slot() == Some(slot)))
}

fn created_max_slot(actions: &[Action]) -> u64 {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(t) => t.slot(),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// A task's desired state once `actions` apply.
fn desired_after(actions: &[Action], t: &TaskRecord) -> TaskState {
    actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Update(u) if u.task.id == t.task.id => Some(u.desired()),
            _ => None,
        })
        .unwrap_or_else(|| t.desired())
}

/// Tasks that are to be stopped: desired past running, not yet ended.
pub fn to_stop(tasks: &[TaskRecord]) -> impl Iterator<Item = &TaskRecord> {
    tasks
        .iter()
        .filter(|t| t.desired() > TaskState::Running && !t.state().is_terminal())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::swarm::{
        ContainerSpec, ObjectVersion, Placement, ReplicatedJob, ReplicatedService, RestartPolicy,
        ServiceMode, ServiceSpec, TaskSpec,
    };

    const S: i64 = 1_000_000_000;
    const NOW: i64 = 1_000_000 * S;

    fn node(availability: &str) -> NodeView {
        NodeView {
            facts: NodeFacts {
                id: "node1".into(),
                hostname: "host".into(),
                role: "manager".into(),
                ..Default::default()
            },
            availability: availability.into(),
        }
    }

    fn template(image: &str) -> TaskSpec {
        TaskSpec {
            container_spec: Some(ContainerSpec {
                image: Some(image.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(mode: ServiceMode) -> Service {
        Service {
            id: "svc".into(),
            version: ObjectVersion { index: 10 },
            spec: ServiceSpec {
                name: Some("web".into()),
                task_template: template("busybox"),
                mode: Some(mode),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn replicated(n: u64) -> Service {
        service(ServiceMode {
            replicated: Some(ReplicatedService { replicas: Some(n) }),
            ..Default::default()
        })
    }

    fn task(id: &str, slot: u64, state: TaskState, desired: TaskState, at: i64) -> TaskRecord {
        TaskRecord {
            task: Task {
                id: id.into(),
                version: ObjectVersion { index: 3 },
                created_at: format_time(at),
                spec: template("busybox"),
                service_id: "svc".into(),
                slot: Some(slot),
                node_id: "node1".into(),
                status: TaskStatus {
                    timestamp: format_time(at),
                    state: state.as_str().into(),
                    ..Default::default()
                },
                desired_state: desired.as_str().into(),
                ..Default::default()
            },
            started_at: at - 60 * S,
            spec_version: 10,
            ..Default::default()
        }
    }

    fn running(id: &str, slot: u64) -> TaskRecord {
        task(
            id,
            slot,
            TaskState::Running,
            TaskState::Running,
            NOW - 100 * S,
        )
    }

    fn run_plan(svc: &Service, tasks: &[TaskRecord], n: &NodeView) -> Vec<Action> {
        let mut counter = 0;
        let mut new_id = || {
            counter += 1;
            format!("new{counter}")
        };
        let mut ctx = Context {
            now: NOW,
            history: DEFAULT_HISTORY,
            node: n,
            new_id: &mut new_id,
        };
        plan(svc, tasks, &mut ctx)
    }

    fn created(actions: &[Action]) -> Vec<(Option<u64>, String, i64)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Create(t) => Some((t.slot(), t.task.status.state.clone(), t.start_after)),
                _ => None,
            })
            .collect()
    }

    fn desired(actions: &[Action]) -> Vec<(String, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Update(t) => Some((t.task.id.clone(), t.task.desired_state.clone())),
                _ => None,
            })
            .collect()
    }

    fn deleted(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Delete { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_service_gets_a_task_per_slot() {
        let a = run_plan(&replicated(3), &[], &node("active"));
        assert_eq!(
            created(&a),
            (1..=3)
                .map(|s| (Some(s), "assigned".to_string(), 0))
                .collect::<Vec<_>>()
        );
        let Action::Create(t) = &a[0] else { panic!() };
        assert_eq!(t.task.desired_state, "running");
        assert_eq!(t.task.node_id, "node1");
        assert_eq!(t.task.service_id, "svc");
        assert_eq!(t.spec_version, 10);
    }

    #[test]
    fn a_converged_service_needs_nothing() {
        let tasks = [running("a", 1), running("b", 2)];
        assert_eq!(run_plan(&replicated(2), &tasks, &node("active")), vec![]);
    }

    #[test]
    fn a_task_that_ran_long_is_replaced_at_once() {
        let dead = task("a", 1, TaskState::Failed, TaskState::Running, NOW - S);
        let a = run_plan(&replicated(2), &[dead, running("b", 2)], &node("active"));
        assert_eq!(desired(&a), vec![("a".into(), "shutdown".into())]);
        assert_eq!(created(&a), vec![(Some(1), "assigned".into(), 0)]);
        let Action::Create(t) = &a[1] else { panic!() };
        assert_eq!(t.attempts, 1);
    }

    #[test]
    fn a_crash_loop_waits_the_restart_delay() {
        let mut dead = task("a", 1, TaskState::Failed, TaskState::Running, NOW - S);
        dead.started_at = NOW - 2 * S; // ran 1 s, less than the 5 s delay
                                       // The first quick failure is replaced at once…
        let a = run_plan(&replicated(1), std::slice::from_ref(&dead), &node("active"));
        assert_eq!(created(&a), vec![(Some(1), "assigned".into(), 0)]);
        let Some(Action::Create(next)) = a.iter().find(|a| matches!(a, Action::Create(_))) else {
            panic!()
        };
        assert_eq!(next.quick_failures, 1);
        // …the second in a row waits out the delay after it ended.
        dead.quick_failures = 1;
        let a = run_plan(&replicated(1), &[dead], &node("active"));
        assert_eq!(created(&a), vec![(Some(1), "assigned".into(), NOW + 4 * S)]);
    }

    #[test]
    fn restart_conditions() {
        let mut svc = replicated(1);
        let complete = task("a", 1, TaskState::Complete, TaskState::Running, NOW - S);
        let failed = task("a", 1, TaskState::Failed, TaskState::Running, NOW - S);
        for (condition, t, restarts) in [
            ("any", &complete, true),
            ("on-failure", &complete, false),
            ("on-failure", &failed, true),
            ("none", &failed, false),
        ] {
            svc.spec.task_template.restart_policy = Some(RestartPolicy {
                condition: Some(condition.into()),
                ..Default::default()
            });
            let mut t = t.clone();
            t.task.spec = svc.spec.task_template.clone();
            let a = run_plan(&svc, std::slice::from_ref(&t), &node("active"));
            assert_eq!(
                !created(&a).is_empty(),
                restarts,
                "{condition} {}",
                t.task.status.state
            );
            if !restarts {
                assert_eq!(a, vec![], "a slot left ended is not refilled");
            }
        }
    }

    #[test]
    fn max_attempts_within_the_window() {
        let mut svc = replicated(1);
        svc.spec.task_template.restart_policy = Some(RestartPolicy {
            max_attempts: Some(2),
            window: Some(60 * S),
            ..Default::default()
        });
        let mut dead = task("a", 1, TaskState::Failed, TaskState::Running, NOW - S);
        dead.task.spec = svc.spec.task_template.clone();
        dead.attempts = 2;
        dead.attempts_since = NOW - 10 * S;
        assert_eq!(run_plan(&svc, &[dead.clone()], &node("active")), vec![]);
        // Outside the window the count starts again.
        dead.attempts_since = NOW - 61 * S;
        let a = run_plan(&svc, &[dead], &node("active"));
        let Some(Action::Create(t)) = a.iter().find(|a| matches!(a, Action::Create(_))) else {
            panic!("{a:?}")
        };
        assert_eq!((t.attempts, t.attempts_since), (1, NOW));
    }

    #[test]
    fn scaling_down_removes_high_and_not_running_slots_first() {
        let mut starting = running("c", 1);
        starting.task.status.state = "starting".into();
        let tasks = [starting, running("a", 2), running("b", 3)];
        let a = run_plan(&replicated(2), &tasks, &node("active"));
        assert_eq!(desired(&a), vec![("c".into(), "remove".into())]);
        assert!(created(&a).is_empty());
    }

    #[test]
    fn stopped_tasks_told_to_go_are_deleted_and_history_is_capped() {
        let gone = task("gone", 3, TaskState::Shutdown, TaskState::Remove, NOW - S);
        let mut tasks = vec![running("live", 1), gone];
        for i in 0..7 {
            tasks.push(task(
                &format!("old{i}"),
                1,
                TaskState::Failed,
                TaskState::Shutdown,
                NOW - (100 - i) * S,
            ));
        }
        let a = run_plan(&replicated(1), &tasks, &node("active"));
        let mut d = deleted(&a);
        d.sort();
        assert_eq!(d, vec!["gone", "old0", "old1"]);
    }

    #[test]
    fn an_update_replaces_a_batch_at_a_time() {
        let mut svc = replicated(3);
        svc.spec.task_template = template("busybox:2");
        let tasks = [running("a", 1), running("b", 2), running("c", 3)];
        let a = run_plan(&svc, &tasks, &node("active"));
        assert_eq!(desired(&a), vec![("a".into(), "shutdown".into())]);
        assert_eq!(created(&a), vec![(Some(1), "assigned".into(), 0)]);
        // While the new task starts, nothing else is replaced.
        let Action::Create(mut new) = a[1].clone() else {
            panic!()
        };
        new.task.status.state = "starting".into();
        let old = set_desired(&tasks[0], TaskState::Shutdown);
        let a = run_plan(
            &svc,
            &[old, new.clone(), tasks[1].clone(), tasks[2].clone()],
            &node("active"),
        );
        assert_eq!(a, vec![]);
    }

    #[test]
    fn constraints_that_fail_leave_the_task_pending() {
        let mut svc = replicated(1);
        svc.spec.task_template.placement = Some(Placement {
            constraints: Some(vec!["node.labels.zone==east".into()]),
            ..Default::default()
        });
        let a = run_plan(&svc, &[], &node("active"));
        let Action::Create(t) = &a[0] else { panic!() };
        assert_eq!(t.task.status.state, "pending");
        assert_eq!(
            t.task.status.err.as_deref(),
            Some("no suitable node (scheduling constraints not satisfied on 1 node)")
        );
        assert_eq!(t.task.node_id, "");
    }

    #[test]
    fn a_pending_task_is_placed_once_the_node_fits() {
        let mut svc = replicated(1);
        svc.spec.task_template.placement = Some(Placement {
            constraints: Some(vec!["node.labels.zone==east".into()]),
            ..Default::default()
        });
        let a = run_plan(&svc, &[], &node("active"));
        let Action::Create(pending) = a[0].clone() else {
            panic!()
        };
        assert_eq!(
            run_plan(&svc, std::slice::from_ref(&pending), &node("active")),
            vec![]
        );
        let mut east = node("active");
        east.facts.labels.insert("zone".into(), "east".into());
        let a = run_plan(&svc, &[pending], &east);
        let [Action::Update(t)] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(
            (t.task.status.state.as_str(), t.task.node_id.as_str()),
            ("assigned", "node1")
        );
        assert_eq!(t.task.status.err, None);
    }

    #[test]
    fn draining_stops_every_task() {
        let a = run_plan(
            &replicated(2),
            &[running("a", 1), running("b", 2)],
            &node("drain"),
        );
        assert_eq!(
            desired(&a),
            vec![
                ("a".into(), "shutdown".into()),
                ("b".into(), "shutdown".into())
            ]
        );
        assert!(created(&a).is_empty());
    }

    #[test]
    fn a_replicated_job_runs_its_completions() {
        let svc = service(ServiceMode {
            replicated_job: Some(ReplicatedJob {
                max_concurrent: Some(2),
                total_completions: Some(3),
            }),
            ..Default::default()
        });
        let a = run_plan(&svc, &[], &node("active"));
        assert_eq!(created(&a).len(), 2);
        let done =
            |id: &str, slot| task(id, slot, TaskState::Complete, TaskState::Running, NOW - S);
        let a = run_plan(&svc, &[done("a", 1), done("b", 2)], &node("active"));
        assert_eq!(created(&a), vec![(Some(3), "assigned".into(), 0)]);
        let a = run_plan(
            &svc,
            &[done("a", 1), done("b", 2), done("c", 3)],
            &node("active"),
        );
        assert_eq!(a, vec![], "a finished job starts nothing");
    }

    #[test]
    fn a_global_service_runs_one_task_on_the_node() {
        let svc = service(ServiceMode {
            global: Some(Default::default()),
            ..Default::default()
        });
        let a = run_plan(&svc, &[], &node("active"));
        let Action::Create(t) = &a[0] else { panic!() };
        assert_eq!((t.slot(), t.task.node_id.as_str()), (None, "node1"));
        assert_eq!(a.len(), 1);
        let mut t = t.clone();
        t.task.status.state = "running".into();
        assert_eq!(run_plan(&svc, &[t], &node("active")), vec![]);
    }
}
