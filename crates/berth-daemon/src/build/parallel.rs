//! Independent stages built at the same time.
//!
//! The plan's stages form a graph (`FROM stage`, `COPY --from=stage`). When
//! no two needed stages are independent, the build runs one stage after the
//! other on the calling thread, and its output is exactly the classic
//! builder's. Otherwise a small scheduler starts every stage whose
//! dependencies are built, at most [`MAX_PARALLEL`] at once, each on a
//! thread of its own with its own [`Builder`]; their progress comes back
//! through a channel and goes out line by line, each line prefixed with the
//! stage's name (`[build] Step 3/9 : RUN make`), so it stays readable.
//!
//! The first failure stops the build: no further stage starts, the running
//! ones stop before their next step, and once all have returned the failure
//! is reported; every container any of them made is removed with the
//! build's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use berth_api::backend::BuildMessage;
use berth_build::BuildPlan;

use super::{BuildError, Builder, Result, StageResult};

/// How many stages build at once (each may run a RUN container).
pub(crate) const MAX_PARALLEL: usize = 4;

/// Whether two of `order`'s stages depend on each other neither directly
/// nor through others: only then is there anything to run in parallel.
pub(crate) fn has_independent_stages(plan: &BuildPlan) -> bool {
    let closure = |i: usize| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![i];
        while let Some(s) = todo.pop() {
            for &d in &plan.stages[s].deps {
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        seen
    };
    let ancestors: Vec<(usize, BTreeSet<usize>)> =
        plan.order.iter().map(|&i| (i, closure(i))).collect();
    ancestors.iter().enumerate().any(|(n, (a, anc_a))| {
        ancestors[n + 1..]
            .iter()
            .any(|(b, anc_b)| !anc_a.contains(b) && !anc_b.contains(a))
    })
}

/// The stages of `pending` whose dependencies are all in `done`, in order.
pub(crate) fn ready(plan: &BuildPlan, pending: &[usize], done: &BTreeSet<usize>) -> Vec<usize> {
    pending
        .iter()
        .copied()
        .filter(|&i| plan.stages[i].deps.iter().all(|d| done.contains(d)))
        .collect()
}

/// What a stage's thread sends back.
pub(crate) enum Event {
    Out(BuildMessage),
    Done {
        idx: usize,
        result: Result<StageResult>,
        containers: Vec<String>,
    },
}

/// A stage's progress text split into whole lines, each prefixed.
pub(crate) struct LinePrefixer {
    prefix: String,
    partial: String,
}

impl LinePrefixer {
    pub fn new(prefix: String) -> LinePrefixer {
        LinePrefixer {
            prefix,
            partial: String::new(),
        }
    }

    /// The complete lines of `text` (with what came before), prefixed.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.partial.push_str(text);
        let end = self.partial.rfind('\n')? + 1;
        let rest = self.partial.split_off(end);
        let whole = std::mem::replace(&mut self.partial, rest);
        Some(
            whole
                .split_inclusive('\n')
                .map(|l| format!("{}{l}", self.prefix))
                .collect(),
        )
    }

    /// A last line without its newline, if any.
    pub fn flush(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let l = std::mem::take(&mut self.partial);
        Some(format!("{}{l}\n", self.prefix))
    }
}

impl Builder<'_> {
    /// Builds `plan.order` with independent stages in parallel.
    pub(super) fn stages_in_parallel(
        &mut self,
        plan: &BuildPlan,
        build_args: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let cancel = AtomicBool::new(false);
        let mut pending: Vec<usize> = plan.order.clone();
        let mut done = BTreeSet::new();
        let mut running = 0usize;
        let mut failure: Option<BuildError> = None;
        let (tx, rx) = mpsc::channel::<Event>();
        std::thread::scope(|scope| {
            loop {
                if failure.is_none() {
                    for idx in ready(plan, &pending, &done) {
                        if running == MAX_PARALLEL {
                            break;
                        }
                        pending.retain(|&p| p != idx);
                        running += 1;
                        let seed = self.worker_seed(plan, idx, tx.clone(), &cancel);
                        let tx = tx.clone();
                        scope.spawn(move || {
                            let mut worker = seed.into_builder();
                            let result = worker.stage(plan, idx, build_args);
                            worker.out.flush();
                            let removed = worker.join_removals();
                            let result = result.and(removed);
                            let result = result.map(|()| {
                                worker.results[idx].clone().expect("a built stage's result")
                            });
                            let containers = std::mem::take(&mut worker.containers);
                            let _ = tx.send(Event::Done {
                                idx,
                                result,
                                containers,
                            });
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                match rx.recv().expect("a stage thread holds a sender") {
                    Event::Out(m) => self.out.send(m),
                    Event::Done {
                        idx,
                        result,
                        containers,
                    } => {
                        running -= 1;
                        self.containers.extend(containers);
                        match result {
                            Ok(r) => {
                                self.results[idx] = Some(r);
                                done.insert(idx);
                            }
                            Err(e) => {
                                cancel.store(true, Ordering::SeqCst);
                                // The first real failure; the others only stopped.
                                if failure.is_none() && !e.is_cancelled() {
                                    failure = Some(e);
                                }
                            }
                        }
                    }
                }
            }
        });
        // Output the threads sent after their `Done` (none: `Done` is last).
        while let Ok(Event::Out(m)) = rx.try_recv() {
            self.out.send(m);
        }
        match failure {
            Some(e) => Err(e),
            None if cancel.load(Ordering::SeqCst) => Err(BuildError::cancelled()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_build::{plan, BuildOptions, Dockerfile};

    fn plan_of(text: &str, target: Option<&str>) -> BuildPlan {
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        plan(
            &df,
            &BuildOptions {
                target: target.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn independence() {
        let chain = plan_of(
            "FROM busybox AS a\nFROM a AS b\nFROM busybox\nCOPY --from=b /x /x\n",
            None,
        );
        assert!(!has_independent_stages(&chain));
        let fan = plan_of(
            "FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n",
            None,
        );
        assert!(has_independent_stages(&fan));
        // --target a: only one stage is needed.
        assert!(!has_independent_stages(&plan_of(
            "FROM busybox AS a\nFROM busybox AS b\n",
            Some("a")
        )));
        let done: BTreeSet<usize> = [0].into();
        assert_eq!(ready(&fan, &[1, 2], &done), vec![1]);
        let done: BTreeSet<usize> = [0, 1].into();
        assert_eq!(ready(&fan, &[2], &done), vec![2]);
        assert_eq!(ready(&fan, &[0, 1, 2], &BTreeSet::new()), vec![0, 1]);
    }

    #[test]
    fn lines_are_prefixed_whole() {
        let mut p = LinePrefixer::new("[a] ".into());
        assert_eq!(
            p.push("Step 1/2 : RUN x\n"),
            Some("[a] Step 1/2 : RUN x\n".into())
        );
        assert_eq!(p.push("par"), None);
        assert_eq!(
            p.push("tial\nmore\nend"),
            Some("[a] partial\n[a] more\n".into())
        );
        assert_eq!(p.flush(), Some("[a] end\n".into()));
        assert_eq!(p.flush(), None);
    }
}
