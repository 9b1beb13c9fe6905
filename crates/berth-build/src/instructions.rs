//! Typed instructions: each parser [`Node`] becomes one [`Instruction`]
//! with its flags checked and its arguments in the shape the instruction
//! defines (exec vs shell form, `key=value` lists, ports, durations…).
//!
//! Values are kept *as written* (quotes included in `ENV`/`LABEL`/`ARG`
//! values, `$VAR` unexpanded): expansion depends on the environment at the
//! step and is done by [`Located::expand`] when the executor reaches it.

use serde::Serialize;

use crate::error::{DockerfileError, Loc, Reason};
use crate::flags::{parse_duration, Flags, Kind};
use crate::heredoc::{parse_marker, Heredoc};
use crate::mounts::{parse_mount, Mount};
use crate::parser::{parse, split_instruction, Directives, Node, Warning};
use crate::words::{parse_json_array, split_whitespace, split_words};

/// A command: exec form (JSON array) or shell form (one string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    pub image: String,
    /// Stage name from `AS name`, lower-cased.
    pub name: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<Mount>,
    pub network: Network,
    pub security: Security,
    /// `--device` requests (CDI names), kept as written.
    pub devices: Vec<String>,
}

/// `key=value` of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One name of an ARG, with its default if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Healthcheck {
    None,
    Cmd {
        test: Command,
        /// Durations in nanoseconds; `None` = not given (the daemon default).
        interval: Option<i64>,
        timeout: Option<i64>,
        start_period: Option<i64>,
        start_interval: Option<i64>,
        retries: Option<i64>,
    },
}

impl Healthcheck {
    /// The image config's `Healthcheck.Test` (`["NONE"]`, `["CMD", …]`,
    /// `["CMD-SHELL", "…"]`).
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Cmd {
                test: Command::Exec(v),
                ..
            } => std::iter::once("CMD".to_string())
                .chain(v.clone())
                .collect(),
            Healthcheck::Cmd {
                test: Command::Shell(s),
                ..
            } => vec!["CMD-SHELL".into(), s.clone()],
        }
    }
}

/// A COPY/ADD source: a path (or URL) or the content of a heredoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

/// What COPY and ADD have in common.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOp {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    /// Written in JSON form.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    #[serde(flatten)]
    pub op: FileOp,
    pub from: Option<String>,
    pub parents: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    #[serde(flatten)]
    pub op: FileOp,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger as stored in the image config (`OnBuild`).
    pub expression: String,
    pub instruction: Box<Instruction>,
}

/// A Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Label(Vec<KeyValue>),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    Onbuild(Onbuild),
    Copy(Copy),
    Add(Add),
    Maintainer(String),
}

impl Instruction {
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Label(_) => "LABEL",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Stopsignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// An instruction with its place in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub start_line: usize,
    pub end_line: usize,
    /// The logical line as written (for history and progress output).
    pub original: String,
    pub instruction: Instruction,
}

/// A Dockerfile parsed into typed instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub file: String,
    pub directives: Directives,
    pub instructions: Vec<Located>,
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Parses `text`; `file` names the Dockerfile in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, DockerfileError> {
        let parsed = parse(file, text)?;
        let escape = parsed.directives.escape;
        let instructions = parsed
            .nodes
            .iter()
            .map(|node| {
                let mut loc = Loc {
                    file,
                    line: node.start_line,
                    instruction: Some(&node.keyword),
                };
                let instruction = convert(node, escape).map_err(|r| {
                    if matches!(r, Reason::UnknownInstruction(_)) {
                        loc.instruction = None;
                    }
                    loc.err(r)
                })?;
                Ok(Located {
                    start_line: node.start_line,
                    end_line: node.end_line,
                    original: node.original.clone(),
                    instruction,
                })
            })
            .collect::<Result<_, DockerfileError>>()?;
        Ok(Dockerfile {
            file: parsed.file,
            directives: parsed.directives,
            instructions,
            warnings: parsed.warnings,
        })
    }

    /// Reads and parses the Dockerfile at `path` (named by its file name).
    pub fn read(path: &std::path::Path) -> Result<Dockerfile, ReadError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_name()
            .map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().to_string());
        Ok(Dockerfile::parse(&name, &text)?)
    }
}

/// Failure to read or parse a Dockerfile from disk.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] DockerfileError),
}

impl berth_core::HasKind for ReadError {
    fn kind(&self) -> berth_core::ErrorKind {
        match self {
            ReadError::Io { source, .. } => berth_core::HasKind::kind(source),
            ReadError::Parse(e) => e.kind(),
        }
    }
}

fn args(msg: impl Into<String>) -> Reason {
    Reason::Arguments(msg.into())
}

fn upper(k: &str) -> String {
    k.to_ascii_uppercase()
}

fn command(rest: &str) -> Command {
    match parse_json_array(rest) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_string()),
    }
}

/// A stage name as BuildKit accepts it: `[a-z][a-z0-9-_.]*`.
pub fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Checks `port[-port][/tcp|udp|sctp]`.
pub fn validate_port(spec: &str) -> Result<(), Reason> {
    let bad = || Reason::InvalidPort(spec.to_string());
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok(())
}

/// `key=value …` (or the legacy `key value`) of ENV and LABEL.
fn key_values(keyword: &str, rest: &str, escape: char) -> Result<Vec<KeyValue>, Reason> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(args(format!(
            "{} requires at least one argument",
            upper(keyword)
        )));
    };
    if !first.contains('=') {
        // Legacy form: one variable, the value is the rest of the line.
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| args(format!("{} must have two arguments", upper(keyword))))?;
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.trim().to_string(),
        }]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w.split_once('=').ok_or_else(|| {
                args(format!(
                    "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                ))
            })?;
            if k.is_empty() {
                return Err(args(format!("{} names can not be blank", upper(keyword))));
            }
            Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

fn duration_flag(flags: &Flags, name: &str) -> Result<Option<i64>, Reason> {
    let Some(v) = flags.string(name) else {
        return Ok(None);
    };
    let d = parse_duration(&v).ok_or_else(|| Reason::InvalidDuration(v.clone()))?;
    // Docker: 0 means "use the default"; otherwise at least 1ms.
    if d < 0 {
        return Err(args(format!("--{name} cannot be negative")));
    }
    if d != 0 && d < 1_000_000 {
        return Err(args(format!("--{name} cannot be less than 1ms")));
    }
    Ok(Some(d))
}

fn file_op(node: &Node, flags: &Flags, keyword: &str, escape: char) -> Result<FileOp, Reason> {
    let (list, json) = match parse_json_array(&node.rest) {
        Some(v) => (v, true),
        None => (split_whitespace(&node.rest), false),
    };
    if list.len() < 2 {
        return Err(args(format!(
            "{} requires at least two arguments, but only {} provided. Destination could not be determined",
            upper(keyword),
            if list.is_empty() { "none was" } else { "one was" }
        )));
    }
    let mut heredocs = node.heredocs.iter();
    let (dest, srcs) = list.split_last().expect("two or more");
    let sources = srcs
        .iter()
        .map(|s| match parse_marker(s, escape).filter(|_| !json) {
            Some(m) => heredocs
                .next()
                .filter(|h| h.name == m.name)
                .cloned()
                .map(Source::Heredoc)
                .ok_or(Reason::UnterminatedHeredoc(m.name)),
            None => Ok(Source::Path(s.clone())),
        })
        .collect::<Result<_, _>>()?;
    Ok(FileOp {
        sources,
        dest: dest.clone(),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        exclude: flags.multi("exclude"),
        json,
    })
}

const KEYWORDS: &[&str] = &[
    "from",
    "run",
    "cmd",
    "entrypoint",
    "shell",
    "label",
    "env",
    "arg",
    "expose",
    "user",
    "workdir",
    "volume",
    "stopsignal",
    "healthcheck",
    "onbuild",
    "copy",
    "add",
    "maintainer",
];

/// Converts one node; `escape` is the file's escape character.
pub(crate) fn convert(node: &Node, escape: char) -> Result<Instruction, Reason> {
    use Kind::*;
    let kw = node.keyword.as_str();
    let rest = node.rest.as_str();
    if !KEYWORDS.contains(&kw) {
        return Err(Reason::UnknownInstruction(upper(kw)));
    }
    let allowed: &[(&str, Kind)] = match kw {
        "from" => &[("platform", Str)],
        "run" => &[
            ("mount", Multi),
            ("network", Str),
            ("security", Str),
            ("device", Multi),
        ],
        "copy" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Multi),
        ],
        "add" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("exclude", Multi),
            ("unpack", Bool),
        ],
        "healthcheck" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    };
    let flags = Flags::parse(&node.flags, allowed)?;
    let need_one = || {
        if rest.is_empty() {
            Err(args(format!(
                "{} requires at least one argument",
                upper(kw)
            )))
        } else {
            Ok(())
        }
    };
    Ok(match kw {
        "from" => {
            let w = split_whitespace(rest);
            let name = match w.len() {
                1 => None,
                3 if w[1].eq_ignore_ascii_case("as") => {
                    let name = w[2].to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(args(format!(
                            "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                            w[2]
                        )));
                    }
                    Some(name)
                }
                _ => return Err(args("FROM requires either one or three arguments")),
            };
            Instruction::From(From {
                image: w[0].clone(),
                name,
                platform: flags.string("platform"),
            })
        }
        "run" => {
            if rest.is_empty() && node.heredocs.is_empty() {
                return Err(args("RUN requires at least one argument"));
            }
            let mounts = flags
                .multi("mount")
                .iter()
                .map(|m| parse_mount(m).map_err(Reason::Mount))
                .collect::<Result<_, _>>()?;
            let network = match flags.string("network").as_deref() {
                None | Some("default") => Network::Default,
                Some("none") => Network::None,
                Some("host") => Network::Host,
                Some(o) => return Err(args(format!("unsupported network mode {o:?}"))),
            };
            let security = match flags.string("security").as_deref() {
                None | Some("sandbox") => Security::Sandbox,
                Some("insecure") => Security::Insecure,
                Some(o) => return Err(args(format!("unsupported security mode {o:?}"))),
            };
            Instruction::Run(Run {
                command: command(rest),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
                devices: flags.multi("device"),
            })
        }
        "cmd" => Instruction::Cmd(command(rest)),
        "entrypoint" => Instruction::Entrypoint(command(rest)),
        "shell" => match parse_json_array(rest) {
            Some(v) if !v.is_empty() => Instruction::Shell(v),
            Some(_) => return Err(args("SHELL requires at least one argument")),
            None => return Err(args("SHELL requires the arguments to be in JSON form")),
        },
        "label" => Instruction::Label(key_values(kw, rest, escape)?),
        "env" => Instruction::Env(key_values(kw, rest, escape)?),
        "arg" => {
            need_one()?;
            let decls = split_words(rest, escape)
                .into_iter()
                .map(|w| {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (w, None),
                    };
                    if name.is_empty() {
                        return Err(args("ARG names can not be blank"));
                    }
                    Ok(ArgDecl { name, default })
                })
                .collect::<Result<_, _>>()?;
            Instruction::Arg(decls)
        }
        "expose" => {
            need_one()?;
            let ports = split_whitespace(rest);
            for p in ports.iter().filter(|p| !p.contains('$')) {
                validate_port(p)?;
            }
            Instruction::Expose(ports)
        }
        "user" => {
            need_one()?;
            Instruction::User(rest.to_string())
        }
        "workdir" => {
            need_one()?;
            Instruction::Workdir(rest.to_string())
        }
        "maintainer" => {
            need_one()?;
            Instruction::Maintainer(rest.to_string())
        }
        "stopsignal" => {
            if split_whitespace(rest).len() != 1 {
                return Err(args("STOPSIGNAL requires exactly one argument"));
            }
            Instruction::Stopsignal(rest.to_string())
        }
        "volume" => {
            need_one()?;
            let list = parse_json_array(rest).unwrap_or_else(|| split_whitespace(rest));
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err(args("VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(list)
        }
        "healthcheck" => {
            let (typ, cmd) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(t, c)| (t, c.trim()));
            match typ.to_ascii_uppercase().as_str() {
                "NONE" if cmd.is_empty() => Instruction::Healthcheck(Healthcheck::None),
                "NONE" => return Err(args("HEALTHCHECK NONE takes no arguments")),
                "CMD" if cmd.is_empty() => {
                    return Err(args("Missing command after HEALTHCHECK CMD"))
                }
                "CMD" => {
                    let retries = match flags.string("retries") {
                        None => None,
                        Some(r) => {
                            let n: i64 = r
                                .parse()
                                .map_err(|_| args(format!("invalid --retries value {r:?}")))?;
                            if n < 0 {
                                return Err(args("--retries cannot be negative"));
                            }
                            Some(n)
                        }
                    };
                    Instruction::Healthcheck(Healthcheck::Cmd {
                        test: command(cmd),
                        interval: duration_flag(&flags, "interval")?,
                        timeout: duration_flag(&flags, "timeout")?,
                        start_period: duration_flag(&flags, "start-period")?,
                        start_interval: duration_flag(&flags, "start-interval")?,
                        retries,
                    })
                }
                _ => {
                    return Err(args(format!(
                        "Unknown type {typ:?} in HEALTHCHECK (try CMD)"
                    )))
                }
            }
        }
        "onbuild" => {
            need_one()?;
            let (child_kw, child_flags, child_rest) = split_instruction(rest);
            match child_kw.as_str() {
                "onbuild" => {
                    return Err(args("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
                }
                "from" | "maintainer" => {
                    return Err(args(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        upper(&child_kw)
                    )))
                }
                _ => {}
            }
            let child = Node {
                keyword: child_kw,
                flags: child_flags,
                rest: child_rest,
                original: rest.to_string(),
                heredocs: Vec::new(),
                start_line: node.start_line,
                end_line: node.end_line,
            };
            Instruction::Onbuild(Onbuild {
                expression: rest.to_string(),
                instruction: Box::new(convert(&child, escape)?),
            })
        }
        "copy" => Instruction::Copy(Copy {
            op: file_op(node, &flags, kw, escape)?,
            from: flags.string("from"),
            parents: flags.bool("parents"),
        }),
        "add" => Instruction::Add(Add {
            op: file_op(node, &flags, kw, escape)?,
            keep_git_dir: flags.bool("keep-git-dir"),
            checksum: flags.string("checksum"),
            unpack: flags.opt_bool("unpack"),
        }),
        other => return Err(Reason::UnknownInstruction(upper(other))),
    })
}
