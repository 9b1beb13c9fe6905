//! `pull`, `push`, `login`, `logout`.

use clap::Args;

#[derive(Debug, Args)]
pub struct PullArgs {
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
    /// Layer compression: gzip (default; Docker v2.2 manifest) or zstd
    /// (OCI manifest); each layer is compressed once per codec and kept
    #[arg(long, value_parser = ["gzip", "zstd"])]
    pub compression: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server (Docker Hub when omitted)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}
