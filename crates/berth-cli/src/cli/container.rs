//! Grammar of the container commands (`run`, `create`, `ps`, `exec`, …)
//! and of the `container` group. Flags and defaults follow Docker's CLI.

use clap::{ArgAction, Args, Subcommand};

use super::InspectArgs;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArg),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_aliases = ["remove"])]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArg),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArg),
}

/// Options shared by `create` and `run` (Docker's `containerOptions`).
#[derive(Debug, Args, Default, Clone)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "ip")]
    pub ip: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map")]
    pub sysctl: Vec<String>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    pub device: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(
        long = "oom-score-adj",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub oom_score_adj: Option<i64>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(
        long = "health-retries",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub health_retries: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Pull image before creating ("always", "missing", "never")
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The image, then the command and its arguments
    #[arg(
        required = true,
        value_name = "IMAGE [COMMAND] [ARG...]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", allow_negative_numbers = true)]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        required = true,
        value_name = "COMMAND [ARG...]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
}

#[derive(Debug, Args)]
pub struct ContainersArg {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerArg {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options passed to ps
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC")]
    pub src: String,
    #[arg(value_name = "DEST")]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub pause: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

impl From<InspectArgs> for ContainerInspectArgs {
    fn from(a: InspectArgs) -> Self {
        ContainerInspectArgs {
            names: a.names,
            format: a.format,
            size: a.size,
        }
    }
}

/// Resource limits, shared by `run`/`create` and `update` (same flags, same help).
#[derive(Debug, Args, Default, Clone)]
pub struct ResourceArgs {
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
}
