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

pub mod error;
pub mod expand;
pub mod heredoc;
pub mod parser;
pub mod words;

pub use error::{DockerfileError, Reason};
pub use expand::{Env, ExpandError, Lexer};
pub use heredoc::Heredoc;
pub use parser::{parse, Directives, Node, ParsedFile, Warning};
