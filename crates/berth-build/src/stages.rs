//! From a [`Dockerfile`] to a [`BuildPlan`]: the stages, what each depends
//! on, and the order in which to build the stages `--target` needs.
//!
//! - `ARG`s before the first `FROM` are *global*: with the platform args
//!   they expand `FROM` lines, and a stage sees them only by redeclaring.
//! - Each `FROM` starts a stage; `AS name` names it. Its base is
//!   `scratch`, an earlier stage (by name, or by index), or an image.
//! - A stage depends on its base stage and on the stages it reads with
//!   `COPY --from` and `RUN --mount=…,from=` (names or indexes, after
//!   expansion with the stage's args).
//! - The target (default: the last stage) and its dependency closure are
//!   ordered so dependencies come first; a cycle is an error.
//! - Build args that no `ARG` of the build declares are reported, as
//!   Docker's "One or more build-args [...] were not consumed" warning.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::args::{is_builtin, is_predefined, platform_args, ArgScope, Platform};
use crate::error::{DockerfileError, Loc, Reason};
use crate::expand::{Env, Lexer};
use crate::instructions::{Dockerfile, Instruction, Located};

/// Inputs of a build that shape the plan.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub build_platform: Platform,
    /// Defaults to the build platform.
    pub target_platform: Option<Platform>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            target: None,
            build_platform: Platform::host(),
            target_platform: None,
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    Scratch,
    /// An image reference, expanded.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// `FROM --platform`, expanded.
    pub platform: Option<String>,
    /// The FROM instruction.
    pub from: Located,
    /// The instructions after FROM, unexpanded.
    pub instructions: Vec<Located>,
    /// Stages this one needs (base, COPY --from, RUN --mount from=).
    pub deps: BTreeSet<usize>,
    /// Images (not stages) that COPY --from / RUN --mount from= name, with
    /// the instruction naming each, so they can be resolved before any
    /// step runs.
    pub images: Vec<(String, Located)>,
}

/// The stages of a Dockerfile and what to build for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    pub stages: Vec<Stage>,
    /// Global args with values, platform args included: the env of FROM
    /// lines, and what a stage's `ARG NAME` falls back to.
    pub global_args: Env,
    pub target: usize,
    /// Stages to build, dependencies first, ending with the target.
    pub order: Vec<usize>,
    /// `--build-arg` names no `ARG` of the build declares (sorted).
    pub unused_build_args: Vec<String>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error("target stage {0:?} could not be found")]
    UnknownTarget(String),
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
}

impl berth_core::HasKind for StageError {
    fn kind(&self) -> berth_core::ErrorKind {
        berth_core::ErrorKind::InvalidArgument
    }
}

impl Stage {
    /// The stage's name, or its index, as Docker shows it.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// Finds a stage by name (case-insensitive) or index among `stages`.
fn lookup(stages: &[(Option<String>, usize)], reference: &str) -> Option<usize> {
    let lower = reference.to_ascii_lowercase();
    if let Some((_, i)) = stages.iter().find(|(n, _)| n.as_deref() == Some(&lower)) {
        return Some(*i);
    }
    reference
        .parse::<usize>()
        .ok()
        .filter(|i| *i < stages.len())
}

/// Splits `df` into stages and plans the build of `opts.target`.
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<BuildPlan, StageError> {
    let lx = Lexer::new(df.directives.escape);
    let target_platform = opts
        .target_platform
        .clone()
        .unwrap_or_else(|| opts.build_platform.clone());
    let mut globals = platform_args(&opts.build_platform, &target_platform);
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let loc = |l: &Located| Loc {
        file: &df.file,
        line: l.start_line,
        instruction: Some(l.instruction.keyword()),
    };

    // Global scope, then one group of instructions per FROM.
    let mut groups: Vec<(Located, Vec<Located>)> = Vec::new();
    for l in &df.instructions {
        match (&l.instruction, groups.last_mut()) {
            (Instruction::From(_), _) => groups.push((l.clone(), Vec::new())),
            (_, Some((_, body))) => body.push(l.clone()),
            (Instruction::Arg(_), None) => {
                let Instruction::Arg(decls) = l.expand(&df.file, &lx, &globals)? else {
                    unreachable!("ARG expands to ARG")
                };
                for d in decls {
                    declared.insert(d.name.clone());
                    match opts.build_args.get(&d.name).cloned().or(d.default) {
                        Some(v) => globals.set(d.name, v),
                        None => globals.remove(&d.name),
                    }
                }
            }
            (_, None) => {
                return Err(loc(l)
                    .err(Reason::Arguments(
                        "no build stage in current context".into(),
                    ))
                    .into())
            }
        }
    }
    if groups.is_empty() {
        return Err(StageError::NoStages);
    }
    // Names first, so COPY --from may name a later stage.
    let mut names: Vec<(Option<String>, usize)> = Vec::new();
    for (i, (from, _)) in groups.iter().enumerate() {
        let Instruction::From(f) = &from.instruction else {
            unreachable!()
        };
        if let Some(n) = &f.name {
            if names.iter().any(|(m, _)| m.as_ref() == Some(n)) {
                return Err(loc(from)
                    .err(Reason::Arguments(format!("duplicate stage name {n:?}")))
                    .into());
            }
        }
        names.push((f.name.clone(), i));
    }

    let mut stages: Vec<Stage> = Vec::new();
    let mut scopes: Vec<(ArgScope, Env)> = Vec::new();
    for (index, (from_l, body)) in groups.into_iter().enumerate() {
        let Instruction::From(f) = from_l.expand(&df.file, &lx, &globals)? else {
            unreachable!()
        };
        if f.image.is_empty() {
            return Err(loc(&from_l)
                .err(Reason::Arguments(format!(
                    "base name ({}) should not be blank",
                    from_original_image(&from_l)
                )))
                .into());
        }
        let base = match lookup(&names[..index], &f.image) {
            Some(i) => Base::Stage(i),
            None if f.image.eq_ignore_ascii_case("scratch") => Base::Scratch,
            None => Base::Image(f.image.clone()),
        };
        let mut deps = BTreeSet::new();
        let mut images = Vec::new();
        // Args and ENV known at parse time, to resolve --from values.
        let (mut scope, mut env) = match base {
            Base::Stage(i) => {
                deps.insert(i);
                scopes[i].clone()
            }
            _ => (ArgScope::new(&opts.build_args, &globals, None), Env::new()),
        };
        for l in &body {
            let mut vars = scope.values().clone();
            for (k, v) in env.iter() {
                vars.set(k, v);
            }
            let refs: Vec<String> = match &l.instruction {
                Instruction::Arg(_) => {
                    if let Instruction::Arg(decls) = l.expand(&df.file, &lx, &vars)? {
                        for d in decls {
                            declared.insert(d.name.clone());
                            scope.declare(&d.name, d.default.as_deref());
                        }
                    }
                    Vec::new()
                }
                Instruction::Env(_) => {
                    if let Instruction::Env(kvs) = l.expand(&df.file, &lx, &vars)? {
                        for kv in kvs {
                            env.set(kv.key, kv.value);
                        }
                    }
                    Vec::new()
                }
                Instruction::Copy(c) if c.from.is_some() => {
                    match l.expand(&df.file, &lx, &vars)? {
                        Instruction::Copy(c) => c.from.into_iter().collect(),
                        _ => unreachable!(),
                    }
                }
                Instruction::Run(r) if r.mounts.iter().any(|m| m.from.is_some()) => {
                    match l.expand(&df.file, &lx, &vars)? {
                        Instruction::Run(r) => {
                            r.mounts.into_iter().filter_map(|m| m.from).collect()
                        }
                        _ => unreachable!(),
                    }
                }
                _ => Vec::new(),
            };
            for r in refs {
                match lookup(&names, &r) {
                    Some(i) => {
                        deps.insert(i);
                    }
                    None => images.push((r, l.clone())),
                }
            }
        }
        scopes.push((scope, env));
        stages.push(Stage {
            index,
            name: f.name,
            base,
            platform: f.platform,
            from: from_l,
            instructions: body,
            deps,
            images,
        });
    }

    let target = match &opts.target {
        None => stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&lower))
                .ok_or_else(|| StageError::UnknownTarget(t.clone()))?
        }
    };
    let order = build_order(&stages, target)?;
    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !is_predefined(k) && !is_builtin(k))
        .cloned()
        .collect();
    Ok(BuildPlan {
        stages,
        global_args: globals,
        target,
        order,
        unused_build_args,
    })
}

fn from_original_image(l: &Located) -> String {
    match &l.instruction {
        Instruction::From(f) => f.image.clone(),
        _ => String::new(),
    }
}

/// Depth-first post-order from `target`: dependencies before dependents.
fn build_order(stages: &[Stage], target: usize) -> Result<Vec<usize>, StageError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        stages: &[Stage],
        marks: &mut [Mark],
        out: &mut Vec<usize>,
    ) -> Result<(), StageError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Open => return Err(StageError::Cycle(stages[i].display_name())),
            Mark::New => {}
        }
        marks[i] = Mark::Open;
        for &d in &stages[i].deps {
            visit(d, stages, marks, out)?;
        }
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; stages.len()];
    let mut out = Vec::new();
    visit(target, stages, &mut marks, &mut out)?;
    Ok(out)
}
