//! Debian's skopeo against the registry: push an OCI layout, pull it back
//! byte for byte, inspect, list tags, delete; with Basic auth, TLS and the
//! token flow.

mod common;

use std::path::Path;

use berth_core::Digest;
use common::*;
use serde_json::Value;

fn skopeo_bin() -> &'static str {
    let bin = "/usr/bin/skopeo";
    assert!(
        Path::new(bin).exists(),
        "skopeo is required: apt-get install -y skopeo"
    );
    bin
}

/// Runs skopeo with `args`, returns stdout; panics with stderr on failure.
async fn skopeo(args: &[&str]) -> String {
    let (ok, out, err) = skopeo_try(args).await;
    assert!(ok, "skopeo {args:?} failed:\n{err}");
    out
}

async fn skopeo_try(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(skopeo_bin())
        .arg("--insecure-policy")
        .args(args)
        .output()
        .await
        .expect("skopeo runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The pulled `dir:` copy holds exactly the pushed manifest, config and layer.
fn assert_same_image(out: &Path, img: &TestImage) {
    let got = std::fs::read(out.join("manifest.json")).unwrap();
    assert!(
        got == img.manifest,
        "manifest differs:\n{}\n{}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&img.manifest)
    );
    for data in [&img.config, &img.layer] {
        let d = Digest::sha256_of(data);
        assert!(
            &std::fs::read(out.join(d.hex())).unwrap() == data,
            "blob {d} differs"
        );
    }
}

#[tokio::test]
async fn push_pull_inspect_list_delete() {
    let r = Registry::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "v1", b"hello from berth\n");
    let src = format!("oci:{}:v1", img.layout.display());
    let dest = format!("docker://{}/lib/hello:v1", r.hostport());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]).await;
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{}/lib/hello:v2", r.hostport()),
    ])
    .await;

    let out = tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("dir:{}", out.display()),
    ])
    .await;
    assert_same_image(&out, &img);

    let v: Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &dest]).await).unwrap();
    assert_eq!(
        v["Digest"],
        Digest::sha256_of(&img.manifest).to_string().as_str()
    );
    assert_eq!(v["Os"], "linux");
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]).await;
    assert_eq!(raw.as_bytes(), &img.manifest[..]);

    let repo = format!("docker://{}/lib/hello", r.hostport());
    let v: Value =
        serde_json::from_str(&skopeo(&["list-tags", "--tls-verify=false", &repo]).await).unwrap();
    assert_eq!(v["Tags"], serde_json::json!(["v1", "v2"]));

    // skopeo deletes by digest: the manifest and every tag on it go.
    skopeo(&["delete", "--tls-verify=false", &dest]).await;
    let (ok, _, _) = skopeo_try(&["inspect", "--tls-verify=false", &dest]).await;
    assert!(!ok, "deleted image still inspectable");
    let v: Value =
        serde_json::from_str(&skopeo(&["list-tags", "--tls-verify=false", &repo]).await).unwrap();
    assert_eq!(v["Tags"], serde_json::json!([]));
    r.stop().await;
}

#[tokio::test]
async fn push_pull_with_htpasswd() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = basic_auth(tmp.path(), &[("alice", "s3cret")]);
    let r = Registry::start_with(|c| c.auth = auth).await;
    let img = make_image(tmp.path(), "v1", b"auth\n");
    let src = format!("oci:{}:v1", img.layout.display());
    let dest = format!("docker://{}/alice/app:v1", r.hostport());
    let (ok, _, err) = skopeo_try(&["copy", "--dest-tls-verify=false", &src, &dest]).await;
    assert!(!ok, "push without credentials succeeded");
    assert!(
        err.contains("authentication required")
            || err.contains("unauthorized")
            || err.contains("401"),
        "{err}"
    );
    let (ok, _, _) = skopeo_try(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wrong",
        &src,
        &dest,
    ])
    .await;
    assert!(!ok, "push with a wrong password succeeded");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &src,
        &dest,
    ])
    .await;
    let out = tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "alice:s3cret",
        &dest,
        &format!("dir:{}", out.display()),
    ])
    .await;
    assert_same_image(&out, &img);
    r.stop().await;
}

#[tokio::test]
async fn push_pull_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let tls = self_signed(tmp.path());
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&tls.cert, certs.join("ca.crt")).unwrap();
    let r = Registry::start_with(|c| c.tls = Some(tls)).await;
    assert!(r.handle.url().starts_with("https://"));
    let img = make_image(tmp.path(), "v1", b"tls\n");
    let src = format!("oci:{}:v1", img.layout.display());
    let dest = format!("docker://{}/sec/app:v1", r.hostport());
    // Verified against the self-signed certificate as CA.
    skopeo(&[
        "copy",
        "--dest-cert-dir",
        certs.to_str().unwrap(),
        &src,
        &dest,
    ])
    .await;
    // Without the CA, verification fails; with verification off, it works.
    let out = tmp.path().join("pulled");
    let dir_dest = format!("dir:{}", out.display());
    let (ok, _, _) = skopeo_try(&["copy", &dest, &dir_dest]).await;
    assert!(!ok, "untrusted certificate accepted");
    skopeo(&["copy", "--src-tls-verify=false", &dest, &dir_dest]).await;
    assert_same_image(&out, &img);
    r.stop().await;
}

#[tokio::test]
async fn push_pull_with_token_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = token_auth(tmp.path(), &[("alice", "pw1"), ("bob", "pw2")]);
    let r = Registry::start_with(|c| c.auth = auth).await;
    let img = make_image(tmp.path(), "v1", b"token\n");
    let src = format!("oci:{}:v1", img.layout.display());
    let dest = format!("docker://{}/alice/app:v1", r.hostport());
    // bob may not push under alice/.
    let (ok, _, _) = skopeo_try(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:pw2",
        &src,
        &dest,
    ])
    .await;
    assert!(!ok, "bob pushed to alice/app");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:pw1",
        &src,
        &dest,
    ])
    .await;
    // bob may pull it.
    let out = tmp.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "bob:pw2",
        &dest,
        &format!("dir:{}", out.display()),
    ])
    .await;
    assert_same_image(&out, &img);
    let v: Value = serde_json::from_str(
        &skopeo(&[
            "list-tags",
            "--tls-verify=false",
            "--creds",
            "bob:pw2",
            &format!("docker://{}/alice/app", r.hostport()),
        ])
        .await,
    )
    .unwrap();
    assert_eq!(v["Tags"], serde_json::json!(["v1"]));
    r.stop().await;
}
