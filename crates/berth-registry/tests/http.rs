//! The distribution API over plain HTTP, checked status by status.

mod common;

use berth_core::Digest;
use common::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn push_blob(c: &Client, r: &Registry, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let resp = c
        .post(r.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["docker-content-digest"],
        d.to_string().as_str()
    );
    d
}

fn manifest_for(config: &Digest, csize: usize, layers: &[(Digest, usize)], extra: &str) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":{n}}}"#))
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{csize}}},"layers":[{}]{extra}}}"#,
        layers.join(",")
    )
    .into_bytes()
}

async fn push_manifest(
    c: &Client,
    r: &Registry,
    repo: &str,
    reference: &str,
    m: &[u8],
) -> reqwest::Response {
    c.put(r.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("content-type", OCI_MANIFEST)
        .body(m.to_vec())
        .send()
        .await
        .unwrap()
}

async fn error_code(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

/// Pushes a config + layer + manifest to `repo:tag`; returns the manifest digest.
async fn push_image(c: &Client, r: &Registry, repo: &str, tag: &str, seed: &str) -> Digest {
    let cfg = format!(r#"{{"seed":"{seed}"}}"#).into_bytes();
    let layer = format!("layer {seed}").into_bytes();
    let cd = push_blob(c, r, repo, &cfg).await;
    let ld = push_blob(c, r, repo, &layer).await;
    let m = manifest_for(&cd, cfg.len(), &[(ld, layer.len())], "");
    let resp = push_manifest(c, r, repo, tag, &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    Digest::sha256_of(&m)
}

#[tokio::test]
async fn base_endpoint_and_unknowns() {
    let r = Registry::start().await;
    let c = Client::new();
    let resp = c.get(r.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let resp = c
        .get(r.url("/v2/nope/manifests/latest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(resp).await, "NAME_UNKNOWN");
    let resp = c.get(r.url("/v2/nope/tags/list")).send().await.unwrap();
    assert_eq!(error_code(resp).await, "NAME_UNKNOWN");
    push_image(&c, &r, "a/b/c", "v1", "x").await;
    let resp = c.get(r.url("/v2/a/b/c/manifests/v2")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(resp).await, "MANIFEST_UNKNOWN");
    let resp = c
        .get(r.url(&format!("/v2/a/b/c/blobs/{}", Digest::sha256_of(b"zz"))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(resp).await, "BLOB_UNKNOWN");
    let resp = c.get(r.url("/v2/UPPER/tags/list")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "NAME_INVALID");
    let resp = c.get(r.url("/v2/a/blobs/sha256:abc")).send().await.unwrap();
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    r.stop().await;
}

#[tokio::test]
async fn chunked_upload_range_and_digest_checks() {
    let r = Registry::start().await;
    let c = Client::new();
    let resp = c
        .post(r.url("/v2/ns/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().contains_key("docker-upload-uuid"));
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/v2/ns/app/blobs/uploads/"));
    let patch = |range: &'static str, body: &'static [u8]| {
        c.patch(r.url(&loc))
            .header("content-range", range)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let resp = patch("0-4", b"hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["range"], "0-4");
    // Out of order: a gap, then a repeat of the first chunk.
    let resp = patch("10-14", b"later").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["range"], "0-4");
    let resp = patch("0-4", b"hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let resp = c.get(r.url(&loc)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["range"], "0-4");
    let resp = patch("5-10", b" world").await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Final chunk in the closing PUT.
    let data = b"hello world!";
    let d = Digest::sha256_of(data);
    let resp = c
        .put(r.url(&format!("{loc}?digest={d}")))
        .header("content-range", "11-11")
        .body(&b"!"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/ns/app/blobs/{d}").as_str()
    );
    // The session is gone.
    let resp = c.get(r.url(&loc)).send().await.unwrap();
    assert_eq!(error_code(resp).await, "BLOB_UPLOAD_UNKNOWN");

    let resp = c
        .head(r.url(&format!("/v2/ns/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "12");
    assert_eq!(
        resp.headers()["docker-content-digest"],
        d.to_string().as_str()
    );
    let resp = c
        .get(r.url(&format!("/v2/ns/app/blobs/{d}")))
        .header("range", "bytes=2-6")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 2-6/12");
    assert_eq!(&resp.bytes().await.unwrap()[..], b"llo w");
    let resp = c
        .get(r.url(&format!("/v2/ns/app/blobs/{d}")))
        .header("range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], "bytes */12");
    let resp = c
        .get(r.url(&format!("/v2/ns/app/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(&resp.bytes().await.unwrap()[..], data);

    // A wrong digest on close is DIGEST_INVALID and publishes nothing.
    let resp = c
        .post(r.url("/v2/ns/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let wrong = Digest::sha256_of(b"something else");
    let resp = c
        .put(r.url(&format!("{loc}?digest={wrong}")))
        .body(&b"abc"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    assert!(!r.root().join("blobs/sha256").join(wrong.hex()).exists());
    assert!(!r
        .root()
        .join("blobs/sha256")
        .join(Digest::sha256_of(b"abc").hex())
        .exists());
    // Monolithic POST with a wrong digest, too.
    let resp = c
        .post(r.url(&format!("/v2/ns/app/blobs/uploads/?digest={wrong}")))
        .body(&b"abc"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");

    // Cancel.
    let resp = c
        .post(r.url("/v2/ns/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = c.delete(r.url(&loc)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = c.get(r.url(&loc)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Nothing left in uploads/.
    assert_eq!(
        std::fs::read_dir(r.root().join("uploads")).unwrap().count(),
        0
    );
    r.stop().await;
}

#[tokio::test]
async fn upload_session_survives_restart() {
    let r = Registry::start().await;
    let c = Client::new();
    let resp = c.post(r.url("/v2/x/blobs/uploads/")).send().await.unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = c
        .patch(r.url(&loc))
        .body(&b"first "[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["range"], "0-5");
    let r = r.restart(|_| {}).await;
    let resp = c.get(r.url(&loc)).send().await.unwrap();
    assert_eq!(resp.headers()["range"], "0-5");
    let d = Digest::sha256_of(b"first second");
    let resp = c
        .put(r.url(&format!("{loc}?digest={d}")))
        .body(&b"second"[..])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Session ids are bound to their repository.
    let resp = c.post(r.url("/v2/x/blobs/uploads/")).send().await.unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let other = loc.replace("/v2/x/", "/v2/y/");
    let resp = c.get(r.url(&other)).send().await.unwrap();
    assert_eq!(error_code(resp).await, "BLOB_UPLOAD_UNKNOWN");
    r.stop().await;
}

#[tokio::test]
async fn manifests_refs_tags_and_delete() {
    let r = Registry::start().await;
    let c = Client::new();
    let cfg = br#"{"a":1}"#;
    let layer = b"layer bytes";
    let cd = Digest::sha256_of(cfg);
    let ld = Digest::sha256_of(layer);
    let m = manifest_for(&cd, cfg.len(), &[(ld.clone(), layer.len())], "");
    let md = Digest::sha256_of(&m);
    // Referenced blobs must exist in this repository.
    let resp = push_manifest(&c, &r, "app", "v1", &m).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    push_blob(&c, &r, "app", cfg).await;
    push_blob(&c, &r, "other", layer).await;
    let resp = push_manifest(&c, &r, "app", "v1", &m).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "layer is only in another repo"
    );
    push_blob(&c, &r, "app", layer).await;
    // By digest: the digest must match the bytes.
    let wrong = Digest::sha256_of(b"x");
    let resp = push_manifest(&c, &r, "app", &wrong.to_string(), &m).await;
    assert_eq!(error_code(resp).await, "DIGEST_INVALID");
    let resp = push_manifest(&c, &r, "app", "v1", &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["docker-content-digest"],
        md.to_string().as_str()
    );
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/app/manifests/{md}").as_str()
    );
    // Push by digest with extra tags (end-7b).
    let resp = c
        .put(r.url(&format!("/v2/app/manifests/{md}?tag=v2&tag=latest")))
        .header("content-type", OCI_MANIFEST)
        .body(m.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers().get_all("oci-tag").iter().count(), 2);
    for reference in ["v1".to_string(), "latest".to_string(), md.to_string()] {
        let resp = c
            .get(r.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(
            resp.headers()["docker-content-digest"],
            md.to_string().as_str()
        );
        assert_eq!(&resp.bytes().await.unwrap()[..], &m[..], "exact bytes");
        let resp = c
            .head(r.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["content-length"],
            m.len().to_string().as_str()
        );
    }
    // Invalid manifests.
    let resp = push_manifest(&c, &r, "app", "bad", b"{not json").await;
    assert_eq!(error_code(resp).await, "MANIFEST_INVALID");
    let resp = c
        .put(r.url("/v2/app/manifests/v1"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )
        .body(r#"{"schemaVersion":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, "MANIFEST_INVALID");
    // Docker v2.2 list referencing the manifest; content type kept.
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{md}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        m.len()
    );
    let resp = c
        .put(r.url("/v2/app/manifests/multi"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .body(list.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c
        .get(r.url("/v2/app/manifests/multi"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let missing_child = list.replace(md.hex(), &"0".repeat(64));
    let resp = c
        .put(r.url("/v2/app/manifests/multi2"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .body(missing_child)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp).await, "MANIFEST_BLOB_UNKNOWN");

    // Delete a tag, then the manifest: every tag on it goes too.
    let resp = c
        .delete(r.url("/v2/app/manifests/v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = c.get(r.url("/v2/app/manifests/v2")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .delete(r.url(&format!("/v2/app/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    for reference in ["v1".to_string(), "latest".to_string(), md.to_string()] {
        let resp = c
            .get(r.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{reference}");
    }
    let resp = c
        .delete(r.url(&format!("/v2/app/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Blob delete unlinks from this repo only.
    let resp = c
        .delete(r.url(&format!("/v2/app/blobs/{ld}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = c
        .head(r.url(&format!("/v2/app/blobs/{ld}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .head(r.url(&format!("/v2/other/blobs/{ld}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    r.stop().await;
}

#[tokio::test]
async fn cross_repo_mount() {
    let r = Registry::start().await;
    let c = Client::new();
    let d = push_blob(&c, &r, "src/app", b"shared layer").await;
    // Known only to src/app: not served from dst.
    let resp = c
        .get(r.url(&format!("/v2/dst/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .post(r.url(&format!("/v2/dst/blobs/uploads/?mount={d}&from=src/app")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/dst/blobs/{d}").as_str()
    );
    let resp = c
        .get(r.url(&format!("/v2/dst/blobs/{d}")))
        .send()
        .await
        .unwrap();
    assert_eq!(&resp.bytes().await.unwrap()[..], b"shared layer");
    // Unknown blob or source: an upload session instead.
    let missing = Digest::sha256_of(b"missing");
    let resp = c
        .post(r.url(&format!(
            "/v2/dst/blobs/uploads/?mount={missing}&from=src/app"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().contains_key("location"));
    r.stop().await;
}

#[tokio::test]
async fn tags_and_catalog_pagination() {
    let r = Registry::start().await;
    let c = Client::new();
    for (i, t) in ["b", "a", "e", "d", "c"].iter().enumerate() {
        push_image(&c, &r, "pag", t, &i.to_string()).await;
    }
    push_image(&c, &r, "zz/last", "x", "z").await;
    let resp = c.get(r.url("/v2/pag/tags/list")).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["name"], "pag");
    assert_eq!(v["tags"], serde_json::json!(["a", "b", "c", "d", "e"]));
    let mut url = r.url("/v2/pag/tags/list?n=2");
    let mut seen = Vec::new();
    loop {
        let resp = c.get(&url).send().await.unwrap();
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let v: Value = resp.json().await.unwrap();
        let tags = v["tags"].as_array().unwrap().clone();
        assert!(tags.len() <= 2);
        seen.extend(tags.into_iter().map(|t| t.as_str().unwrap().to_string()));
        match link {
            Some(l) => {
                assert!(l.ends_with("; rel=\"next\""), "{l}");
                let path = l.trim_start_matches('<').split('>').next().unwrap();
                url = r.url(path);
            }
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let resp = c.get(r.url("/v2/pag/tags/list?n=0")).send().await.unwrap();
    assert!(resp.headers().get("link").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!([]));
    let resp = c
        .get(r.url("/v2/pag/tags/list?last=c"))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["d", "e"]));
    let resp = c.get(r.url("/v2/_catalog")).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["pag", "zz/last"]));
    let resp = c.get(r.url("/v2/_catalog?n=1")).send().await.unwrap();
    assert_eq!(
        resp.headers()["link"],
        "</v2/_catalog?n=1&last=pag>; rel=\"next\""
    );
    r.stop().await;
}

#[tokio::test]
async fn referrers_api() {
    let r = Registry::start().await;
    let c = Client::new();
    let subject = push_image(&c, &r, "art", "v1", "s").await;
    let empty = push_blob(&c, &r, "art", b"{}").await;
    let sbom = push_blob(&c, &r, "art", b"sbom").await;
    let subj =
        format!(r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":1}}"#);
    let m1 = manifest_for(
        &empty,
        2,
        &[(sbom.clone(), 4)],
        &format!(
            r#","artifactType":"application/vnd.example.sbom","annotations":{{"k":"v"}}{subj}"#
        ),
    );
    let m2 = manifest_for(&empty, 2, &[(sbom, 4)], &subj);
    for m in [&m1, &m2] {
        let d = Digest::sha256_of(m);
        let resp = push_manifest(&c, &r, "art", &d.to_string(), m).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["oci-subject"], subject.to_string().as_str());
    }
    let resp = c
        .get(r.url(&format!("/v2/art/referrers/{subject}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let v: Value = resp.json().await.unwrap();
    let ms = v["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    let types: Vec<&str> = ms
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"application/vnd.example.sbom"));
    // Without artifactType, the config media type stands in.
    assert!(types.contains(&"application/vnd.oci.image.config.v1+json"));
    let resp = c
        .get(r.url(&format!(
            "/v2/art/referrers/{subject}?artifactType=application/vnd.example.sbom"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["oci-filters-applied"], "artifactType");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["annotations"]["k"], "v");
    assert_eq!(
        v["manifests"][0]["digest"],
        Digest::sha256_of(&m1).to_string()
    );
    // Deleting a referrer drops it from the list; unknown subjects list nothing.
    c.delete(r.url(&format!("/v2/art/manifests/{}", Digest::sha256_of(&m1))))
        .send()
        .await
        .unwrap();
    let v: Value = c
        .get(r.url(&format!("/v2/art/referrers/{subject}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    let resp = c
        .get(r.url(&format!("/v2/art/referrers/{}", Digest::sha256_of(b"q"))))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .get(r.url("/v2/art/referrers/sha256:nothex"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    r.stop().await;
}

#[tokio::test]
async fn read_only_refuses_writes() {
    let r = Registry::start().await;
    let c = Client::new();
    let md = push_image(&c, &r, "ro", "v1", "r").await;
    let r = r.restart(|c| c.read_only = true).await;
    let resp = c.get(r.url("/v2/ro/manifests/v1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c.post(r.url("/v2/ro/blobs/uploads/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(resp).await, "UNSUPPORTED");
    let resp = c
        .delete(r.url(&format!("/v2/ro/manifests/{md}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = push_manifest(&c, &r, "ro", "v2", b"{}").await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    r.stop().await;
}

#[tokio::test]
async fn gc_sweeps_unreferenced_blobs() {
    let r = Registry::start().await;
    let c = Client::new();
    let keep = push_image(&c, &r, "g/keep", "v1", "k").await;
    let gone = push_image(&c, &r, "g/gone", "v1", "g").await;
    let orphan = push_blob(&c, &r, "g/keep", b"orphan").await;
    let resp = c
        .delete(r.url(&format!("/v2/g/gone/manifests/{gone}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let root = r.root();
    let r = r.restart(|c| c.read_only = true).await;
    // Grace 0: the old stop-the-world rule, everything unreferenced goes.
    let opts = berth_registry::GcOptions {
        grace: std::time::Duration::ZERO,
    };
    let report = berth_registry::gc_with(&root, &opts).unwrap();
    // gone's manifest, config and layer, plus the orphan.
    assert_eq!(report.deleted.len(), 4, "{report:?}");
    assert!(report.deleted.contains(&orphan) && report.deleted.contains(&gone));
    assert_eq!(report.marked, 3);
    assert!(!root.join("blobs/sha256").join(orphan.hex()).exists());
    let resp = c
        .get(r.url("/v2/g/keep/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let m: Value = resp.json().await.unwrap();
    for d in [
        m["config"]["digest"].as_str().unwrap(),
        m["layers"][0]["digest"].as_str().unwrap(),
    ] {
        let resp = c
            .get(r.url(&format!("/v2/g/keep/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = c
        .head(r.url(&format!("/v2/g/keep/blobs/{orphan}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        c.get(r.url(&format!("/v2/g/keep/manifests/{keep}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    r.stop().await;
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let r = Registry::start().await;
    let c = Client::new();
    let cap = berth_registry::manifest::MAX_MANIFEST_SIZE;
    // distribution's 4 MiB cap.
    assert_eq!(cap, 4 << 20);
    let cfg = b"{}".to_vec();
    let cd = push_blob(&c, &r, "big/m", &cfg).await;
    let pad = format!(r#","annotations":{{"pad":"{}"}}"#, "x".repeat(cap));
    let m = manifest_for(&cd, cfg.len(), &[], &pad);
    assert!(m.len() > cap);
    // With a Content-Length: refused before reading.
    let resp = push_manifest(&c, &r, "big/m", "v1", &m).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "MANIFEST_INVALID");
    // Chunked, no Content-Length: cut off at the cap, same answer.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        m.chunks(64 << 10).map(|ch| Ok(ch.to_vec())).collect();
    let resp = c
        .put(r.url("/v2/big/m/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "MANIFEST_INVALID");
    let resp = c
        .head(r.url("/v2/big/m/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Just under the cap is fine.
    let pad = format!(r#","annotations":{{"pad":"{}"}}"#, "x".repeat(cap - 1024));
    let m = manifest_for(&cd, cfg.len(), &[], &pad);
    assert!(m.len() <= cap);
    let resp = push_manifest(&c, &r, "big/m", "v1", &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    r.stop().await;
}

fn age(path: &std::path::Path, secs: i64) {
    let t = filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - secs, 0);
    filetime::set_file_mtime(path, t).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_during_push_deletes_nothing_referenced() {
    let r = Registry::start().await;
    let c = Client::new();
    let root = r.root();
    let blob = |d: &Digest| root.join("blobs/sha256").join(d.hex());
    // Ages a blob and its link in p/app (gc's grace looks at both).
    let age_all = |d: &Digest| {
        age(&blob(d), 7200);
        let link = root.join("repositories/p/app/_blobs/sha256").join(d.hex());
        if link.exists() {
            age(&link, 7200);
        }
    };
    // An old unreferenced blob: collected by the default (1h) grace.
    let orphan = push_blob(&c, &r, "p/app", b"old orphan").await;
    age_all(&orphan);
    // A push in progress: config and layer uploaded, no manifest yet. The
    // layer already existed as an old unreferenced copy; uploading it again
    // makes it young.
    let cfg = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes of a push in progress".to_vec();
    let ld = push_blob(&c, &r, "p/app", &layer).await;
    age_all(&ld);
    let ld2 = push_blob(&c, &r, "p/app", &layer).await;
    assert_eq!(ld, ld2);
    let cd = push_blob(&c, &r, "p/app", &cfg).await;

    let gc_root = root.clone();
    let report = tokio::task::spawn_blocking(move || berth_registry::gc(&gc_root))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.deleted, vec![orphan.clone()], "{report:?}");
    assert_eq!(report.young, 2, "{report:?}");
    assert!(!blob(&orphan).exists() && blob(&ld).exists() && blob(&cd).exists());
    let resp = c
        .head(r.url(&format!("/v2/p/app/blobs/{orphan}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // gc running in a loop while the manifest goes in.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (gc_root, gc_stop) = (root.clone(), stop.clone());
    let looper = tokio::task::spawn_blocking(move || {
        let mut runs = 0;
        while !gc_stop.load(std::sync::atomic::Ordering::SeqCst) || runs == 0 {
            let rep = berth_registry::gc(&gc_root).unwrap();
            assert!(rep.deleted.is_empty(), "{rep:?}");
            runs += 1;
        }
        runs
    });
    let m = manifest_for(&cd, cfg.len(), &[(ld.clone(), layer.len())], "");
    let resp = push_manifest(&c, &r, "p/app", "v1", &m).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(looper.await.unwrap() >= 1);

    // Everything referenced is kept even once it is old.
    let md = Digest::sha256_of(&m);
    for d in [&md, &ld, &cd] {
        age_all(d);
    }
    let gc_root = root.clone();
    let report = tokio::task::spawn_blocking(move || berth_registry::gc(&gc_root))
        .await
        .unwrap()
        .unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.marked, 3);

    // Pull it back intact.
    let resp = c
        .get(r.url("/v2/p/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &m[..]);
    for (d, want) in [(&cd, &cfg), (&ld, &layer)] {
        let resp = c
            .get(r.url(&format!("/v2/p/app/blobs/{d}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &want[..]);
    }
    r.stop().await;
}

// Multi-threaded: raw_request blocks its thread while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_attempts_are_rejected_without_touching_files() {
    let r = Registry::start().await;
    let before = tree(r.dir.path());
    let addr = r.addr();
    let hex = "a".repeat(64);
    let cases = [
        ("GET", "/v2/../../etc/manifests/latest".to_string()),
        ("PUT", "/v2/a/../../x/manifests/latest".to_string()),
        ("GET", "/v2/%2e%2e/%2e%2e/manifests/latest".to_string()),
        ("GET", "/v2/a/%2e%2e/b/tags/list".to_string()),
        ("GET", "/v2/a/blobs/sha256:../../../etc/passwd".to_string()),
        ("GET", format!("/v2/a/blobs/sha256:..%2f{}", &hex[..61])),
        ("GET", format!("/v2/a/blobs/md5:{hex}")),
        ("GET", format!("/v2/a/blobs/sha256:{}", hex.to_uppercase())),
        ("PUT", "/v2/a/manifests/..".to_string()),
        ("PUT", "/v2/a/manifests/%2e%2e".to_string()),
        ("PATCH", "/v2/a/blobs/uploads/../../../etc".to_string()),
        ("PATCH", "/v2/a/blobs/uploads/%2e%2e".to_string()),
        (
            "POST",
            "/v2/a/blobs/uploads/?mount=sha256:../../x&from=../b".to_string(),
        ),
        ("GET", "/v2/a/referrers/sha999:abc".to_string()),
    ];
    for (m, p) in &cases {
        let (status, body) = raw_request(addr, m, p);
        assert!((400..500).contains(&status), "{m} {p} -> {status} {body}");
    }
    // The mount attempt above is refused before a session is opened.
    assert_eq!(tree(r.dir.path()), before);
    r.stop().await;
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let auth = basic_auth(dir.path(), &[("alice", "pw")]);
    let r = Registry::start_with(|c| c.auth = auth).await;
    let c = Client::new();
    let resp = c.get(r.url("/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(error_code(resp).await, "UNAUTHORIZED");
    let resp = c
        .get(r.url("/v2/"))
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = c
        .get(r.url("/v2/"))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    r.stop().await;
}

async fn get_token(
    c: &Client,
    r: &Registry,
    user: Option<(&str, &str)>,
    scope: &str,
) -> (StatusCode, Option<String>) {
    let mut req = c
        .get(r.url("/token"))
        .query(&[("service", "berth-registry"), ("scope", scope)]);
    if let Some((u, p)) = user {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    let st = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    (st, v["token"].as_str().map(String::from))
}

#[tokio::test]
async fn token_auth_flow() {
    let dir = tempfile::tempdir().unwrap();
    let auth = token_auth(dir.path(), &[("alice", "pw"), ("bob", "pw2")]);
    let r = Registry::start_with(|c| c.auth = auth).await;
    let c = Client::new();
    let resp = c
        .post(r.url("/v2/alice/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"berth-registry\",scope=\"repository:alice/app:pull,push\"",
            r.hostport()
        )
    );
    // Bad password: 401 from the token endpoint.
    let (st, _) = get_token(
        &c,
        &r,
        Some(("alice", "bad")),
        "repository:alice/app:pull,push",
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, tok) = get_token(
        &c,
        &r,
        Some(("alice", "pw")),
        "repository:alice/app:pull,push",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let tok = tok.unwrap();
    let resp = c
        .post(r.url("/v2/alice/app/blobs/uploads/"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // The token is scoped: not valid for another repository.
    let resp = c
        .post(r.url("/v2/alice/other/blobs/uploads/"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // bob may pull alice's repo but not push to it: the token grants only pull.
    let (_, tok) = get_token(
        &c,
        &r,
        Some(("bob", "pw2")),
        "repository:alice/app:pull,push",
    )
    .await;
    let tok = tok.unwrap();
    let resp = c
        .post(r.url("/v2/alice/app/blobs/uploads/"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    let resp = c
        .get(r.url("/v2/alice/app/tags/list"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "pull allowed; repo just empty"
    );
    // Anonymous gets an empty grant by default.
    let (st, tok) = get_token(&c, &r, None, "repository:alice/app:pull").await;
    assert_eq!(st, StatusCode::OK);
    let resp = c
        .get(r.url("/v2/alice/app/tags/list"))
        .bearer_auth(tok.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Garbage tokens are refused.
    let resp = c
        .get(r.url("/v2/"))
        .bearer_auth("a.b.c")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    r.stop().await;
}
