//! Bridges and veth pairs through netlink.
//!
//! Every operation runs on a dedicated OS thread with its own
//! current-thread runtime and netlink socket: namespace-scoped work enters
//! the container's namespace on that thread (`setns`), never on a tokio
//! worker of the daemon. The calls are blocking; the daemon makes them from
//! its blocking pool.

use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::{io_err, nl_err, NetError};

fn runtime() -> Result<tokio::runtime::Runtime, NetError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(io_err("starting a netlink runtime"))
}

/// Runs `f` with a netlink handle of the current thread's namespace.
fn here<T, F, Fut>(f: F) -> Result<T, NetError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, NetError>>,
{
    let rt = runtime()?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(io_err("opening netlink"))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

/// Runs `f` on a new thread, in the namespace pinned at `netns` if given.
fn on_thread<T, F>(netns: Option<PathBuf>, f: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetError> + Send + 'static,
{
    std::thread::spawn(move || {
        if let Some(ns) = netns {
            enter(&ns)?;
        }
        f()
    })
    .join()
    .unwrap_or_else(|_| Err(NetError::Firewall("netlink thread panicked".into())))
}

fn enter(ns: &Path) -> Result<(), NetError> {
    let f = std::fs::File::open(ns).map_err(io_err(format!("opening {}", ns.display())))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Io {
        context: format!("entering network namespace {}", ns.display()),
        source: e.into(),
    })
}

async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some(l.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such link.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl_err(format!("looking up link {name}"))(e)),
    }
}

/// Brings `lo` up in the calling thread's namespace.
pub(crate) fn loopback_up_here() -> Result<(), NetError> {
    here(|h| async move {
        let idx = index_of(&h, "lo")
            .await?
            .ok_or_else(|| NetError::Firewall("no loopback link in the new namespace".into()))?;
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl_err("setting lo up"))
    })
}

fn sysctl(path: &str, value: &str) -> Result<(), NetError> {
    std::fs::write(path, value).map_err(io_err(format!("writing {path}")))
}

/// Creates the bridge if missing, gives it `gateway/prefix`, and sets it up.
/// With `route_localnet`, connections to 127.0.0.1 may be DNAT'd onto it.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
    let name = name.to_string();
    on_thread(None, move || {
        let n = name.clone();
        here(|h| async move {
            let name = n;
            let idx = match index_of(&h, &name).await? {
                Some(i) => i,
                None => {
                    h.link()
                        .add(LinkBridge::new(&name).build())
                        .execute()
                        .await
                        .map_err(nl_err(format!("creating bridge {name}")))?;
                    index_of(&h, &name)
                        .await?
                        .ok_or_else(|| NetError::Firewall(format!("bridge {name} vanished")))?
                }
            };
            h.address()
                .add(idx, gateway.into(), prefix)
                .replace()
                .execute()
                .await
                .map_err(nl_err(format!("adding {gateway}/{prefix} to {name}")))?;
            // A bridge without an address of its own takes the lowest MAC
            // of its ports, so it changes as containers come and go; the
            // containers' ARP entries for their gateway then point at a
            // MAC the bridge no longer answers to, and their replies are
            // dropped for seconds. A fixed MAC derived from the gateway
            // (as dockerd derives one: 02:42 and the IPv4 address) stays.
            let o = gateway.octets();
            let mac = vec![0x02, 0x42, o[0], o[1], o[2], o[3]];
            h.link()
                .set(LinkUnspec::new_with_index(idx).address(mac).up().build())
                .execute()
                .await
                .map_err(nl_err(format!("setting {name} up")))
        })?;
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"),
            "1",
        )?;
        // Docker enables forwarding too: containers are routed through the host.
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    })
}

/// Adds (`add`) or removes an extra `/32` address on a bridge: a service's
/// virtual IP, so that the host answers ARP for it on that network and its
/// traffic reaches the firewall's balancer. Adding one that is there, or
/// removing one that is gone, is not an error.
pub fn bridge_address(name: &str, ip: Ipv4Addr, add: bool) -> Result<(), NetError> {
    let name = name.to_string();
    on_thread(None, move || {
        here(|h| async move {
            let idx = index_of(&h, &name)
                .await?
                .ok_or_else(|| NetError::Firewall(format!("no bridge {name}")))?;
            if add {
                h.address()
                    .add(idx, ip.into(), 32)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl_err(format!("adding {ip}/32 to {name}")))
            } else {
                let mut found = h.address().get().set_link_index_filter(idx).execute();
                while let Some(msg) = found
                    .try_next()
                    .await
                    .map_err(nl_err(format!("listing addresses of {name}")))?
                {
                    let is_it = msg.header.prefix_len == 32
                        && msg.attributes.iter().any(|a| {
                            matches!(a, netlink_packet_route::address::AddressAttribute::Address(addr) if *addr == std::net::IpAddr::V4(ip))
                        });
                    if is_it {
                        return h
                            .address()
                            .del(msg)
                            .execute()
                            .await
                            .map_err(nl_err(format!("removing {ip}/32 from {name}")));
                    }
                }
                Ok(())
            }
        })
    })
}

/// Deletes a link of the host namespace (a bridge, or a veth with its peer).
/// A link that is already gone is not an error.
pub fn delete_link(name: &str) -> Result<(), NetError> {
    let name = name.to_string();
    on_thread(None, move || {
        here(|h| async move {
            if let Some(idx) = index_of(&h, &name).await? {
                match h.link().del(idx).execute().await {
                    Ok(()) => {}
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                    Err(e) => return Err(nl_err(format!("deleting link {name}"))(e)),
                }
            }
            Ok(())
        })
    })
}

/// Whether a link of this name exists in the host namespace.
pub fn link_exists(name: &str) -> Result<bool, NetError> {
    let name = name.to_string();
    on_thread(None, move || {
        here(|h| async move { Ok(index_of(&h, &name).await?.is_some()) })
    })
}

/// One interface of a container on a bridge.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub bridge: String,
    /// Host end, e.g. `veth1a2b3c4`.
    pub host_veth: String,
    /// Name inside the container, e.g. `eth0`.
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mac: [u8; 6],
    /// Default route through this gateway (the first non-internal network).
    pub default_gateway: Option<Ipv4Addr>,
}

/// Creates the veth pair, plugs the host end into the bridge and moves the
/// other end into the namespace at `netns`, where it gets its name,
/// address, MAC and routes.
pub fn attach(netns: &Path, a: &Attachment) -> Result<(), NetError> {
    let a2 = a.clone();
    let ns = netns.to_path_buf();
    let peer_tmp = format!("vp{}", &a.host_veth[a.host_veth.len().saturating_sub(11)..]);
    let peer = peer_tmp.clone();
    on_thread(None, move || {
        let nsfile =
            std::fs::File::open(&ns).map_err(io_err(format!("opening {}", ns.display())))?;
        here(|h| async move {
            let br = index_of(&h, &a2.bridge).await?.ok_or_else(|| {
                NetError::Firewall(format!("bridge {} does not exist", a2.bridge))
            })?;
            h.link()
                .add(LinkVeth::new(&a2.host_veth, &peer).build())
                .execute()
                .await
                .map_err(nl_err(format!("creating veth {}", a2.host_veth)))?;
            let host = index_of(&h, &a2.host_veth)
                .await?
                .ok_or_else(|| NetError::Firewall(format!("veth {} vanished", a2.host_veth)))?;
            let pidx = index_of(&h, &peer)
                .await?
                .ok_or_else(|| NetError::Firewall(format!("veth {peer} vanished")))?;
            h.link()
                .set(LinkUnspec::new_with_index(host).controller(br).up().build())
                .execute()
                .await
                .map_err(nl_err(format!(
                    "plugging {} into {}",
                    a2.host_veth, a2.bridge
                )))?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(pidx)
                        .setns_by_fd(nsfile.as_raw_fd())
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err("moving the veth into the container's namespace"))
        })
    })
    .inspect_err(|_| {
        let _ = delete_link(&a.host_veth);
    })?;
    let a3 = a.clone();
    on_thread(Some(netns.to_path_buf()), move || {
        here(|h| async move {
            let idx = index_of(&h, &peer_tmp)
                .await?
                .ok_or_else(|| NetError::Firewall("veth missing in the container".into()))?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .name(a3.ifname.clone())
                        .address(a3.mac.to_vec())
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err(format!("naming {}", a3.ifname)))?;
            h.address()
                .add(idx, a3.ip.into(), a3.prefix)
                .execute()
                .await
                .map_err(nl_err(format!("adding {}/{}", a3.ip, a3.prefix)))?;
            h.link()
                .set(LinkUnspec::new_with_index(idx).up().build())
                .execute()
                .await
                .map_err(nl_err(format!("setting {} up", a3.ifname)))?;
            if let Some(gw) = a3.default_gateway {
                let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
                h.route()
                    .add(route)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl_err(format!("adding the default route via {gw}")))?;
            }
            Ok(())
        })
    })
    .inspect_err(|_| {
        let _ = delete_link(&a.host_veth);
    })
}

/// Removes a container interface by its name inside the namespace (live
/// `network disconnect`); deleting one end of a veth deletes both.
pub fn detach_in(netns: &Path, ifname: &str) -> Result<(), NetError> {
    let ifname = ifname.to_string();
    on_thread(Some(netns.to_path_buf()), move || {
        here(|h| async move {
            if let Some(idx) = index_of(&h, &ifname).await? {
                h.link()
                    .del(idx)
                    .execute()
                    .await
                    .map_err(nl_err(format!("deleting {ifname}")))?;
            }
            Ok(())
        })
    })
}

/// Networks the host routes to (from /proc/net/route), to choose free
/// subnets.
pub fn host_routes() -> Vec<ipnet::Ipv4Net> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return vec![];
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let prefix = u32::from_be(mask).count_ones() as u8;
            ipnet::Ipv4Net::new(Ipv4Addr::from(u32::from_be(dst)), prefix).ok()
        })
        .collect()
}
