//! Command implementations, one module per command group. Each command
//! receives its parsed arguments and a connected [`Engine`].
//!
//! Extension point: container, network and volume groups go in their own
//! modules here (`cmd/container.rs`, …) and get a match arm in [`run`].

use std::collections::HashMap;
use std::io::Write;

use anyhow::{anyhow, Result};

use crate::cli::{
    BuilderCommand, Command, ContainerCommand, ImageCommand, SystemCommand, VolumeCommand,
};
use crate::conn::Engine;
use crate::Globals;

pub mod build;
pub mod build_view;
pub mod container;
pub mod cp;
pub mod create;
pub mod exec;
pub mod image;
pub mod logs;
pub mod network;
pub mod ps;
pub mod registry;
pub mod run;
pub mod stack;
pub mod stats;
pub mod system;
pub mod volume;

pub async fn run(g: &Globals, command: Command) -> Result<()> {
    match command {
        // `version` prints the client half even when the engine is down.
        Command::Version(a) => system::version(g, a).await,
        command => {
            let engine = connect(g).await?;
            dispatch(&engine, command).await
        }
    }
}

pub async fn connect(g: &Globals) -> Result<Engine> {
    let engine = Engine::connect(&g.host).await?;
    if g.debug {
        eprintln!(
            "berth: connected to {} (API {})",
            engine.host,
            engine.api_version()
        );
    }
    Ok(engine)
}

async fn dispatch(e: &Engine, command: Command) -> Result<()> {
    match command {
        Command::Run(a) => run::run(e, a).await,
        Command::Create(a) => create::create(e, a).await,
        Command::Ps(a) => ps::ps(e, a).await,
        Command::Start(a) => run::start(e, a).await,
        Command::Attach(a) => run::attach_cmd(e, a).await,
        Command::Wait(a) => run::wait(e, a).await,
        Command::Stop(a) => container::stop(e, a).await,
        Command::Restart(a) => container::restart(e, a).await,
        Command::Kill(a) => container::kill(e, a).await,
        Command::Rm(a) => container::remove(e, a).await,
        Command::Pause(a) => container::pause(e, a).await,
        Command::Unpause(a) => container::unpause(e, a).await,
        Command::Rename(a) => container::rename(e, a).await,
        Command::Port(a) => container::port(e, a).await,
        Command::Diff(a) => container::diff(e, a).await,
        Command::Commit(a) => container::commit(e, a).await,
        Command::Update(a) => container::update(e, a).await,
        Command::Top(a) => container::top(e, a).await,
        Command::Logs(a) => logs::logs(e, a).await,
        Command::Exec(a) => exec::exec(e, a).await,
        Command::Cp(a) => cp::cp(e, a).await,
        Command::Stats(a) => stats::stats(e, a).await,
        Command::Container(c) => match c {
            ContainerCommand::Run(a) => run::run(e, a).await,
            ContainerCommand::Create(a) => create::create(e, a).await,
            ContainerCommand::Ls(a) => ps::ps(e, a).await,
            ContainerCommand::Start(a) => run::start(e, a).await,
            ContainerCommand::Attach(a) => run::attach_cmd(e, a).await,
            ContainerCommand::Wait(a) => run::wait(e, a).await,
            ContainerCommand::Stop(a) => container::stop(e, a).await,
            ContainerCommand::Restart(a) => container::restart(e, a).await,
            ContainerCommand::Kill(a) => container::kill(e, a).await,
            ContainerCommand::Rm(a) => container::remove(e, a).await,
            ContainerCommand::Pause(a) => container::pause(e, a).await,
            ContainerCommand::Unpause(a) => container::unpause(e, a).await,
            ContainerCommand::Rename(a) => container::rename(e, a).await,
            ContainerCommand::Port(a) => container::port(e, a).await,
            ContainerCommand::Diff(a) => container::diff(e, a).await,
            ContainerCommand::Commit(a) => container::commit(e, a).await,
            ContainerCommand::Update(a) => container::update(e, a).await,
            ContainerCommand::Top(a) => container::top(e, a).await,
            ContainerCommand::Prune(a) => container::prune(e, a).await,
            ContainerCommand::Inspect(a) => container::inspect(e, a).await,
            ContainerCommand::Logs(a) => logs::logs(e, a).await,
            ContainerCommand::Exec(a) => exec::exec(e, a).await,
            ContainerCommand::Cp(a) => cp::cp(e, a).await,
            ContainerCommand::Stats(a) => stats::stats(e, a).await,
        },
        Command::Images(a) => image::list(e, a).await,
        Command::Inspect(a) => image::inspect_any(e, a).await,
        Command::Tag(a) => image::tag(e, a).await,
        Command::Rmi(a) => image::remove(e, a).await,
        Command::Import(a) => image::import(e, a).await,
        Command::Save(a) => image::save(e, a).await,
        Command::Load(a) => image::load(e, a).await,
        Command::History(a) => image::history(e, a).await,
        Command::Build(a) => build::build(e, a).await,
        Command::Builder(BuilderCommand::Prune(a)) => build::prune(e, a).await,
        Command::Image(c) => match c {
            ImageCommand::Ls(a) => image::list(e, a).await,
            ImageCommand::Inspect(a) => image::inspect(e, a).await,
            ImageCommand::Rm(a) => image::remove(e, a).await,
            ImageCommand::Tag(a) => image::tag(e, a).await,
            ImageCommand::Import(a) => image::import(e, a).await,
            ImageCommand::Save(a) => image::save(e, a).await,
            ImageCommand::Load(a) => image::load(e, a).await,
            ImageCommand::History(a) => image::history(e, a).await,
            ImageCommand::Prune(a) => image::prune(e, a).await,
        },
        Command::System(c) => match c {
            SystemCommand::Df(a) => system::df(e, a).await,
            SystemCommand::Info(a) => system::info(e, a).await,
        },
        Command::Network(c) => network::run(e, c).await,
        Command::Stack(c) => stack::run(e, c).await,
        Command::Volume(c) => match c {
            VolumeCommand::Create(a) => volume::create(e, a).await,
            VolumeCommand::Inspect(a) => volume::inspect(e, a).await,
            VolumeCommand::Ls(a) => volume::list(e, a).await,
            VolumeCommand::Prune(a) => volume::prune(e, a).await,
            VolumeCommand::Rm(a) => volume::remove(e, a).await,
        },
        Command::Info(a) => system::info(e, a).await,
        Command::Pull(a) => registry::pull(e, a).await,
        Command::Push(a) => registry::push(e, a).await,
        Command::Login(a) => registry::login(e, a).await,
        Command::Logout(a) => registry::logout(a),
        Command::Version(_) => unreachable!("handled before connecting"),
    }
}

/// Writes to stdout; a closed pipe ends the command quietly.
pub fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Parses `--filter key=value` flags into the API's `filters` map.
pub fn parse_filters(flags: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        filters
            .entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(filters)
}

pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Docker's `stringid.TruncateID`: drop the algorithm, keep 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, hex)| hex);
    id.chars().take(12).collect()
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("<missing>"), "<missing>");
        assert_eq!(ellipsis("abc", 3), "abc");
        assert_eq!(ellipsis("abcd", 3), "ab…");
    }

    #[test]
    fn filters() {
        let f =
            parse_filters(&["dangling=true".into(), "label=a=b".into(), "label=c".into()]).unwrap();
        assert_eq!(f["dangling"], vec!["true"]);
        assert_eq!(f["label"], vec!["a=b", "c"]);
        assert!(parse_filters(&["nope".into()]).is_err());
    }
}
