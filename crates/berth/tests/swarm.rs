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
