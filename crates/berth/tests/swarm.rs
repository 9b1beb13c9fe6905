//! Swarm mode on one node, driven by the stock docker CLI: init and leave,
//! replicated services that converge, scale and heal, tasks as `docker
//! service ps` shows them, state that survives a `kill -9` of the daemon,
//! and bad input refused with dockerd's status and a message naming it.

mod common;

use std::time::{Duration, Instant};

use common::containers::{busybox, wait_until};
use common::TestDaemon;

/// IDs of the running containers of service `name`.
fn task_containers(d: &TestDaemon, name: &str) -> Vec<String> {
    let out = d.docker_ok(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.swarm.service.name={name}"),
    ]);
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}

fn replicas(d: &TestDaemon, name: &str) -> String {
    d.docker_ok(&[
        "service",
        "ls",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Replicas}}",
    ])
    .trim()
    .to_string()
}

fn init(d: &TestDaemon) -> String {
    d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    d.docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_string()
}

fn leave(d: &TestDaemon) {
    d.docker_ok(&["swarm", "leave", "--force"]);
}

#[test]
fn swarm_endpoints_answer_503_outside_a_swarm_and_init_leave_round_trip() {
    let d = TestDaemon::builder().start();
    let (st, _, err) = d.docker(&["service", "ls"]);
    assert!(!st.success());
    assert!(err.contains("This node is not a swarm manager"), "{err}");
    let (code, body) = d.api("GET", "/v1.47/swarm", None);
    assert_eq!(code, 503, "{body}");
    // Clients call leave blindly in their set-up: dockerd's 503 and words.
    let (code, body) = d.api("POST", "/v1.47/swarm/leave?force=1", None);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("This node is not part of a swarm"), "{body}");
    let state = d.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(state.trim(), "inactive");

    let (st, _, err) = d.docker(&["swarm", "join", "--token", "SWMTKN-1-x", "10.0.0.1:2377"]);
    assert!(!st.success());
    assert!(
        err.contains("not supported") && err.contains("one node"),
        "{err}"
    );

    let node = init(&d);
    assert_eq!(node.len(), 25, "{node}");
    let info = d.api_json("/v1.47/info");
    assert_eq!(info["Swarm"]["LocalNodeState"], "active");
    assert_eq!(info["Swarm"]["ControlAvailable"], true);
    assert_eq!(info["Swarm"]["Nodes"], 1);
    assert_eq!(
        info["Swarm"]["Cluster"]["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"],
        5
    );
    let (st, _, err) = d.docker(&["swarm", "init"]);
    assert!(!st.success());
    assert!(err.contains("already part of a swarm"), "{err}");

    let nodes = d.docker_ok(&[
        "node",
        "ls",
        "--format",
        "{{.ID}} {{.Status}} {{.Availability}} {{.ManagerStatus}}",
    ]);
    assert_eq!(nodes.trim(), format!("{node} Ready Active Leader"));
    d.docker_ok(&["node", "update", "--label-add", "zone=east", &node]);
    let labels = d.docker_ok(&[
        "node",
        "inspect",
        "--format",
        "{{.Spec.Labels.zone}}",
        "self",
    ]);
    assert_eq!(labels.trim(), "east");

    let (st, _, err) = d.docker(&["swarm", "leave"]);
    assert!(!st.success());
    assert!(err.contains("--force"), "{err}");
    leave(&d);
    let state = d.docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert_eq!(state.trim(), "inactive");
    assert!(
        !d.data_root.join("swarm").exists(),
        "leave removes the state"
    );
    d.finish();
}

#[test]
fn a_replicated_service_converges_scales_and_heals_a_killed_task() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "web",
        "--replicas",
        "3",
        "--hostname",
        "web-{{.Task.Slot}}",
        "busybox",
        "sleep",
        "1d",
    ]);
    wait_until("3 running tasks", Duration::from_secs(20), || {
        replicas(&d, "web") == "3/3"
    });
    let ids = task_containers(&d, "web");
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut hostnames: Vec<String> = ids
        .iter()
        .map(|id| d.docker_ok(&["exec", id, "hostname"]).trim().to_string())
        .collect();
    hostnames.sort();
    assert_eq!(
        hostnames,
        ["web-1", "web-2", "web-3"],
        "templates expand per slot"
    );

    let ps = d.docker_ok(&[
        "service",
        "ps",
        "web",
        "--format",
        "{{.Name}} {{.DesiredState}} {{.CurrentState}}",
    ]);
    let mut lines: Vec<&str> = ps.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 3, "{ps}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("web.{} Running Running", i + 1)),
            "{ps}"
        );
    }

    // kill -9 of a task's process: a replacement runs within a second.
    let victim = ids[0].clone();
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", &victim]);
    let killed = Instant::now();
    let pid: libc::pid_t = pid.trim().parse().unwrap();
    // SAFETY: kill(2) with a pid read from inspect and a valid signal.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}");
    wait_until("a replacement task", Duration::from_secs(10), || {
        let now = task_containers(&d, "web");
        now.len() == 3 && !now.contains(&victim)
    });
    let healed = killed.elapsed();
    assert!(
        healed < Duration::from_secs(1),
        "the replacement took {healed:?}"
    );
    let ps = d.docker_ok(&[
        "service",
        "ps",
        "web",
        "--no-trunc",
        "--format",
        "{{.Name}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
    ]);
    assert!(
        ps.lines().any(
            |l| l.contains("|Shutdown|Failed") && l.ends_with("|\"task: non-zero exit (137)\"")
        ),
        "the killed task stays in the history with its error: {ps}"
    );

    d.docker_ok(&["service", "scale", "-d", "web=5"]);
    wait_until("5 tasks", Duration::from_secs(20), || {
        replicas(&d, "web") == "5/5"
    });
    d.docker_ok(&["service", "scale", "-d", "web=2"]);
    wait_until("2 tasks", Duration::from_secs(30), || {
        replicas(&d, "web") == "2/2" && task_containers(&d, "web").len() == 2
    });

    d.docker_ok(&["service", "rm", "web"]);
    wait_until(
        "the service's containers are gone",
        Duration::from_secs(30),
        || {
            d.docker_ok(&[
                "ps",
                "-aq",
                "--filter",
                "label=com.docker.swarm.service.name=web",
            ])
            .trim()
            .is_empty()
        },
    );
    leave(&d);
    d.finish();
}

#[test]
fn tasks_survive_a_daemon_kill_and_are_adopted_not_restarted() {
    let mut d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "db",
        "--replicas",
        "3",
        "busybox",
        "sleep",
        "1d",
    ]);
    wait_until("3 running tasks", Duration::from_secs(20), || {
        replicas(&d, "db") == "3/3"
    });
    let before = task_containers(&d, "db");
    let started: Vec<String> = before
        .iter()
        .map(|id| d.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", id]))
        .collect();

    d.kill9();
    d.restart();
    wait_until("the service listed again", Duration::from_secs(20), || {
        replicas(&d, "db") == "3/3"
    });
    assert_eq!(task_containers(&d, "db"), before, "the same containers run");
    let after: Vec<String> = before
        .iter()
        .map(|id| d.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", id]))
        .collect();
    assert_eq!(after, started, "adopted, not restarted");

    // Reconciliation resumed: a killed task is healed.
    d.docker_ok(&["kill", &before[1]]);
    wait_until("a replacement", Duration::from_secs(10), || {
        let now = task_containers(&d, "db");
        now.len() == 3 && !now.contains(&before[1])
    });
    leave(&d);
    d.finish();
}

#[test]
fn bad_service_specs_are_refused_naming_what_is_wrong_and_create_nothing() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    d.docker_ok(&[
        "service", "create", "-d", "--name", "one", "busybox", "sleep", "1d",
    ]);
    for (args, status_words) in [
        (vec!["--name", "one", "busybox"], "already exists"),
        (
            vec!["--name", "n1", "--network", "nonet", "busybox"],
            "network nonet not found",
        ),
        (
            vec!["--name", "n2", "--constraint", "node.color==red", "busybox"],
            "node.color",
        ),
        (vec!["--name", "bad.name", "busybox"], "bad.name"),
    ] {
        let mut full = vec!["service", "create", "-d"];
        full.extend(args.iter().copied());
        let (st, _, err) = d.docker(&full);
        assert!(!st.success(), "{full:?}");
        assert!(err.contains(status_words), "{full:?}: {err}");
    }
    for (body, field) in [
        (
            r#"{"Name":"r","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":-2}}}"#,
            "Mode.Replicated.Replicas",
        ),
        (
            r#"{"Name":"r","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":"x"}}}"#,
            "Mode.Replicated.Replicas",
        ),
        (
            r#"{"Name":"r","TaskTemplate":{"ContainerSpec":{}}}"#,
            "Image",
        ),
    ] {
        let (code, resp) = d.api("POST", "/v1.47/services/create", Some(body.as_bytes()));
        assert_eq!(code, 400, "{body}: {resp}");
        assert!(resp.contains(field), "{resp}");
    }
    let names = d.docker_ok(&["service", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names.trim(), "one", "nothing else was created");

    // A stale version is Docker's conflict.
    let svc = d.api_json("/v1.47/services/one");
    let version = svc["Version"]["Index"].as_u64().unwrap();
    let spec = serde_json::to_vec(&svc["Spec"]).unwrap();
    let (code, resp) = d.api(
        "POST",
        &format!("/v1.47/services/one/update?version={}", version - 1),
        Some(&spec),
    );
    assert_eq!(code, 409, "{resp}");
    assert!(resp.contains("out of sequence"), "{resp}");
    let (code, resp) = d.api(
        "POST",
        &format!("/v1.47/services/one/update?version={version}"),
        Some(&spec),
    );
    assert_eq!(code, 200, "{resp}");
    leave(&d);
    d.finish();
}

/// A service whose tasks serve their own hostname with busybox httpd and
/// log each client (`-v`).
fn web_service(d: &TestDaemon, name: &str, extra: &[&str]) {
    let mut args = vec![
        "service",
        "create",
        "-d",
        "--name",
        name,
        "--hostname",
        "task-{{.Task.Slot}}",
        "--health-cmd",
        "wget -qO- http://127.0.0.1/ >/dev/null",
        "--health-interval",
        "1s",
        "--health-start-period",
        "10s",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -v -p 80 -h /www",
    ]);
    d.docker_ok(&args);
}

#[test]
fn an_ingress_port_spreads_over_the_tasks_and_they_see_the_clients_address() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    let port = common::free_port();
    web_service(&d, "web", &["--replicas", "3", "-p", &format!("{port}:80")]);
    wait_until("3 healthy tasks", Duration::from_secs(30), || {
        replicas(&d, "web") == "3/3"
    });
    let published = d.docker_ok(&[
        "service",
        "inspect",
        "web",
        "--format",
        "{{(index .Endpoint.Ports 0).PublishedPort}}",
    ]);
    assert_eq!(published.trim(), port.to_string());

    let host = common::host_address();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..30 {
        let body = common::http_get(&host, port).unwrap_or_else(|| panic!("request {i} failed"));
        seen.insert(body.trim().to_string());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["task-1", "task-2", "task-3"],
        "30 requests reach every task"
    );
    // The task logged the host address the request came from, not a
    // gateway or ingress address.
    let id = task_containers(&d, "web")[0].clone();
    let (_, out, err) = d.docker(&["logs", &id]);
    assert!(
        format!("{out}{err}").contains(&host),
        "the task saw the client's address {host}: {out}{err}"
    );

    // Scaling up and down under a load loop drops nothing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        let host = host.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let t0 = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match get_verbose(&host, port) {
                    Ok(b) if b.starts_with("task-") => ok += 1,
                    other => failed.push(format!("at {:?}: {other:?}", t0.elapsed())),
                }
            }
            (ok, failed)
        })
    };
    d.docker_ok(&["service", "scale", "-d", "web=5"]);
    wait_until("5 tasks", Duration::from_secs(30), || {
        replicas(&d, "web") == "5/5"
    });
    d.docker_ok(&["service", "scale", "-d", "web=2"]);
    wait_until("2 tasks", Duration::from_secs(40), || {
        replicas(&d, "web") == "2/2" && task_containers(&d, "web").len() == 2
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );

    // Another service cannot take the port.
    let (st, _, err) = d.docker(&[
        "service",
        "create",
        "-d",
        "--name",
        "other",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sleep",
        "1d",
    ]);
    assert!(!st.success());
    assert!(
        err.contains(&format!("port '{port}' is already in use")),
        "{err}"
    );

    d.docker_ok(&["service", "rm", "web"]);
    wait_until("the tasks are gone", Duration::from_secs(40), || {
        task_containers(&d, "web").is_empty()
    });
    assert!(
        common::http_get(&host, port).is_none(),
        "the port is closed with the service"
    );
    leave(&d);
    d.finish();
}

#[test]
fn a_service_name_resolves_to_its_virtual_ip_on_a_user_network() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    let subnet = common::unique_subnet();
    d.docker_ok(&["network", "create", "--subnet", &subnet, "lbnet"]);
    web_service(&d, "api", &["--replicas", "2", "--network", "lbnet"]);
    wait_until("2 healthy tasks", Duration::from_secs(30), || {
        replicas(&d, "api") == "2/2"
    });
    let vip = d.docker_ok(&[
        "service",
        "inspect",
        "api",
        "--format",
        "{{(index .Endpoint.VirtualIPs 0).Addr}}",
    ]);
    let vip = vip.trim().split('/').next().unwrap().to_string();
    assert!(
        vip.starts_with(subnet.rsplit_once('.').unwrap().0),
        "{vip} in {subnet}"
    );

    let out = d.docker_ok(&["run", "--rm", "--network", "lbnet", "busybox", "sh", "-c",
        "nslookup api 2>&1; nslookup tasks.api 2>&1; for i in 1 2 3 4 5 6; do wget -qO- http://api/; done"]);
    assert!(
        out.contains(&format!("Address: {vip}")) || out.contains(&format!("Address 1: {vip}")),
        "api resolves to the VIP: {out}"
    );
    assert!(
        out.contains("task-1") && out.contains("task-2"),
        "requests to the VIP reach both tasks: {out}"
    );

    d.docker_ok(&["service", "rm", "api"]);
    wait_until("the tasks are gone", Duration::from_secs(40), || {
        task_containers(&d, "api").is_empty()
    });
    let addrs = std::process::Command::new("ip")
        .args(["-4", "-br", "addr"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&addrs.stdout).contains(&format!("{vip}/32")),
        "the VIP is released"
    );
    leave(&d);
    d.docker_ok(&["network", "rm", "lbnet"]);
    d.finish();
}

/// One GET with the reason when it fails (connect, write, read, or a
/// reply without a body).
fn get_verbose(addr: &str, port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{addr}:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .ok_or_else(|| format!("reply without a body: {buf:?}"))
}

#[test]
fn docker_stack_deploy_brings_up_the_example_and_rm_leaves_nothing() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stack");
    // The example publishes 8080; a test takes a free port instead.
    let port = common::free_port();
    let compose = std::fs::read_to_string(example.join("compose.yml"))
        .unwrap()
        .replace("\"8080:80\"", &format!("\"{port}:80\""));
    let dir = common::scratch();
    for f in ["token.txt", "api.conf"] {
        std::fs::copy(example.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("compose.yml"), compose).unwrap();
    let file = dir.path().join("compose.yml");
    d.docker_ok(&[
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "-c",
        file.to_str().unwrap(),
        "demo",
    ]);
    wait_until("the stack's services run", Duration::from_secs(60), || {
        replicas(&d, "demo_web") == "2/2" && replicas(&d, "demo_api") == "1/1"
    });
    let nets = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        "label=com.docker.stack.namespace=demo",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(nets.trim(), "demo_back overlay swarm");
    let stacks = d.docker_ok(&["stack", "ls", "--format", "{{.Name}} {{.Services}}"]);
    assert_eq!(stacks.trim(), "demo 2");

    // The services reach each other by name (through the VIP) and the
    // secret and config are in the api task.
    let web = task_containers(&d, "demo_web")[0].clone();
    // The api task runs; its server may take a moment to listen.
    let mut page = String::new();
    wait_until("api answers by name", Duration::from_secs(20), || {
        let (st, out, _) = d.docker(&["exec", &web, "wget", "-qO-", "http://api/"]);
        page = out;
        st.success()
    });
    assert!(
        page.contains("s3cr3t-demo-token") && page.contains("greeting=hello from api"),
        "{page}"
    );
    let api = task_containers(&d, "demo_api")[0].clone();
    let inspect = d.docker_ok(&["inspect", &api]);
    assert!(
        !inspect.contains("s3cr3t-demo-token"),
        "the secret is not in inspect"
    );
    let (_, out, err) = d.docker(&["logs", &api]);
    assert!(
        !format!("{out}{err}").contains("s3cr3t-demo-token"),
        "nor in the logs"
    );
    let host = common::host_address();
    let body = common::http_get(&host, port).expect("the published port answers");
    // A task's hostname is its container's short ID: the page came from
    // one of the web tasks.
    let webs = task_containers(&d, "demo_web");
    assert!(
        webs.iter().any(|id| body.trim() == &id[..12]),
        "{body} is one of {webs:?}"
    );

    d.docker_ok(&["stack", "rm", "demo"]);
    wait_until("the stack is gone", Duration::from_secs(60), || {
        d.docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.stack.namespace=demo",
        ])
        .trim()
        .is_empty()
            && d.docker_ok(&[
                "network",
                "ls",
                "-q",
                "--filter",
                "label=com.docker.stack.namespace=demo",
            ])
            .trim()
            .is_empty()
    });
    assert!(d.docker_ok(&["secret", "ls", "-q"]).trim().is_empty());
    assert!(d.docker_ok(&["config", "ls", "-q"]).trim().is_empty());
    assert!(
        common::http_get(&host, port).is_none(),
        "the port is closed"
    );
    leave(&d);
    d.finish();
}
