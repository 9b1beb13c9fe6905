//! Container networking for berth, Docker's bridge driver in kernel parts:
//!
//! - [`ipam`]: address pools of bridge networks (pure);
//! - [`nft`]: berth's own nftables table — outbound NAT, published ports as
//!   DNAT, isolation between networks — computed purely and swapped in
//!   atomically;
//! - [`link`]: bridges and veth pairs through netlink (rtnetlink), the
//!   container end configured from a thread that entered its namespace;
//! - [`netns`]: persistent network namespaces (a bind-mounted nsfs file) that
//!   the OCI runtime joins by path;
//! - [`ports`]: host port reservations, so a port in use is refused before a
//!   container starts and nothing else can bind a published port;
//! - [`dns`]: the embedded resolver of user networks, answering container
//!   names and aliases and forwarding the rest to the host's resolvers;
//! - [`files`]: the /etc/hosts, /etc/resolv.conf and /etc/hostname a
//!   container gets (pure).
//!
//! IPv4 only for now.

pub mod dns;
pub mod files;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;
pub mod ports;

use berth_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Firewall(String),
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        source: rtnetlink::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Tearing `what` down failed in more than one way: every failure is
    /// kept as it was, not flattened into one string.
    #[error("removing {what}: {}", .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Teardown {
        what: String,
        failures: Vec<NetError>,
    },
}

impl HasKind for NetError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            NetError::Conflict(_) => ErrorKind::Conflict,
            NetError::Exhausted(_) => ErrorKind::FailedPrecondition,
            _ => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let context = context.into();
    move |source| NetError::Io { context, source }
}

pub(crate) fn nl_err(context: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let context = context.into();
    move |source| NetError::Netlink { context, source }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn teardown_keeps_each_failure_with_its_kind() {
        let e = NetError::Teardown {
            what: "network n".into(),
            failures: vec![
                NetError::Io {
                    context: "removing /x/n.json".into(),
                    source: std::io::Error::from_raw_os_error(libc::EACCES),
                },
                NetError::Conflict("busy".into()),
            ],
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
        let NetError::Teardown { failures, .. } = &e else {
            unreachable!()
        };
        assert_eq!(failures[1].kind(), ErrorKind::Conflict);
        let text = e.to_string();
        assert!(
            text.starts_with("removing network n: removing /x/n.json: "),
            "{text}"
        );
        assert!(text.ends_with("; busy"), "{text}");
    }
}
