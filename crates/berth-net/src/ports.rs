//! Host port reservations for published ports.
//!
//! Forwarding happens in the kernel (nftables DNAT), so no process listens
//! on a published port. To keep Docker's guarantees anyway — a port in use
//! is refused before the container starts, and nothing else can take a
//! published port while the container runs — the daemon binds a socket to
//! the host address and port without listening on it, and holds it as long
//! as the mapping exists. Port 0 lets the kernel choose (`-p 80`, `-P`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use crate::nft::Proto;
use crate::NetError;

/// A bound, non-listening socket holding one host port.
#[derive(Debug)]
pub struct Reservation {
    _fd: OwnedFd,
    pub proto: Proto,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// Binds `host_ip:port` (`port` 0: any free port) for `proto`.
pub fn reserve(proto: Proto, host_ip: Ipv4Addr, port: u16) -> Result<Reservation, NetError> {
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| {
        NetError::Io {
            context: "opening a socket to reserve a host port".into(),
            source: e.into(),
        }
    })?;
    let addr = SockaddrIn::from(SocketAddrV4::new(host_ip, port));
    if let Err(e) = bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
        let why = match e {
            nix::errno::Errno::EADDRINUSE => "address already in use".to_string(),
            nix::errno::Errno::EADDRNOTAVAIL => "cannot assign requested address".to_string(),
            other => other.desc().to_lowercase(),
        };
        return Err(NetError::Conflict(format!(
            "failed to bind host port for {host_ip}:{port}/{}: {why}",
            proto.as_str()
        )));
    }
    let bound: SockaddrIn =
        getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(|e| NetError::Io {
            context: "reading the reserved port".into(),
            source: e.into(),
        })?;
    Ok(Reservation {
        _fd: fd,
        proto,
        host_ip,
        host_port: bound.port(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_port_cannot_be_taken_twice() {
        let r = reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).unwrap();
        assert_ne!(r.host_port, 0);
        let err = reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, r.host_port).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        // Another process binding it fails as well.
        assert!(std::net::TcpListener::bind(("127.0.0.1", r.host_port)).is_err());
        // UDP is a separate space.
        reserve(Proto::Udp, Ipv4Addr::LOCALHOST, r.host_port).unwrap();
        let port = r.host_port;
        drop(r);
        // Released: the port can be reserved again. (Another test of this
        // process forking a child may hold the descriptor until its exec,
        // so allow a moment.)
        let again = (0..50).find_map(|_| {
            reserve(Proto::Tcp, Ipv4Addr::LOCALHOST, port)
                .inspect_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                .ok()
        });
        assert!(again.is_some(), "port {port} still taken after release");
    }
}
