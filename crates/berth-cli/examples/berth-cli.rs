//! Runs the CLI alone, for trying it against any Engine API endpoint:
//! `cargo run -p berth-cli --example berth-cli -- -H unix:///var/run/docker.sock images`.
fn main() {
    std::process::exit(berth_cli::main());
}
