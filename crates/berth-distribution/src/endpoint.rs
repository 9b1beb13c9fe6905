//! Which registry URLs serve a reference: Docker Hub's API host, mirrors
//! (`registry-mirrors`, Docker Hub only, tried first) and the insecure
//! registries (`insecure-registries`, plus loopback as dockerd allows).

use std::net::IpAddr;

/// Docker Hub's index name in references and its API host.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker's config.json uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Mirror URLs for Docker Hub (`https://mirror.example`, `http://127.0.0.1:5001`).
    pub mirrors: Vec<String>,
    /// `host[:port]` or CIDR entries allowed over plain HTTP / unverified TLS.
    pub insecure: Vec<String>,
}

/// One base URL to talk to (`https://registry-1.docker.io`).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Base URLs in the order to try: `https://…` then, for insecure
    /// registries, `http://…`.
    pub urls: Vec<String>,
    /// A mirror: its failure falls through to the next endpoint.
    pub mirror: bool,
    /// Accept any TLS certificate (insecure registry).
    pub insecure: bool,
}

impl RegistryOptions {
    /// Whether `host[:port]` may be used without verified TLS.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = strip_port(host);
        if bare == "localhost" {
            return true;
        }
        let ip: Option<IpAddr> = bare.trim_matches(|c| c == '[' || c == ']').parse().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure.iter().any(|entry| {
            if entry == host || entry == bare {
                return true;
            }
            match (entry.parse::<ipnet_lite::Net>(), ip) {
                (Ok(net), Some(ip)) => net.contains(ip),
                _ => false,
            }
        })
    }

    /// The endpoints serving `domain` (a reference's domain), in order.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if domain == DOCKER_HUB {
            for m in &self.mirrors {
                let m = m.trim_end_matches('/');
                let host = m.split_once("://").map_or(m, |(_, h)| h);
                let insecure = self.is_insecure(host);
                let urls = if m.contains("://") {
                    vec![m.to_string()]
                } else {
                    base_urls(m, insecure)
                };
                out.push(Endpoint {
                    urls,
                    mirror: true,
                    insecure,
                });
            }
            out.push(Endpoint {
                urls: vec![format!("https://{DOCKER_HUB_API}")],
                mirror: false,
                insecure: false,
            });
            return out;
        }
        let insecure = self.is_insecure(domain);
        out.push(Endpoint {
            urls: base_urls(domain, insecure),
            mirror: false,
            insecure,
        });
        out
    }
}

fn base_urls(host: &str, insecure: bool) -> Vec<String> {
    if insecure {
        // dockerd tries TLS first and falls back to plain HTTP.
        vec![format!("https://{host}"), format!("http://{host}")]
    } else {
        vec![format!("https://{host}")]
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The config.json `auths` key for a reference domain.
pub fn auth_key(domain: &str) -> String {
    if domain == DOCKER_HUB || domain == "index.docker.io" || domain == DOCKER_HUB_API {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        domain.to_string()
    }
}

/// A tiny CIDR matcher (`10.0.0.0/8`), enough for insecure-registries.
mod ipnet_lite {
    use std::net::IpAddr;
    use std::str::FromStr;

    pub struct Net {
        addr: IpAddr,
        prefix: u8,
    }

    impl FromStr for Net {
        type Err = ();
        fn from_str(s: &str) -> Result<Net, ()> {
            let (a, p) = s.split_once('/').ok_or(())?;
            Ok(Net {
                addr: a.parse().map_err(|_| ())?,
                prefix: p.parse().map_err(|_| ())?,
            })
        }
    }

    impl Net {
        pub fn contains(&self, ip: IpAddr) -> bool {
            match (self.addr, ip) {
                (IpAddr::V4(n), IpAddr::V4(i)) if self.prefix <= 32 => {
                    let mask = if self.prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - self.prefix)
                    };
                    u32::from(n) & mask == u32::from(i) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(i)) if self.prefix <= 128 => {
                    let mask = if self.prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - self.prefix)
                    };
                    u128::from(n) & mask == u128::from(i) & mask
                }
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_goes_to_mirrors_first() {
        let o = RegistryOptions {
            mirrors: vec!["http://127.0.0.1:5001/".into()],
            insecure: vec![],
        };
        let e = o.endpoints("docker.io");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].urls, vec!["http://127.0.0.1:5001"]);
        assert!(e[0].mirror);
        assert_eq!(e[1].urls, vec!["https://registry-1.docker.io"]);
        // Mirrors are for Docker Hub only.
        assert_eq!(o.endpoints("quay.io").len(), 1);
    }

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let o = RegistryOptions {
            mirrors: vec![],
            insecure: vec!["reg.lan:5000".into(), "10.0.0.0/8".into()],
        };
        assert!(o.is_insecure("127.0.0.1:5000"));
        assert!(o.is_insecure("127.9.9.9"));
        assert!(o.is_insecure("localhost:5000"));
        assert!(o.is_insecure("reg.lan:5000"));
        assert!(o.is_insecure("10.1.2.3:5000"));
        assert!(!o.is_insecure("quay.io"));
        assert_eq!(
            o.endpoints("127.0.0.1:5000")[0].urls,
            vec!["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
        );
        assert_eq!(o.endpoints("quay.io")[0].urls, vec!["https://quay.io"]);
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
    }
}
