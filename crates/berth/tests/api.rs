//! The Engine API as seen by a raw HTTP client: ping, version, error shape, events, and the
//! daemon's own lifecycle (data-root lock, clean shutdown).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{http, TestDaemon};

fn api_version_ok(v: &str) -> bool {
    v.strip_prefix("1.")
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| (24..=99).contains(&m))
}

#[test]
fn ping_get_and_head() {
    let d = TestDaemon::builder().start();
    let r = d.api_full("GET", "/_ping", None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), "OK");
    let v = r
        .header("api-version")
        .expect("GET /_ping lacks Api-Version header");
    assert!(api_version_ok(v), "Api-Version {v:?}");
    assert!(
        r.header("ostype").is_some_and(|o| o == "linux"),
        "{:?}",
        r.headers
    );

    let r = d.api_full("HEAD", "/_ping", None, &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("api-version").is_some(),
        "HEAD /_ping lacks Api-Version: {:?}",
        r.headers
    );

    let r = d.api_full("GET", "/v1.47/_ping", None, &[]);
    assert_eq!((r.status, r.body_str().as_str()), (200, "OK"));
}

#[test]
fn version_with_and_without_prefix() {
    let d = TestDaemon::builder().start();
    let ping = d.api_full("GET", "/_ping", None, &[]);
    let header_version = ping.header("api-version").unwrap().to_string();
    let plain = d.api_json("/version");
    let prefixed = d.api_json("/v1.47/version");
    for v in [&plain, &prefixed] {
        assert_eq!(v["ApiVersion"], header_version.as_str(), "{v:#}");
        assert_eq!(v["MinAPIVersion"], "1.24", "{v:#}");
        assert!(
            v["Version"].as_str().is_some_and(|s| !s.is_empty()),
            "{v:#}"
        );
        assert_eq!(v["Os"], "linux", "{v:#}");
        assert_eq!(v["Arch"], common::tarball::go_arch(), "{v:#}");
        assert!(
            v["GoVersion"].is_string() || v["GoVersion"].is_null(),
            "{v:#}"
        );
    }
    assert_eq!(plain["Version"], prefixed["Version"]);
    // Old clients are accepted down to 1.24.
    let (status, body) = d.api("GET", "/v1.24/version", None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn unsupported_api_version_is_rejected_with_json() {
    let d = TestDaemon::builder().start();
    let (status, body) = d.api("GET", "/v1.12/version", None);
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("1.12")),
        "{v}"
    );
}

#[test]
fn unknown_path_is_404_json() {
    let d = TestDaemon::builder().start();
    for path in ["/definitely/not/a/route", "/v1.47/definitely/not/a/route"] {
        let r = d.api_full("GET", path, None, &[]);
        assert_eq!(r.status, 404, "{path}: {}", r.body_str());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{path}: {:?}",
            r.headers
        );
        let v = r.json();
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {v}"
        );
    }
}

#[test]
fn missing_image_is_404_naming_it() {
    let d = TestDaemon::builder().start();
    for path in ["/images/nope/json", "/v1.47/images/nope/json"] {
        let r = d.api_full("GET", path, None, &[]);
        assert_eq!(r.status, 404, "{path}: {}", r.body_str());
        let v = r.json();
        let msg = v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {v}"));
        assert!(msg.contains("nope"), "{msg}");
    }
    let (status, body) = d.api("DELETE", "/images/nope", None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nope"), "{body}");
}

#[test]
fn images_json_lists_imported_image() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    let v = d.api_json("/v1.47/images/json");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{v:#}");
    assert_eq!(arr[0]["Id"], id.as_str());
    assert_eq!(arr[0]["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert!(arr[0]["Size"].as_u64().unwrap_or(0) > 1_000_000, "{v:#}");
    assert!(
        arr[0]["Created"].as_i64().unwrap_or(0) > 1_600_000_000,
        "{v:#}"
    );
    let v = d.api_json("/images/busybox:latest/json");
    assert_eq!(v["Id"], id.as_str());
}

#[test]
fn events_stream_reports_tag() {
    let d = TestDaemon::builder().start();
    let id = d.import(&common::busybox_rootfs(), "busybox:latest");
    let mut stream = http::open_stream(&d.socket, "GET", "/events", Duration::from_secs(2))
        .expect("open /events");
    assert_eq!(stream.status, 200);

    let (status, body) = d.api(
        "POST",
        "/images/busybox:latest/tag?repo=busybox&tag=evt",
        None,
    );
    assert_eq!(status, 201, "tag: {body}");

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = vec![];
    loop {
        assert!(
            Instant::now() < deadline,
            "no image tag event within 15 s; received: {seen:?}"
        );
        match stream.next_line() {
            Ok(Some(line)) if line.trim().is_empty() => continue,
            Ok(Some(line)) => {
                let ev: serde_json::Value = serde_json::from_str(line.trim())
                    .unwrap_or_else(|e| panic!("event is not JSON ({e}): {line:?}"));
                if ev["Type"] == "image" && ev["Action"] == "tag" {
                    assert_eq!(ev["Actor"]["ID"], id.as_str(), "{ev:#}");
                    assert_eq!(ev["Actor"]["Attributes"]["name"], "busybox:evt", "{ev:#}");
                    assert!(ev["time"].as_i64().unwrap_or(0) > 1_600_000_000, "{ev:#}");
                    break;
                }
                seen.push(ev);
            }
            Ok(None) => panic!("event stream ended; received: {seen:?}"),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => panic!("reading /events: {e}; received: {seen:?}"),
        }
    }
}

#[test]
fn second_daemon_on_same_data_root_is_refused() {
    let d = TestDaemon::builder().start();
    let other = common::scratch();
    let mut args = d.daemon_args();
    // Same data-root, different exec-root and socket: only the data-root is shared.
    let exec_pos = args.iter().position(|a| a == "--exec-root").unwrap() + 1;
    args[exec_pos] = other.path().join("exec").display().to_string();
    let host_pos = args.iter().position(|a| a == "-H").unwrap() + 1;
    args[host_pos] = format!("unix://{}", other.path().join("rival.sock").display());
    let mut cmd = Command::new(common::BERTH);
    cmd.args(&args);
    let o = common::run(cmd, None, Duration::from_secs(20));
    assert!(
        !o.status.success(),
        "second daemon started on a locked data-root"
    );
    let out = format!("{}{}", o.stdout_str(), o.stderr).to_lowercase();
    assert!(
        out.contains("lock")
            || out.contains("data-root")
            || out.contains(&d.data_root.display().to_string()),
        "message should mention the lock or data-root: {out}"
    );
    // The first daemon is unharmed.
    let r = d.api_full("GET", "/_ping", None, &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut d = TestDaemon::builder().start();
    d.import(&common::busybox_rootfs(), "busybox:latest");
    let (status, killed) = d.stop();
    assert!(!killed, "daemon ignored SIGTERM for 10 s");
    assert!(
        status.success(),
        "daemon exited with {status} after SIGTERM"
    );
    assert!(
        std::os::unix::net::UnixStream::connect(&d.socket).is_err(),
        "socket still accepts connections after shutdown"
    );
    d.restart();
    let v = d.api_json("/images/json");
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(1),
        "image lost across restart: {v}"
    );
}
