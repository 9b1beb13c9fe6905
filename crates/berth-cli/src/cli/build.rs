//! `build` flags (Docker's legacy builder's).

use clap::Args;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Images to consider as cache sources (repeatable)
    #[arg(long = "cache-from", value_name = "IMAGE")]
    pub cache_from: Vec<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "MODE", default_value = "default")]
    pub network: String,
    /// RUN steps trust the host's CA bundle (for builds behind a
    /// TLS-intercepting proxy); it is never written into the image
    #[arg(long)]
    pub trust_host_ca: bool,
    /// Secret for RUN --mount=type=secret: id=ID[,src=FILE|,env=VAR]
    /// (without src/env: the variable named ID)
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    pub secrets: Vec<String>,
    /// Type of progress output: auto (a live view on a terminal, plain
    /// otherwise), tty (the live view), plain (the builder's text)
    #[arg(long, value_enum, default_value = "auto", value_name = "TYPE")]
    pub progress: crate::cmd::build_view::Progress,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<String>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    pub force_rm: bool,
    /// Build context: a directory, or "-" for a tar on STDIN
    #[arg(value_name = "PATH")]
    pub context: String,
}

/// `builder prune` flags.
#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, cache mounts included
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}
