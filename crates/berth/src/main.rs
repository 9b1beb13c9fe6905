//! The `berth` binary: `berth daemon` runs the engine, `berth registry`
//! an OCI distribution server; every other
//! subcommand is the docker-compatible CLI, which reaches the engine only
//! through the Engine API.

mod daemon_cmd;
mod registry_cmd;

fn main() {
    let mut args = std::env::args_os();
    let _argv0 = args.next();
    // The first non-flag argument picks the role; global CLI flags such as
    // `-H` may come before a CLI subcommand, but never before `daemon`.
    let first = args.next();
    let code = match first.as_ref().and_then(|a| a.to_str()) {
        Some("daemon") => daemon_cmd::main(),
        // The per-container shim: the same binary, re-executed by the daemon.
        Some("shim") => berth_shim::main(),
        // The OCI distribution server: `berth registry serve|gc`.
        Some("registry") => registry_cmd::main(),
        _ => berth_cli::main(),
    };
    std::process::exit(code);
}
