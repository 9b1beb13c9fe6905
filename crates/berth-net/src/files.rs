//! The name-resolution files a container gets, as Docker writes them:
//! `/etc/hostname`, `/etc/hosts` (localhost, the container's own address
//! and hostname, `--add-host` entries) and `/etc/resolv.conf` (the host's,
//! with loopback resolvers — unreachable from another namespace — dropped;
//! on user networks the embedded resolver at the network's gateway).

use std::net::Ipv4Addr;

/// `/etc/hosts`. `own` is the container's address on its first network.
pub fn hosts(
    hostname: &str,
    domain: &str,
    own: Option<Ipv4Addr>,
    extra: &[(String, String)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = own {
        if domain.is_empty() {
            s.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            s.push_str(&format!("{ip}\t{hostname}.{domain} {hostname}\n"));
        }
    }
    s
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// The host's nameservers that a container can reach.
pub fn host_nameservers(host_resolv: &str) -> Vec<String> {
    host_resolv
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver")).then(|| f.next().map(str::to_string))?
        })
        .collect()
}

/// `/etc/resolv.conf`. `dns`/`search`/`options` are the container's
/// `--dns*` flags (they replace the host's lines); `resolver` is the
/// embedded resolver's address, used instead of any nameserver when set,
/// and as the fallback when nothing else remains.
pub fn resolv_conf(
    host_resolv: &str,
    dns: &[String],
    search: &[String],
    options: &[String],
    resolver: Option<Ipv4Addr>,
) -> String {
    let mut servers: Vec<String> = if let Some(r) = resolver {
        vec![r.to_string()]
    } else if !dns.is_empty() {
        dns.to_vec()
    } else {
        host_nameservers(host_resolv)
            .into_iter()
            .filter(|n| !is_loopback(n))
            .collect()
    };
    if servers.is_empty() {
        // Docker's fallback when the host has only loopback resolvers.
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let host_line = |key: &str| -> Vec<String> {
        host_resolv
            .lines()
            .filter_map(|l| l.trim().strip_prefix(key).map(|r| r.trim().to_string()))
            .filter(|r| !r.is_empty())
            .collect()
    };
    let search = if search.is_empty() {
        host_line("search ")
    } else {
        vec![search.join(" ")]
    };
    let options = if options.is_empty() {
        host_line("options ")
    } else {
        vec![options.join(" ")]
    };
    let mut s = String::new();
    for n in servers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    for l in search {
        s.push_str(&format!("search {l}\n"));
    }
    for l in options {
        s.push_str(&format!("options {l}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_localhost_self_and_extras() {
        let h = hosts(
            "web",
            "",
            Some(Ipv4Addr::new(172, 17, 0, 2)),
            &[("db".into(), "10.0.0.5".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.0.0.5\tdb\n"));
        assert!(h.ends_with("172.17.0.2\tweb\n"));
    }

    #[test]
    fn resolv_drops_loopback_and_keeps_search() {
        let host =
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[], &[], &[], None),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n", &[], &[], &[], None),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf(
                host,
                &["1.1.1.1".into()],
                &["a.b".into()],
                &["ndots:2".into()],
                None
            ),
            "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf(host, &[], &[], &[], Some(Ipv4Addr::new(10, 5, 0, 1))),
            "nameserver 10.5.0.1\nsearch corp.example\noptions edns0\n"
        );
    }
}
