//! Grammar of the `stack` group. Flags follow Docker's CLI (swarm stacks).

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Deploy a new stack or update an existing stack
    #[command(visible_alias = "up")]
    Deploy(StackDeployArgs),
    /// List stacks
    #[command(visible_alias = "list")]
    Ls(StackLsArgs),
    /// List the tasks in the stack
    Ps(StackNameArg),
    /// Remove one or more stacks
    #[command(visible_aliases = ["remove", "down"])]
    Rm(StackRmArgs),
    /// List the services in the stack
    Services(StackNameArg),
}

#[derive(Debug, Args)]
pub struct StackDeployArgs {
    /// Path to a Compose file (repeat to merge several, later ones override)
    #[arg(
        short = 'c',
        long = "compose-file",
        value_name = "FILE",
        required = true
    )]
    pub compose_files: Vec<String>,
    #[arg(value_name = "STACK")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StackLsArgs {}

#[derive(Debug, Args)]
pub struct StackNameArg {
    #[arg(value_name = "STACK")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StackRmArgs {
    #[arg(required = true, value_name = "STACK")]
    pub names: Vec<String>,
}
