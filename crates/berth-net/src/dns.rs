//! The embedded DNS resolver of a bridge network.
//!
//! One UDP server per network, bound to the network's gateway address on
//! port 53 in the host's namespace; containers of that network have it as
//! their only nameserver. It answers A queries for the names registered on
//! *this* network (container names, aliases, short IDs) — so containers on
//! other networks cannot resolve them — and relays every other query, bytes
//! untouched, to the host's resolvers (loopback ones included: the daemon
//! runs in the host's namespace, where they work).
//!
//! TCP (answers over 512 bytes) is not served yet: relayed answers that the
//! upstream truncates keep their TC bit, and clients retry upstream over TCP
//! only if they can reach it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};

use crate::{io_err, NetError};

/// Name → addresses, lower-case names without the trailing dot.
pub type Records = Arc<RwLock<HashMap<String, Vec<Ipv4Addr>>>>;

pub struct DnsServer {
    pub addr: SocketAddrV4,
    records: Records,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Binds `addr:53` (or the given port) and serves on `rt`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        addr: SocketAddrV4,
        upstreams: Vec<SocketAddr>,
    ) -> Result<DnsServer, NetError> {
        let sock = std::net::UdpSocket::bind(addr)
            .map_err(io_err(format!("binding the DNS resolver to {addr}")))?;
        let addr = match sock.local_addr() {
            Ok(SocketAddr::V4(a)) => a,
            _ => addr,
        };
        sock.set_nonblocking(true)
            .map_err(io_err("setting the DNS socket non-blocking"))?;
        let records: Records = Default::default();
        let recs = records.clone();
        let task = rt.spawn(async move {
            let Ok(sock) = tokio::net::UdpSocket::from_std(sock) else {
                return;
            };
            serve(Arc::new(sock), recs, Arc::new(upstreams)).await
        });
        Ok(DnsServer {
            addr,
            records,
            task,
        })
    }

    pub fn set(&self, name: &str, ips: Vec<Ipv4Addr>) {
        let mut r = self.records.write().expect("dns records");
        if ips.is_empty() {
            r.remove(&name.to_ascii_lowercase());
        } else {
            r.insert(name.to_ascii_lowercase(), ips);
        }
    }

    /// Adds `ip` under `name`.
    pub fn add(&self, name: &str, ip: Ipv4Addr) {
        let mut r = self.records.write().expect("dns records");
        let e = r.entry(name.to_ascii_lowercase()).or_default();
        if !e.contains(&ip) {
            e.push(ip);
        }
    }

    /// Removes `ip` from `name` (and the name when nothing is left).
    pub fn remove(&self, name: &str, ip: Ipv4Addr) {
        let mut r = self.records.write().expect("dns records");
        let key = name.to_ascii_lowercase();
        if let Some(e) = r.get_mut(&key) {
            e.retain(|a| *a != ip);
            if e.is_empty() {
                r.remove(&key);
            }
        }
    }

    pub fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        self.records
            .read()
            .expect("dns records")
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    sock: Arc<tokio::net::UdpSocket>,
    records: Records,
    upstreams: Arc<Vec<SocketAddr>>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..n].to_vec();
        match answer_local(&query, &records) {
            Some(resp) => {
                let _ = sock.send_to(&resp, peer).await;
            }
            None => {
                let sock = sock.clone();
                let ups = upstreams.clone();
                tokio::spawn(async move {
                    let resp = match forward(&query, &ups).await {
                        Some(r) => r,
                        None => servfail(&query).unwrap_or_default(),
                    };
                    if !resp.is_empty() {
                        let _ = sock.send_to(&resp, peer).await;
                    }
                });
            }
        }
    }
}

/// The answer from this network's names, or `None` to forward.
pub fn answer_local(query: &[u8], records: &Records) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.metadata.message_type != MessageType::Query || msg.metadata.op_code != OpCode::Query {
        return None;
    }
    let q = msg.queries.first()?;
    let name = q.name().to_ascii();
    let key = name.trim_end_matches('.').to_ascii_lowercase();
    let ips = records.read().ok()?.get(&key).cloned()?;
    let mut resp = Message::response(msg.metadata.id, OpCode::Query);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    resp.add_query(q.clone());
    // Another type for a known name: NOERROR with no answer.
    if q.query_type() == RecordType::A {
        for ip in ips {
            // Docker's embedded DNS answers with a 600 s TTL.
            resp.add_answer(Record::from_rdata(q.name().clone(), 600, RData::A(A(ip))));
        }
    }
    resp.to_vec().ok()
}

fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    let mut resp = Message::error_msg(
        msg.metadata.id,
        msg.metadata.op_code,
        ResponseCode::ServFail,
    );
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    for q in msg.queries {
        resp.add_query(q);
    }
    resp.to_vec().ok()
}

async fn forward(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if s.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf)).await
        {
            if from == *up && n >= 2 && buf[..2] == query[..2] {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// The host's resolvers from resolv.conf text, port 53.
pub fn upstreams_from(resolv: &str) -> Vec<SocketAddr> {
    crate::files::host_nameservers(resolv)
        .iter()
        .filter_map(|n| n.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_str(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_registered_names_only() {
        let recs: Records = Default::default();
        recs.write()
            .unwrap()
            .insert("web".into(), vec![Ipv4Addr::new(10, 7, 0, 2)]);
        let resp = answer_local(&query("WEB.", RecordType::A), &recs).unwrap();
        let m = Message::from_vec(&resp).unwrap();
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 7, 0, 2))));
        let aaaa =
            Message::from_vec(&answer_local(&query("web.", RecordType::AAAA), &recs).unwrap())
                .unwrap();
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
        assert!(answer_local(&query("example.org.", RecordType::A), &recs).is_none());
    }

    #[tokio::test]
    async fn serves_over_udp_and_forwards_unknown_names() {
        // An upstream that answers SERVFAIL-free canned responses: echo the
        // query back flagged as a response.
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 512];
            while let Ok((n, p)) = up.recv_from(&mut b).await {
                let mut m = Message::from_vec(&b[..n]).unwrap();
                m.metadata.message_type = MessageType::Response;
                m.add_answer(Record::from_rdata(
                    m.queries[0].name().clone(),
                    5,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 9))),
                ));
                let _ = up.send_to(&m.to_vec().unwrap(), p).await;
            }
        });
        let srv = DnsServer::start(
            &tokio::runtime::Handle::current(),
            "127.0.0.1:0".parse().unwrap(),
            vec![up_addr],
        )
        .unwrap();
        srv.add("db", Ipv4Addr::new(10, 7, 0, 3));
        let port = srv.addr.port();
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ask = |name: &'static str| {
            let c = &c;
            async move {
                c.send_to(&query(name, RecordType::A), ("127.0.0.1", port))
                    .await
                    .unwrap();
                let mut b = [0u8; 512];
                let (n, _) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut b))
                    .await
                    .unwrap()
                    .unwrap();
                Message::from_vec(&b[..n]).unwrap()
            }
        };
        let local = ask("db.").await;
        assert_eq!(
            local.answers[0].data,
            RData::A(A(Ipv4Addr::new(10, 7, 0, 3)))
        );
        let fwd = ask("example.org.").await;
        assert_eq!(
            fwd.answers[0].data,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 9)))
        );
        srv.remove("db", Ipv4Addr::new(10, 7, 0, 3));
        assert!(srv.lookup("db").is_empty());
    }
}
