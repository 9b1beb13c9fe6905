//! Grammar of the `network` group. Flags and defaults follow Docker's CLI 28.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    #[arg(value_name = "NETWORK")]
    pub name: String,
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "OPT")]
    pub opts: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable or disable IPv4 address assignment
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Control the network's scope
    #[arg(long, default_value = "", hide_default_value = true)]
    pub scope: String,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", default_value = "", hide_default_value = true)]
    pub config_from: String,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet", value_name = "SUBNET", value_delimiter = ',')]
    pub subnets: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "IP-RANGE", value_delimiter = ',')]
    pub ip_ranges: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway", value_name = "GATEWAY", value_delimiter = ',')]
    pub gateways: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "AUX-ADDRESS")]
    pub aux_addresses: Vec<String>,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "IPAM-OPT")]
    pub ipam_opts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "IP", default_value = "", hide_default_value = true)]
    pub ip: String,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(
        long,
        value_name = "IP6",
        default_value = "",
        hide_default_value = true
    )]
    pub ip6: String,
    /// Add link to another container
    #[arg(long = "link", value_name = "LINK")]
    pub links: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "ALIAS", value_delimiter = ',')]
    pub aliases: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_name = "IP", value_delimiter = ',')]
    pub link_local_ips: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "OPT", value_delimiter = ',')]
    pub driver_opts: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative values.
    #[arg(
        long = "gw-priority",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub gw_priority: i64,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}
