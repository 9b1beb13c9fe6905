//! IP address management for bridge networks (IPv4).
//!
//! A [`Pool`] hands out the addresses of one subnet (optionally narrowed by
//! `--ip-range`), never the network address, the broadcast address or the
//! gateway. Like Docker's default IPAM it allocates round-robin: the next
//! address after the last one handed out, so a just-released address is not
//! reused at once (a peer may still have it in its ARP cache). The pool
//! itself is memory only: the daemon rebuilds it from the endpoints of the
//! containers that run, which keeps addresses stable across restarts.
//!
//! [`pick_subnet`] chooses a subnet for a network created without
//! `--subnet`: the first candidate of Docker's default address pools that
//! overlaps neither a route of the host nor another network.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::NetError;

#[derive(Debug, Clone)]
pub struct Pool {
    subnet: Ipv4Net,
    range: Ipv4Net,
    gateway: Ipv4Addr,
    used: BTreeSet<u32>,
    last: u32,
}

impl Pool {
    /// `range` must lie inside `subnet`; the gateway is reserved.
    pub fn new(
        subnet: Ipv4Net,
        range: Option<Ipv4Net>,
        gateway: Ipv4Addr,
    ) -> Result<Pool, NetError> {
        let subnet = subnet.trunc();
        let range = range.map(|r| r.trunc()).unwrap_or(subnet);
        if !subnet.contains(&range) {
            return Err(NetError::InvalidArgument(format!(
                "ip-range {range} is not within subnet {subnet}"
            )));
        }
        if !subnet.contains(&gateway) {
            return Err(NetError::InvalidArgument(format!(
                "gateway {gateway} is not within subnet {subnet}"
            )));
        }
        if subnet.prefix_len() > 30 {
            return Err(NetError::InvalidArgument(format!(
                "subnet {subnet} is too small for containers"
            )));
        }
        let mut used = BTreeSet::new();
        used.insert(u32::from(gateway));
        Ok(Pool {
            subnet,
            range,
            gateway,
            used,
            last: u32::from(range.network()),
        })
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn usable(&self, a: u32) -> bool {
        a != u32::from(self.subnet.network())
            && a != u32::from(self.subnet.broadcast())
            && self.range.contains(&Ipv4Addr::from(a))
    }

    /// The next free address after the last one allocated (wrapping).
    pub fn allocate(&mut self) -> Result<Ipv4Addr, NetError> {
        let first = u32::from(self.range.network());
        let last = u32::from(self.range.broadcast());
        let span = last - first + 1;
        for i in 1..=span {
            let a = first + (self.last - first + i) % span;
            if self.usable(a) && !self.used.contains(&a) {
                self.used.insert(a);
                self.last = a;
                return Ok(Ipv4Addr::from(a));
            }
        }
        Err(NetError::Exhausted(format!(
            "no available IPv4 addresses on this network's address pools: {}",
            self.range
        )))
    }

    /// Takes a specific address (`--ip`, or an endpoint restored at start).
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<(), NetError> {
        let a = u32::from(ip);
        if !self.subnet.contains(&ip)
            || a == u32::from(self.subnet.network())
            || a == u32::from(self.subnet.broadcast())
        {
            return Err(NetError::InvalidArgument(format!(
                "invalid address {ip}: it does not belong to the usable addresses of subnet {}",
                self.subnet
            )));
        }
        if ip == self.gateway || !self.used.insert(a) {
            return Err(NetError::Conflict(format!("Address already in use: {ip}")));
        }
        Ok(())
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if ip != self.gateway {
            self.used.remove(&u32::from(ip));
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len() - 1
    }
}

/// Docker's default address pools: 172.17–31.0.0/16, then 192.168.0.0/16
/// cut into /20s.
pub fn default_candidates() -> Vec<Ipv4Net> {
    let mut out: Vec<Ipv4Net> = (17..=31)
        .map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid /16"))
        .collect();
    for i in 0..16u8 {
        out.push(Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid /20"));
    }
    out
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first candidate that overlaps nothing in `taken` (host routes and
/// other networks). Default routes (0.0.0.0/0) are not counted as taken.
pub fn pick_subnet(candidates: &[Ipv4Net], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    candidates
        .iter()
        .find(|c| {
            !taken
                .iter()
                .filter(|t| t.prefix_len() > 0)
                .any(|t| overlaps(c, t))
        })
        .copied()
}

/// The first usable address: Docker's default gateway of a subnet.
pub fn first_host(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Docker's MAC for an IPv4 endpoint: 02:42 then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_round_robin_skipping_gateway_and_edges() {
        let mut p = Pool::new(net("10.1.0.0/29"), None, Ipv4Addr::new(10, 1, 0, 1)).unwrap();
        let got: Vec<_> = (0..5).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        assert!(p.allocate().is_err(), "the /29 has 5 usable addresses");
        p.release(Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(p.allocate().unwrap(), Ipv4Addr::new(10, 1, 0, 3));
    }

    #[test]
    fn never_hands_out_an_address_twice_and_says_when_it_is_exhausted() {
        use berth_core::{ErrorKind, HasKind};
        let gw = Ipv4Addr::new(10, 4, 0, 1);
        let mut p = Pool::new(net("10.4.0.0/28"), None, gw).unwrap();
        p.reserve(Ipv4Addr::new(10, 4, 0, 9)).unwrap();
        let mut got = BTreeSet::new();
        while let Ok(a) = p.allocate() {
            assert!(got.insert(a), "{a} handed out twice");
            assert!(got.len() <= 16, "the pool never runs out");
        }
        // 16 addresses less network, broadcast, gateway and the reserved one.
        assert_eq!(got.len(), 12);
        for never in ["10.4.0.0", "10.4.0.1", "10.4.0.9", "10.4.0.15"] {
            assert!(!got.contains(&never.parse().unwrap()), "{never} handed out");
        }
        assert_eq!(p.in_use(), 13);
        let e = p.allocate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert!(
            e.to_string().contains(
                "no available IPv4 addresses on this network's address pools: 10.4.0.0/28"
            ),
            "{e}"
        );
        let taken = *got.first().unwrap();
        assert_eq!(p.reserve(taken).unwrap_err().kind(), ErrorKind::Conflict);
        // One release makes room for exactly one address: the released one.
        p.release(taken);
        assert_eq!(p.allocate().unwrap(), taken);
        assert!(p.allocate().is_err());
    }

    #[test]
    fn release_frees_only_what_was_taken() {
        let gw = Ipv4Addr::new(10, 5, 0, 1);
        let mut p = Pool::new(net("10.5.0.0/24"), None, gw).unwrap();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!(p.in_use(), 2);
        // Releasing the gateway or an address never handed out changes nothing.
        p.release(gw);
        p.release(Ipv4Addr::new(10, 5, 0, 200));
        assert_eq!(p.in_use(), 2);
        assert!(p.reserve(gw).is_err(), "the gateway stays reserved");
        // A container's endpoints released one by one (disconnect, then remove).
        p.release(a);
        assert_eq!(p.in_use(), 1);
        p.reserve(a).unwrap();
        p.release(a);
        p.release(a);
        p.release(b);
        assert_eq!(p.in_use(), 0);
        // The next addresses come after the last handed out, not the freed ones.
        assert_eq!(p.allocate().unwrap(), Ipv4Addr::new(10, 5, 0, 4));
    }

    #[test]
    fn released_address_not_reused_at_once() {
        let mut p = Pool::new(net("10.1.0.0/24"), None, Ipv4Addr::new(10, 1, 0, 1)).unwrap();
        let a = p.allocate().unwrap();
        p.release(a);
        assert_ne!(p.allocate().unwrap(), a);
        assert_eq!(p.in_use(), 1);
    }

    #[test]
    fn ip_range_narrows_allocation() {
        let mut p = Pool::new(
            net("10.2.0.0/16"),
            Some(net("10.2.5.0/30")),
            Ipv4Addr::new(10, 2, 0, 1),
        )
        .unwrap();
        let got: Vec<_> = (0..4).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.2.5.1", "10.2.5.2", "10.2.5.3", "10.2.5.0"]);
        assert!(Pool::new(
            net("10.2.0.0/16"),
            Some(net("10.3.0.0/24")),
            Ipv4Addr::new(10, 2, 0, 1)
        )
        .is_err());
    }

    #[test]
    fn reserve_checks_subnet_and_conflicts() {
        let mut p = Pool::new(net("10.1.0.0/24"), None, Ipv4Addr::new(10, 1, 0, 1)).unwrap();
        p.reserve(Ipv4Addr::new(10, 1, 0, 7)).unwrap();
        assert!(p
            .reserve(Ipv4Addr::new(10, 1, 0, 7))
            .unwrap_err()
            .to_string()
            .contains("already in use"));
        assert!(p.reserve(Ipv4Addr::new(10, 1, 0, 1)).is_err(), "gateway");
        assert!(p.reserve(Ipv4Addr::new(10, 9, 0, 7)).is_err(), "outside");
        assert!(
            p.reserve(Ipv4Addr::new(10, 1, 0, 255)).is_err(),
            "broadcast"
        );
    }

    #[test]
    fn picks_first_free_default_pool() {
        let c = default_candidates();
        assert_eq!(pick_subnet(&c, &[]), Some(net("172.17.0.0/16")));
        let taken = [net("0.0.0.0/0"), net("172.17.0.0/16"), net("172.18.3.0/24")];
        assert_eq!(pick_subnet(&c, &taken), Some(net("172.19.0.0/16")));
        let all: Vec<_> = (17..=31).map(|b| net(&format!("172.{b}.0.0/16"))).collect();
        assert_eq!(pick_subnet(&c, &all), Some(net("192.168.0.0/20")));
    }

    #[test]
    fn mac_follows_docker() {
        assert_eq!(
            mac_string(mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
