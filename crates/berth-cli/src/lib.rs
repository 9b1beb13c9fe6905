//! berth-cli: the Docker-compatible command line. It parses arguments with
//! clap and talks to the engine only through the Docker Engine API (bollard,
//! plus a few raw requests); it never links daemon crates.
//!
//! Layout: `cli` (grammar) → `cmd::<group>` (one module per command group:
//! `image`, `system`, `container`, `create`, `run`, `exec`, `ps`, `logs`,
//! `cp`, `stats`) → `conn` (host choice, autostart, requests). Output
//! helpers live in `format` (Go-template subset), `table` (tabwriter),
//! `units` (go-units sizes and durations), `stream` (JSON message streams),
//! `opts` (container flag grammars) and `attach` (hijacked streams, TTYs).

use std::ffi::OsString;

use clap::Parser;

pub mod attach;
pub mod cli;
pub mod cmd;
pub mod conn;
pub mod credentials;
pub mod error;
pub mod format;
pub mod opts;
pub mod stream;
pub mod table;
pub mod units;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Set `BERTH_GIT_COMMIT` at build time to stamp the build.
pub const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Global options that every command may need.
#[derive(Debug, Clone)]
pub struct Globals {
    pub host: conn::HostChoice,
    pub debug: bool,
}

/// Runs the CLI with the process arguments; returns the exit status.
pub fn main() -> i32 {
    main_with_args(std::env::args_os().collect())
}

/// Runs the CLI with `args` (including the program name); returns the exit status.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if cli.version {
        println!("berth version {VERSION}, build {GIT_COMMIT}");
        return 0;
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = cli::Cli::command().print_help();
        return 0;
    };
    let globals = Globals {
        host: conn::choose_host(cli.host.as_deref(), |k| std::env::var(k).ok()),
        debug: cli.debug || cli.log_level == "debug",
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(cmd::run(&globals, command)) {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// Prints an error the way Docker's CLI does and picks the exit status.
fn report(e: &anyhow::Error) -> i32 {
    if let Some(error::ExitStatus(code)) = e.downcast_ref::<error::ExitStatus>() {
        return *code;
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return 0;
        }
    }
    eprintln!("{e:#}");
    1
}
