//! `berth daemon`: flags in dockerd's spelling, handed to the engine.

use std::path::PathBuf;

use berth_core::HasKind;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "berth daemon",
    bin_name = "berth daemon",
    about = "Run the berth engine in the foreground",
    version
)]
struct DaemonArgs {
    /// Root directory of persistent state (images, containers, volumes)
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Root directory of runtime state (sockets, shims)
    #[arg(long, value_name = "DIR")]
    exec_root: Option<PathBuf>,
    /// Daemon socket(s) to listen on: unix:///path or tcp://addr:port (repeatable)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Daemon configuration file (Docker's daemon.json keys)
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Logging level: debug, info, warn, error, fatal
    #[arg(short = 'l', long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Attach containers to this Linux bridge (the default network)
    #[arg(short = 'b', long, value_name = "NAME")]
    bridge: Option<String>,
    /// The default bridge's IP address and prefix, e.g. 172.17.0.1/16
    #[arg(long, value_name = "CIDR")]
    bip: Option<String>,
    /// Enable debug logging (same as --log-level debug)
    #[arg(short = 'D', long)]
    debug: bool,
}

pub fn main() -> i32 {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let parsed = match DaemonArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let flags = berth_daemon::Flags {
        data_root: parsed.data_root,
        exec_root: parsed.exec_root,
        hosts: parsed.hosts,
        config_file: parsed.config_file,
        bridge: parsed.bridge,
        bip: parsed.bip,
        log_level: parsed
            .log_level
            .or_else(|| parsed.debug.then(|| "debug".to_string())),
    };
    match berth_daemon::run(flags) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            match e.kind() {
                berth_core::ErrorKind::InvalidArgument => 125,
                _ => 1,
            }
        }
    }
}
