//! berth's Dockerfile front end: a pipeline of pure stages.
//!
//! ```text
//! text ──parser──▶ Node (positions, flags, heredocs)
//!      ──instructions──▶ Instruction (typed, validated)
//!      ──stages──▶ BuildPlan (stages, args, dependency order for --target)
//! ```
//!
//! Word expansion ([`expand`]) is applied by the executor with the
//! environment it knows at each step (image env, `ENV`, `ARG`); this crate
//! provides the lexer and per-instruction expansion. [`ignore`] implements
//! `.dockerignore`. Nothing here talks to a daemon; the only I/O is reading
//! files the caller names (the Dockerfile, the context directory walk).

pub mod args;
pub mod error;
pub mod expand;
pub mod flags;
pub mod heredoc;
pub mod ignore;
pub mod instructions;
pub mod mounts;
pub mod parser;
pub mod stages;
pub mod substitute;
pub mod words;

pub use args::{platform_args, ArgScope, Platform, PREDEFINED_ARGS};
pub use error::{DockerfileError, Reason};
pub use expand::{Env, ExpandError, Lexer};
pub use flags::{parse_duration, parse_size};
pub use heredoc::Heredoc;
pub use ignore::{included_files, IgnoreError, Matcher, Pattern};
pub use instructions::{
    Add, ArgDecl, Command, Copy, Dockerfile, FileOp, From, Healthcheck, Instruction, KeyValue,
    Located, Network, Onbuild, ReadError, Run, Security, Source,
};
pub use mounts::{Mount, MountType, Sharing};
pub use parser::{parse, Directives, Node, ParsedFile, Warning};
pub use stages::{plan, Base, BuildOptions, BuildPlan, Stage, StageError};
pub use substitute::expand_instruction;
