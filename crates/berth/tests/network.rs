//! Networking as a user sees it: each container on a bridge with its own
//! address, published ports answering on the host's addresses, user
//! networks resolving container names, isolation between networks,
//! internal networks without a way out, and nothing left behind after
//! containers stop or the daemon is killed. Checked from outside with curl,
//! `ip -j`, `nft` and the docker CLI.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::containers::{busybox, code, run_must_fail, wait_until};
use common::{free_port, host_address, http_get, unique_subnet, TestDaemon};

fn http_get_retry(addr: &str, port: u16) -> Option<String> {
    for _ in 0..50 {
        if let Some(b) = http_get(addr, port) {
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A directory with index.html saying `text`, to serve with busybox httpd.
fn www(text: &str) -> tempfile::TempDir {
    let d = common::scratch();
    std::fs::write(d.path().join("index.html"), text).unwrap();
    d
}

fn links() -> String {
    let o = Command::new("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn veths_on(bridge: &str) -> usize {
    let o = Command::new("ip")
        .args(["-br", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn nft_table(d: &TestDaemon) -> String {
    let o = Command::new("nft")
        .args(["list", "table", "ip", &d.nft_table()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn published_ports_answer_on_every_covered_host_address() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let site = www("hello from the container\n");
    let (all, lo) = (free_port(), free_port());
    let vol = format!("{}:/www", site.path().display());
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        &vol,
        "-p",
        &format!("0.0.0.0:{all}:5000"),
        "-p",
        &format!("127.0.0.1:{lo}:5000"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "5000",
        "-h",
        "/www",
    ]);
    let host = host_address();
    assert_eq!(
        http_get_retry("127.0.0.1", all).as_deref(),
        Some("hello from the container\n"),
        "{}",
        d.log()
    );
    assert_eq!(
        http_get(&host, all).as_deref(),
        Some("hello from the container\n")
    );
    assert_eq!(
        http_get("127.0.0.1", lo).as_deref(),
        Some("hello from the container\n")
    );
    assert_eq!(
        http_get(&host, lo),
        None,
        "a 127.0.0.1 binding must not answer on {host}"
    );

    // The container has its own address on the bridge, shown by inspect, ps and port.
    let ip = d.berth_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    assert!(
        ip.trim().starts_with(&d.bip[..d.bip.rfind('.').unwrap()]),
        "{ip} not in {}",
        d.bip
    );
    assert_eq!(
        http_get(ip.trim(), 5000).as_deref(),
        Some("hello from the container\n")
    );
    let ps = d.berth_ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{all}->5000/tcp")), "{ps}");
    assert!(ps.contains(&format!("127.0.0.1:{lo}->5000/tcp")), "{ps}");
    let port = d.berth_ok(&["port", "web"]);
    assert!(
        port.contains(&format!("5000/tcp -> 0.0.0.0:{all}")),
        "{port}"
    );
    assert!(nft_table(&d).contains(&format!("tcp dport {all} dnat to {}:5000", ip.trim())));

    // Stopping removes the forwards, the veth and the namespace.
    d.berth_ok(&["rm", "-f", id.trim()]);
    assert_eq!(http_get("127.0.0.1", all), None);
    assert!(!nft_table(&d).contains(&format!("dport {all}")));
    assert_eq!(veths_on(&d.bridge), 0, "{}", links());
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .map(|r| r.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn a_port_in_use_is_refused_before_the_container_starts() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (st, _, err) = d.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "100",
    ]);
    assert_ne!(code(st), 0);
    assert!(
        err.contains(&format!("{port}")) && err.contains("already allocated"),
        "{err}"
    );
    let status = d.berth_ok(&["inspect", "-f", "{{.State.Status}}", "clash"]);
    assert_ne!(status.trim(), "running");
    assert_eq!(veths_on(&d.bridge), 0, "{}", links());
    // A random host port (-p 80) and -P are chosen by the kernel.
    d.berth_ok(&[
        "run", "-d", "--name", "rnd", "-p", "80", "--expose", "81", "-P", "busybox", "sleep", "100",
    ]);
    let ports = d.berth_ok(&["port", "rnd"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    d.berth_ok(&["rm", "-f", "rnd"]);
}

#[test]
fn user_network_resolves_names_and_isolates_other_networks() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let site = www("page by name\n");
    let vol = format!("{}:/www", site.path().display());
    let (appnet, other, internal) = (unique_subnet(), unique_subnet(), unique_subnet());
    d.berth_ok(&["network", "create", "--subnet", &appnet, "appnet"]);
    d.berth_ok(&["network", "create", "--subnet", &other, "othernet"]);
    d.berth_ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &internal,
        "internalnet",
    ]);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "appnet",
        "--network-alias",
        "www",
        "-v",
        &vol,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let web_ip = d.berth_ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "web",
    ]);
    let web_ip = web_ip.trim().to_string();
    wait_until("web answers", Duration::from_secs(5), || {
        http_get(&web_ip, 80).is_some()
    });

    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "wget",
        "-qO-",
        "http://web/",
    ]);
    assert_eq!(out, "page by name\n", "{err}");
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "wget",
        "-qO-",
        "http://www/",
    ]);
    assert_eq!(out, "page by name\n", "alias: {err}");
    // From another network the name does not resolve and the address is not reached (nc:
    // busybox's static wget crashes on a connect timeout).
    // (nslookup reports NXDOMAIN on stdout, nothing on stderr.)
    let (_, out) = run_must_fail(&d, &["--network", "othernet"], "nslookup web", "");
    assert!(
        out.contains("can't find web: NXDOMAIN") && !out.contains(&web_ip),
        "another network resolved web: {out}"
    );
    run_must_fail(
        &d,
        &["--network", "othernet"],
        &format!("echo GET / | nc -w 2 {web_ip} 80"),
        "timed out",
    );

    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "internalnet",
        "busybox",
        "sh",
        "-c",
        "ip route",
    ]);
    assert!(
        out.contains("dev eth0") && !out.contains("default"),
        "internal network: a default route, or no route at all: {out}"
    );
    let host = host_address();
    let outside = free_port();
    let listener = TcpListener::bind(("0.0.0.0", outside)).unwrap();
    listener.set_nonblocking(true).unwrap();
    run_must_fail(
        &d,
        &["--network", "internalnet"],
        &format!("echo GET / | nc -w 2 {host} {outside}"),
        "Network is unreachable",
    );
    assert!(
        listener.accept().is_err(),
        "a container on an internal network reached the host at {host}"
    );

    // A network with a container on it cannot be removed; then it can.
    let (st, _, err) = d.berth(&["network", "rm", "appnet"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("active endpoints"), "{err}");
    d.berth_ok(&["rm", "-f", "web"]);
    d.berth_ok(&["network", "rm", "appnet", "othernet", "internalnet"]);
    let ls = d.berth_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["bridge", "host", "none"],
        "{ls}"
    );
}

#[test]
fn containers_reach_a_host_server_on_the_gateway_and_the_outside_through_nat() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let gw = d.bip.split('/').next().unwrap().to_string();
    let server = TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, peer) = server.accept().unwrap();
        let mut b = [0u8; 1024];
        let _ = s.read(&mut b);
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\nfrom-gw\n");
        peer
    });
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        &format!("http://{gw}:{port}/"),
    ]);
    assert_eq!(out, "from-gw\n", "{err}");
    let peer = t.join().unwrap();
    assert!(
        peer.ip()
            .to_string()
            .starts_with(&gw[..gw.rfind('.').unwrap()]),
        "seen from {peer}"
    );

    // Outbound NAT: a server beyond the host (in a namespace this test makes,
    // routed through the host) sees the host's address, not the container's.
    let outside = Outside::new();
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("echo hi | nc {} 7777", outside.far),
    ]);
    let seen = outside.seen();
    assert_eq!(
        seen.trim(),
        outside.near,
        "server saw {seen:?} (container said {out} {err})"
    );
    // /etc/hosts and /etc/resolv.conf are the container's own.
    let (_, out, _) = d.berth(&[
        "run",
        "--rm",
        "--hostname",
        "h1",
        "--add-host",
        "db:10.9.8.7",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.test",
        "busybox",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
    ]);
    assert!(out.contains("10.9.8.7\tdb"), "{out}");
    assert!(out.contains(&format!("{gw}\tgw")), "{out}");
    assert!(out.contains("\th1\n"), "{out}");
    assert!(
        out.contains("nameserver 10.0.0.53\nsearch example.test\n"),
        "{out}"
    );
    assert!(out.ends_with("h1\n"), "{out}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let subnet = unique_subnet();
    d.berth_ok(&["network", "create", "--subnet", &subnet, "n2"]);
    d.berth_ok(&["run", "-d", "--name", "c1", "busybox", "sleep", "100"]);
    d.berth_ok(&["network", "connect", "--alias", "second", "n2", "c1"]);
    let (_, out, _) = d.berth(&["exec", "c1", "ip", "-o", "-4", "addr"]);
    assert!(
        out.contains("eth1") && out.contains(&subnet[..subnet.rfind('.').unwrap()]),
        "{out}"
    );
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "n2",
        "busybox",
        "nslookup",
        "second",
    ]);
    assert!(
        out.contains(&subnet[..subnet.rfind('.').unwrap()]),
        "{out} {err}"
    );
    d.berth_ok(&["network", "disconnect", "n2", "c1"]);
    let (_, out, _) = d.berth(&["exec", "c1", "ip", "-o", "-4", "addr"]);
    assert!(!out.contains("eth1"), "{out}");
    let nets = d.berth_ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "c1"]);
    assert!(!nets.contains("n2"), "{nets}");
    d.berth_ok(&["rm", "-f", "c1"]);
}

#[test]
fn kill9_of_the_daemon_leaves_nothing_for_containers_that_are_gone() {
    let mut d = TestDaemon::builder().short().start();
    busybox(&d);
    let port = free_port();
    let keep_port = free_port();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "dies",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "lives",
        "-p",
        &format!("{keep_port}:80"),
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = d.berth_ok(&["inspect", "-f", "{{.State.Pid}}", "dies"]);
    assert_eq!(veths_on(&d.bridge), 2);
    d.kill9();
    // The container dies while no daemon watches.
    let pid: i32 = pid.trim().parse().unwrap();
    unsafe_kill(pid);
    wait_until(
        "the container's process to die",
        Duration::from_secs(10),
        || !common::containers::pid_alive(pid as u32),
    );
    d.restart();
    wait_until(
        "the dead container's veth is gone",
        Duration::from_secs(5),
        || veths_on(&d.bridge) == 1,
    );
    let table = nft_table(&d);
    assert!(!table.contains(&format!("dport {port} ")), "{table}");
    assert!(table.contains(&format!("dport {keep_port} ")), "{table}");
    let netns: Vec<_> = std::fs::read_dir(d.exec_root.join("netns"))
        .unwrap()
        .collect();
    assert_eq!(netns.len(), 1);
    // The survivor keeps its address and its port.
    let (st, _, err) = d.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{keep_port}:80"),
        "busybox",
        "true",
    ]);
    assert_ne!(code(st), 0, "{err}");
    d.berth_ok(&["rm", "-f", "lives", "dies", "clash"]);
    assert_eq!(veths_on(&d.bridge), 0, "{}", links());
}

/// A network namespace with a veth to the host, with a server on port 7777
/// that records the peer's address; removed on drop.
struct Outside {
    ns: String,
    near: String,
    far: String,
    child: std::process::Child,
    log: tempfile::TempDir,
}

impl Outside {
    fn new() -> Outside {
        let (x, y) = common::unique_subnet_octets();
        let ns = format!("bto{}", std::process::id() % 100000);
        let (near, far) = (format!("10.{x}.{y}.1"), format!("10.{x}.{y}.2"));
        let sh = |c: &str| {
            let st = Command::new("sh").args(["-c", c]).status().unwrap();
            assert!(st.success(), "{c}");
        };
        sh(&format!("ip netns add {ns} && ip link add {ns}h type veth peer name {ns}p && ip link set {ns}p netns {ns} && ip addr add {near}/30 dev {ns}h && ip link set {ns}h up && ip -n {ns} addr add {far}/30 dev {ns}p && ip -n {ns} link set {ns}p up && ip -n {ns} link set lo up && ip -n {ns} route add default via {near}"));
        let log = common::scratch();
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0',7777))\ns.listen()\nopen('{0}/listening','w').close()\nc,a=s.accept()\nopen('{0}/peer.new','w').write(a[0])\nimport os\nos.rename('{0}/peer.new','{0}/peer')\n",
            log.path().display()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c", &script])
            .spawn()
            .unwrap();
        let ready = log.path().join("listening");
        wait_until(
            "the outside server to listen",
            Duration::from_secs(10),
            || ready.exists(),
        );
        Outside {
            ns,
            near,
            far,
            child,
            log,
        }
    }

    /// The peer address the server saw.
    fn seen(&self) -> String {
        let peer = self.log.path().join("peer");
        wait_until("the outside server's peer", Duration::from_secs(10), || {
            peer.exists()
        });
        std::fs::read_to_string(peer).unwrap()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}h", self.ns)])
            .status();
    }
}

fn unsafe_kill(pid: i32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn hundred_containers_on_a_user_network_leak_nothing() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let subnet = unique_subnet();
    d.berth_ok(&["network", "create", "--subnet", &subnet, "churn"]);
    let bridge = d
        .bridges()
        .into_iter()
        .find(|b| b.starts_with("br-"))
        .unwrap();
    for i in 0..100 {
        let p = free_port();
        let (st, _, err) = d.berth(&[
            "run",
            "--rm",
            "--network",
            "churn",
            "-p",
            &format!("127.0.0.1:{p}:80"),
            "busybox",
            "true",
        ]);
        assert_eq!(code(st), 0, "run {i}: {err}");
    }
    assert_eq!(veths_on(&bridge), 0, "{}", links());
    // Every veth is made attached to the network's bridge, so none left
    // there means none left at all (other tests' links come and go).
    assert!(!nft_table(&d).contains("dnat to"), "{}", nft_table(&d));
    assert_eq!(
        std::fs::read_dir(d.exec_root.join("netns"))
            .unwrap()
            .count(),
        0
    );
    // The pool is whole again: a /24 holds 253 containers; --ip of the
    // first address works because nothing holds it.
    let first = format!("{}.2", &subnet[..subnet.rfind('.').unwrap()]);
    let (_, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "churn",
        "--ip",
        &first,
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("{first}/24")), "{out} {err}");
}

#[test]
fn docker_cli_network_commands_work_against_berth() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    let subnet = unique_subnet();
    let id = d.docker_ok(&[
        "network", "create", "--subnet", &subnet, "--label", "team=a", "dnet",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}} {{.Driver}}",
    ]);
    assert_eq!(ls.trim(), "dnet bridge");
    let cfg = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "dnet",
    ]);
    assert_eq!(cfg.trim(), subnet);
    let site = www("docker page\n");
    let vol = format!("{}:/www", site.path().display());
    let port = free_port();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dnet",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "-v",
        &vol,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert_eq!(
        http_get_retry("127.0.0.1", port).as_deref(),
        Some("docker page\n")
    );
    let p = d.docker_ok(&["port", "dweb", "80"]);
    assert_eq!(p.trim(), format!("127.0.0.1:{port}"));
    let (st, _, _) = d.docker(&["network", "rm", "dnet"]);
    assert_ne!(code(st), 0);
    d.docker_ok(&["rm", "-f", "dweb"]);
    d.docker_ok(&["network", "rm", "dnet"]);
    let (st, _, err) = d.docker(&["network", "inspect", "dnet"]);
    assert_ne!(code(st), 0);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn container_mode_shares_the_namespace_and_prune_removes_unused_networks() {
    let d = TestDaemon::builder().short().start();
    busybox(&d);
    d.berth_ok(&["run", "-d", "--name", "base", "busybox", "sleep", "100"]);
    let ip = d.berth_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "base"]);
    let (st, out, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert_eq!(code(st), 0, "{err}");
    assert!(out.contains(&format!("{}/", ip.trim())), "{out}");
    d.berth_ok(&["rm", "-f", "base"]);
    let (st, _, err) = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "busybox",
        "true",
    ]);
    assert_ne!(code(st), 0);
    assert!(err.contains("base"), "{err}");

    let (a, b) = (unique_subnet(), unique_subnet());
    d.berth_ok(&["network", "create", "--subnet", &a, "keep"]);
    d.berth_ok(&["network", "create", "--subnet", &b, "drop-me"]);
    d.berth_ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "keep",
        "busybox",
        "true",
    ]);
    let out = d.berth_ok(&["network", "prune", "-f"]);
    assert!(out.contains("drop-me") && !out.contains("keep"), "{out}");
    let ls = d.berth_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.contains("keep") && !ls.contains("drop-me"), "{ls}");
    d.berth_ok(&["rm", "user"]);
    d.berth_ok(&["network", "rm", "keep"]);
}
