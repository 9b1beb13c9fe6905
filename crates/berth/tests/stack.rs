//! `berth stack` against a one-node swarm: deploy a compose file, see its
//! services converge, redeploy with a change that updates only the service
//! it touches, and remove everything the stack created; the example stack
//! (secrets, configs, an overlay network, a published port) through
//! `berth stack deploy`.

mod common;

use std::time::Duration;

use common::containers::{busybox, wait_until};
use common::TestDaemon;

fn compose(dir: &std::path::Path, web_replicas: u32, default_driver: Option<&str>) -> String {
    let mut text = format!(
        "services:\n  web:\n    image: busybox\n    command: sleep 1d\n    deploy:\n      replicas: {web_replicas}\n  worker:\n    image: busybox\n    command: sleep 1d\n"
    );
    if let Some(driver) = default_driver {
        text.push_str(&format!("networks:\n  default:\n    driver: {driver}\n"));
    }
    let path = dir.join("compose.yml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn replicas(d: &TestDaemon, stack: &str) -> Vec<String> {
    d.berth_ok(&["stack", "services", stack])
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", cols[1], cols[3])
        })
        .collect()
}

fn version(d: &TestDaemon, service: &str) -> u64 {
    d.api_json(&format!("/v1.47/services/{service}"))["Version"]["Index"]
        .as_u64()
        .unwrap()
}

#[test]
fn stack_deploy_updates_only_what_changed_and_rm_removes_it_all() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();

    let file = compose(dir.path(), 2, None);
    let out = d.berth_ok(&["stack", "deploy", "-c", &file, "demo"]);
    assert!(out.contains("Creating network demo_default"), "{out}");
    let net = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Scope}}",
        "demo_default",
    ]);
    assert_eq!(
        net.trim(),
        "overlay swarm",
        "the default network is an overlay"
    );
    assert!(out.contains("Creating service demo_web"), "{out}");
    assert!(out.contains("Creating service demo_worker"), "{out}");
    wait_until("2/2 and 1/1", Duration::from_secs(30), || {
        replicas(&d, "demo") == ["demo_web 2/2", "demo_worker 1/1"]
    });
    let header = d.berth_ok(&["stack", "services", "demo"]);
    assert!(
        header.starts_with("ID             NAME          MODE         REPLICAS   IMAGE     PORTS"),
        "{header}"
    );
    let ls = d.berth_ok(&["stack", "ls"]);
    assert_eq!(ls, "NAME      SERVICES\ndemo      2\n");
    let labels = d.api_json("/v1.47/services/demo_web")["Spec"]["Labels"].clone();
    assert_eq!(labels["com.docker.stack.namespace"], "demo");
    assert_eq!(labels["com.docker.stack.image"], "busybox");

    // The same file again changes nothing.
    let (web_v, worker_v) = (version(&d, "demo_web"), version(&d, "demo_worker"));
    let out = d.berth_ok(&["stack", "deploy", "-c", &file, "demo"]);
    assert!(!out.contains("Updating"), "{out}");
    assert_eq!(version(&d, "demo_web"), web_v);

    // Three replicas of web: only web is updated.
    let file = compose(dir.path(), 3, None);
    let out = d.berth_ok(&["stack", "deploy", "-c", &file, "demo"]);
    assert!(out.contains("Updating service demo_web"), "{out}");
    assert!(!out.contains("demo_worker"), "{out}");
    assert!(version(&d, "demo_web") > web_v);
    assert_eq!(version(&d, "demo_worker"), worker_v, "worker untouched");
    wait_until("3/3", Duration::from_secs(30), || {
        replicas(&d, "demo") == ["demo_web 3/3", "demo_worker 1/1"]
    });
    let ps = d.berth_ok(&["stack", "ps", "demo"]);
    assert!(ps.starts_with("ID "), "{ps}");
    assert_eq!(ps.matches("Running").count(), 8, "{ps}");

    let out = d.berth_ok(&["stack", "rm", "demo"]);
    assert!(out.contains("Removing service demo_web"), "{out}");
    assert!(out.contains("Removing service demo_worker"), "{out}");
    assert!(out.contains("Removing network demo_default"), "{out}");
    let list = d.api_json("/v1.47/services");
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("demo_"), "{nets}");
    wait_until("task containers gone", Duration::from_secs(30), || {
        d.docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.stack.namespace=demo",
        ])
        .trim()
        .is_empty()
    });
    let (st, _, err) = d.berth(&["stack", "services", "demo"]);
    assert!(st.success());
    assert!(err.contains("Nothing found in stack: demo"), "{err}");

    d.docker_ok(&["swarm", "leave", "--force"]);
    d.finish();
}

#[test]
fn berth_stack_deploys_the_example_with_its_secret_config_and_port() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/stack");
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    for f in ["token.txt", "api.conf"] {
        std::fs::copy(example.join(f), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(example.join("compose.yml"))
        .unwrap()
        .replace("\"8080:80\"", &format!("\"{port}:80\""));
    let file = dir.path().join("compose.yml");
    std::fs::write(&file, text).unwrap();
    d.berth_ok(&["stack", "deploy", "-c", file.to_str().unwrap(), "demo"]);
    wait_until("2/2 and 1/1", Duration::from_secs(60), || {
        replicas(&d, "demo") == ["demo_api 1/1", "demo_web 2/2"]
    });
    let web = d.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=demo_web",
    ]);
    let web = web.lines().next().unwrap().to_string();
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
    assert!(
        common::http_get(&common::host_address(), port).is_some(),
        "the published port answers"
    );
    d.berth_ok(&["stack", "rm", "demo"]);
    wait_until("the stack is gone", Duration::from_secs(60), || {
        d.docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.stack.namespace=demo",
        ])
        .trim()
        .is_empty()
    });
    assert!(d.docker_ok(&["secret", "ls", "-q"]).trim().is_empty());
    assert!(d
        .docker_ok(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=com.docker.stack.namespace=demo"
        ])
        .trim()
        .is_empty());
    d.docker_ok(&["swarm", "leave", "--force"]);
    d.finish();
}
