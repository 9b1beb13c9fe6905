//! kill -9 of the registry mid-upload: the server runs in a child process
//! (this test binary re-executed into `crash_child_server`), is SIGKILLed
//! after half a blob, and restarted on the same root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_core::Digest;
use reqwest::{Client, StatusCode};

const ROOT_ENV: &str = "BERTH_REGISTRY_CRASH_CHILD_ROOT";

/// Not a test on its own: with ROOT_ENV set it serves that root, writes the
/// address to `<root>/../addr` and never returns (until killed).
#[tokio::test]
async fn crash_child_server() {
    let Some(root) = std::env::var_os(ROOT_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let c = berth_registry::Config::new("127.0.0.1:0", root.clone());
    let h = berth_registry::serve(c).await.expect("registry starts");
    let dir = root.parent().unwrap();
    std::fs::write(dir.join("addr.tmp"), h.local_addr().to_string()).unwrap();
    std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
    std::future::pending::<()>().await;
}

struct ChildServer {
    child: Child,
    base: String,
}

fn spawn_server(dir: &Path) -> ChildServer {
    let _ = std::fs::remove_file(dir.join("addr"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOT_ENV, dir.join("root"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("re-exec the test binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.join("addr")) {
            break a;
        }
        assert!(Instant::now() < deadline, "child registry did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    ChildServer {
        child,
        base: format!("http://{addr}"),
    }
}

impl ChildServer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// SIGKILL (Child::kill is SIGKILL on unix) and reap.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn kill9_mid_upload_leaves_no_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    let d = Digest::sha256_of(&data);
    let half = data.len() / 2;
    let c = Client::new();

    let s = spawn_server(dir.path());
    let resp = c
        .post(s.url("/v2/crash/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = c
        .patch(s.url(&loc))
        .header("content-type", "application/octet-stream")
        .body(data[..half].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["range"], format!("0-{}", half - 1).as_str());
    s.kill9();

    let s = spawn_server(dir.path());
    // No partial blob anywhere it could be served from.
    let resp = c
        .head(s.url(&format!("/v2/crash/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!dir.path().join("root/blobs/sha256").join(d.hex()).exists());

    // The old session resumes where it stopped, or is gone.
    let resp = c.get(s.url(&loc)).send().await.unwrap();
    let resumed = match resp.status() {
        StatusCode::NO_CONTENT => {
            assert_eq!(resp.headers()["range"], format!("0-{}", half - 1).as_str());
            true
        }
        StatusCode::NOT_FOUND => false,
        st => panic!("GET of the old session: {st}"),
    };

    // A fresh upload of the same blob succeeds and verifies.
    let resp = c
        .post(s.url(&format!("/v2/crash/blobs/uploads/?digest={d}")))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c
        .get(s.url(&format!("/v2/crash/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.bytes().await.unwrap();
    assert_eq!(Digest::sha256_of(&got), d);
    assert_eq!(got.len(), data.len());

    // Finishing the resumed session with the rest is consistent too.
    if resumed {
        let resp = c
            .put(s.url(&format!("{loc}?digest={d}")))
            .header("content-type", "application/octet-stream")
            .body(data[half..].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let got = c
            .get(s.url(&format!("/v2/crash/blobs/{d}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(Digest::sha256_of(&got), d);
    }
    s.kill9();
}
