//! `push`: a local image → the registry. Each layer is gzip-compressed once
//! (the compressed digest is remembered per diff ID, so a re-push asks the
//! registry about the same blob without compressing again), blobs the
//! registry has are skipped, the rest uploaded monolithically, then the
//! config and a Docker v2.2 manifest (docker-registry/manifest-v2-2.md),
//! put by tag.

use std::io::Write;
use std::sync::Mutex;

use berth_content::ContentStore;
use berth_core::{Digest, Reference};
use berth_image::manifest::{
    Descriptor, Manifest, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST,
};
use berth_image::{ImageError, ImageStore};
use futures_util::StreamExt;
use tokio::runtime::Handle;

use crate::client::Session;
use crate::{Credentials, DistributionError, Progress, ProgressSink, RegistryOptions};

const PARALLEL: usize = 3;

pub struct PushRequest {
    /// The local image name, with the tag to push.
    pub reference: Reference,
    pub creds: Option<Credentials>,
}

pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

pub fn push(
    handle: &Handle,
    store: &ImageStore,
    opts: &RegistryOptions,
    req: PushRequest,
    progress: ProgressSink,
) -> Result<Pushed, DistributionError> {
    let r = &req.reference;
    let tag = r.tag().unwrap_or("latest").to_string();
    let id = store.resolve(&r.to_string()).map_err(|e| match e {
        ImageError::NotFound(_) => DistributionError::NotFound(format!(
            "An image does not exist locally with the tag: {}",
            r.familiar_name()
        )),
        e => e.into(),
    })?;
    let info = store.info(&id)?;
    progress(Progress::status(format!(
        "The push refers to repository [{}]",
        r.name().strip_prefix("docker.io/").unwrap_or(&r.name())
    )));
    // Never push to a mirror.
    let endpoint = opts
        .endpoints(r.domain())
        .into_iter()
        .find(|e| !e.mirror)
        .expect("the registry itself is always an endpoint");
    let session = handle.block_on(Session::connect(
        &endpoint,
        r.path(),
        "pull,push",
        req.creds.clone(),
    ))?;

    let diff_ids = info.record.diff_ids();
    for d in diff_ids.iter().rev() {
        progress(Progress::layer(&short(d), "Preparing"));
    }
    let scratch = store.scratch_dir("push")?;
    let staging = ContentStore::open(scratch.path())?;
    let blobs: Mutex<Vec<Option<(Digest, u64)>>> = Mutex::new(vec![None; diff_ids.len()]);
    let queue = Mutex::new((0..diff_ids.len()).rev());
    let failure: Mutex<Option<DistributionError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let Some(i) = queue.lock().expect("lock").next() else {
                    return;
                };
                match push_layer(handle, &session, store, &staging, &diff_ids[i], &progress) {
                    Ok(b) => blobs.lock().expect("lock")[i] = Some(b),
                    Err(e) => {
                        failure.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    let layers: Vec<Descriptor> = blobs
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|b| {
            let (digest, size) = b.expect("every layer pushed");
            Descriptor {
                media_type: DOCKER_LAYER_GZIP.into(),
                digest,
                size,
                platform: None,
                annotations: Default::default(),
            }
        })
        .collect();

    let config = store.config_bytes(&id)?;
    let config_size = config.len() as u64;
    handle.block_on(async {
        if !session.blob_exists(&id).await? {
            let c = config.clone();
            session
                .upload_blob(&id, config_size, move || reqwest::Body::from(c.clone()))
                .await?;
        }
        Ok::<_, DistributionError>(())
    })?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(DOCKER_MANIFEST.into()),
        config: Descriptor {
            media_type: DOCKER_CONFIG.into(),
            digest: id.clone(),
            size: config_size,
            platform: None,
            annotations: Default::default(),
        },
        layers,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    let size = bytes.len() as u64;
    let digest = handle.block_on(session.put_manifest(&tag, DOCKER_MANIFEST, bytes))?;
    progress(Progress::status(format!(
        "{tag}: digest: {digest} size: {size}"
    )));
    progress(Progress {
        id: None,
        status: String::new(),
        detail: None,
        aux: Some(serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": size})),
    });
    store.add_repo_digest(&id, &r.with_digest(digest.clone()))?;
    Ok(Pushed { digest, size })
}

/// Compresses (deterministically: gzip header without a timestamp) into the
/// scratch store; returns the blob's digest and size.
fn compress(
    store: &ImageStore,
    staging: &ContentStore,
    diff_id: &Digest,
) -> Result<(Digest, u64), DistributionError> {
    let mut src = store.open_layer(diff_id)?;
    let w = staging.writer()?;
    let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    std::io::copy(&mut src, &mut gz).map_err(DistributionError::io(format!(
        "compressing layer {diff_id}"
    )))?;
    let mut w = gz.finish().map_err(DistributionError::io(format!(
        "compressing layer {diff_id}"
    )))?;
    w.flush().map_err(DistributionError::io("flushing"))?;
    Ok(w.commit(None)?)
}

fn push_layer(
    handle: &Handle,
    session: &Session,
    store: &ImageStore,
    staging: &ContentStore,
    diff_id: &Digest,
    progress: &ProgressSink,
) -> Result<(Digest, u64), DistributionError> {
    let id = short(diff_id);
    if let Some((d, n)) = store.compressed_layer(diff_id) {
        if handle.block_on(session.blob_exists(&d))? {
            progress(Progress::layer(&id, "Layer already exists"));
            return Ok((d, n));
        }
    }
    let (digest, size) = compress(store, staging, diff_id)?;
    store.set_compressed_layer(diff_id, &digest, size)?;
    if handle.block_on(session.blob_exists(&digest))? {
        progress(Progress::layer(&id, "Layer already exists"));
        let _ = staging.delete(&digest);
        return Ok((digest, size));
    }
    let path = staging.path(&digest);
    let sink = progress.clone();
    let pid = id.clone();
    handle.block_on(session.upload_blob(&digest, size, move || {
        let path = path.clone();
        let sink = sink.clone();
        let pid = pid.clone();
        let stream = futures_util::stream::once(async move { tokio::fs::File::open(path).await })
            .map(|f| match f {
                Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 256 << 10).left_stream(),
                Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
            })
            .flatten();
        let mut sent: u64 = 0;
        let stream = stream.inspect(move |chunk| {
            if let Ok(c) = chunk {
                sent += c.len() as u64;
                sink(Progress {
                    id: Some(pid.clone()),
                    status: "Pushing".into(),
                    detail: Some((sent, size)),
                    aux: None,
                });
            }
        });
        reqwest::Body::wrap_stream(stream)
    }))?;
    let _ = staging.delete(&digest);
    progress(Progress::layer(&id, "Pushed"));
    Ok((digest, size))
}
