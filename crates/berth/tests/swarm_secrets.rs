//! Swarm secrets and configs through the stock docker CLI: created from
//! stdin and from a file, mounted into a service's task (a secret on a
//! tmpfs, read-only, with its mode), never shown by inspect nor written in
//! the clear under the data root, refused removal while a service uses
//! them, and gone with the swarm.

mod common;

use std::path::Path;
use std::time::Duration;

use common::containers::{busybox, wait_until};
use common::TestDaemon;

fn init(d: &TestDaemon) {
    d.docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
}

/// Every regular file under `dir`.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn task_container(d: &TestDaemon, service: &str) -> String {
    let out = d.docker_ok(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn secrets_and_configs_reach_tasks_on_tmpfs_and_never_rest_in_the_clear() {
    let d = TestDaemon::builder().start();
    busybox(&d);
    let (st, _, err) = d.docker(&["secret", "ls"]);
    assert!(!st.success());
    assert!(err.contains("not a swarm manager"), "{err}");
    init(&d);

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let secret = format!("Pl41ntext-{nanos:x}-Qz");
    let o = d.docker_out(
        &["secret", "create", "pw", "-"],
        Some(secret.clone().into_bytes()),
    );
    assert!(o.status.success(), "{}", o.stderr);
    let secret_id = o.stdout_str().trim().to_string();
    assert_eq!(secret_id.len(), 25, "{secret_id}");

    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg_path = cfg_dir.path().join("app.conf");
    let cfg = "listen = 8080\nname = app\n";
    std::fs::write(&cfg_path, cfg).unwrap();
    let cfg_arg = cfg_path.to_str().unwrap();
    d.docker_ok(&["config", "create", "cfg", cfg_arg]);

    // Names are unique; data is required; a service names what exists.
    let (st, _, err) = d.docker(&["secret", "create", "pw", cfg_arg]);
    assert!(!st.success());
    assert!(err.contains("secret pw already exists"), "{err}");
    let (code, body) = d.api(
        "POST",
        "/v1.47/secrets/create",
        Some(br#"{"Name":"nodata"}"#),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.api(
        "POST",
        "/v1.47/secrets/create",
        Some(br#"{"Name":"bad","Data":"!!not base64"}"#),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.api(
        "POST",
        "/v1.47/services/create",
        Some(
            br#"{"Name":"ghost","TaskTemplate":{"ContainerSpec":{"Image":"busybox",
                "Secrets":[{"SecretName":"nope","SecretID":"nope"}]}}}"#,
        ),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("secret not found: nope"), "{body}");

    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "app",
        "--secret",
        "pw",
        "--config",
        "source=cfg,target=/etc/app.conf,mode=0440",
        "busybox",
        "sleep",
        "1d",
    ]);
    wait_until("the task's container", Duration::from_secs(30), || {
        !task_container(&d, "app").is_empty()
    });
    let cid = task_container(&d, "app");
    let exec = |args: &[&str]| {
        let mut full = vec!["exec", cid.as_str()];
        full.extend_from_slice(args);
        d.docker_ok(&full)
    };
    assert_eq!(exec(&["cat", "/run/secrets/pw"]), secret);
    assert_eq!(
        exec(&["stat", "-c", "%a %u %g", "/run/secrets/pw"]).trim(),
        "444 0 0"
    );
    assert_eq!(exec(&["cat", "/etc/app.conf"]), cfg);
    assert_eq!(exec(&["stat", "-c", "%a", "/etc/app.conf"]).trim(), "440");
    let mounts = exec(&["cat", "/proc/mounts"]);
    let line = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/run/secrets/pw"))
        .unwrap_or_else(|| panic!("no mount at /run/secrets/pw:\n{mounts}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "tmpfs", "{line}");
    assert!(fields[3].split(',').any(|o| o == "ro"), "{line}");
    let o = d.docker_out(
        &["exec", &cid, "sh", "-c", "echo x > /run/secrets/pw"],
        None,
    );
    assert!(!o.status.success(), "the secret is read-only");

    // Inspect never shows a secret's data; a config's it does.
    let inspect = d.docker_ok(&["secret", "inspect", "pw"]);
    assert!(!inspect.contains("\"Data\""), "{inspect}");
    assert!(inspect.contains(&secret_id), "{inspect}");
    let (code, body) = d.api("GET", &format!("/v1.47/secrets/{}", &secret_id[..6]), None);
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("Data") && !body.contains(&secret), "{body}");
    let (_, listed) = d.api(
        "GET",
        "/v1.47/secrets?filters=%7B%22names%22%3A%5B%22pw%22%5D%7D",
        None,
    );
    assert!(
        listed.contains(&secret_id) && !listed.contains("Data"),
        "{listed}"
    );
    let data = d.docker_ok(&[
        "config",
        "inspect",
        "cfg",
        "--format",
        "{{json .Spec.Data}}",
    ]);
    assert_eq!(data.trim(), "\"bGlzdGVuID0gODA4MApuYW1lID0gYXBwCg==\"");

    // Only labels change.
    let version = d.api_json(&format!("/v1.47/secrets/{secret_id}"))["Version"]["Index"]
        .as_u64()
        .unwrap();
    let (code, body) = d.api(
        "POST",
        &format!("/v1.47/secrets/{secret_id}/update?version={version}"),
        Some(br#"{"Name":"pw","Data":"b3RoZXI="}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("only updates to Labels are allowed"),
        "{body}"
    );
    let (code, body) = d.api(
        "POST",
        &format!("/v1.47/secrets/{secret_id}/update?version={version}"),
        Some(br#"{"Name":"pw","Labels":{"tier":"db"}}"#),
    );
    assert_eq!(code, 200, "{body}");
    let labels = d.docker_ok(&[
        "secret",
        "inspect",
        "pw",
        "--format",
        "{{.Spec.Labels.tier}}",
    ]);
    assert_eq!(labels.trim(), "db");

    // Nothing under the data root, nor the daemon's log, holds the
    // plaintext; the key is private.
    let mut files = Vec::new();
    files_under(&d.data_root, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{} holds the secret in the clear",
            f.display()
        );
    }
    assert!(!d.log().contains(&secret), "the daemon logged the secret");
    let key = std::fs::metadata(d.data_root.join("swarm/key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);

    // In use: refused, naming the service.
    let (st, _, err) = d.docker(&["secret", "rm", "pw"]);
    assert!(!st.success());
    assert!(
        err.contains("secret 'pw' is in use by the following service: app"),
        "{err}"
    );
    let (st, _, err) = d.docker(&["config", "rm", "cfg"]);
    assert!(!st.success());
    assert!(
        err.contains("in use by the following service: app"),
        "{err}"
    );

    d.docker_ok(&["service", "rm", "app"]);
    d.docker_ok(&["secret", "rm", "pw"]);
    d.docker_ok(&["config", "rm", "cfg"]);
    assert_eq!(d.docker_ok(&["secret", "ls", "-q"]).trim(), "");
    assert_eq!(d.docker_ok(&["config", "ls", "-q"]).trim(), "");
    let tasks = d.exec_root.join("swarm/tasks");
    wait_until("the task's tmpfs to go", Duration::from_secs(30), || {
        std::fs::read_dir(&tasks)
            .map(|mut r| r.next().is_none())
            .unwrap_or(true)
    });

    d.docker_ok(&["swarm", "leave", "--force"]);
    assert!(!d.data_root.join("swarm").exists());
    d.finish();
}

#[test]
fn a_task_keeps_its_secrets_across_a_daemon_restart_and_leave_unmounts_them() {
    let mut d = TestDaemon::builder().start();
    busybox(&d);
    init(&d);
    let o = d.docker_out(&["secret", "create", "token", "-"], Some(b"t0ken".to_vec()));
    assert!(o.status.success(), "{}", o.stderr);
    d.docker_ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "svc",
        "--secret",
        "source=token,target=/etc/token,uid=1000,gid=1000,mode=0400",
        "busybox",
        "sleep",
        "1d",
    ]);
    wait_until("the task's container", Duration::from_secs(30), || {
        !task_container(&d, "svc").is_empty()
    });
    let cid = task_container(&d, "svc");
    assert_eq!(
        d.docker_ok(&["exec", &cid, "stat", "-c", "%a %u %g", "/etc/token"])
            .trim(),
        "400 1000 1000"
    );
    assert!(!common::mounts_under(&d.exec_root.join("swarm")).is_empty());
    // Live restore: the task and its tmpfs outlive the daemon.
    d.restart();
    assert_eq!(task_container(&d, "svc"), cid, "the task was adopted");
    assert_eq!(d.docker_ok(&["exec", &cid, "cat", "/etc/token"]), "t0ken");
    d.docker_ok(&["swarm", "leave", "--force"]);
    assert!(common::mounts_under(&d.exec_root.join("swarm")).is_empty());
    assert!(!d.exec_root.join("swarm").exists());
    d.finish();
}
