//! `push`: a local image → the registry. Each layer is gzip-compressed once,
//! in parallel pieces (`gzip.rs`), while the compressed bytes stream to the
//! registry (POST, a streamed PATCH, PUT `?digest=`); the compressed blob is
//! kept in the content store (berth-image `push_cache.rs`), so a later push
//! of the layer, to this registry or another, asks the registry once
//! whether it has the blob and uploads the kept bytes if not — no second
//! compression, the same digest everywhere. Then the config and a Docker
//! v2.2 manifest (docker-registry/manifest-v2-2.md), put by tag.

use std::io::Write;
use std::sync::Mutex;

use berth_content::BlobWriter;
use berth_core::{Digest, Reference};
use berth_image::manifest::{
    Descriptor, Manifest, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use berth_image::{ImageError, ImageStore};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Handle;

use crate::client::Session;
use crate::gzip;
use crate::{Credentials, DistributionError, Progress, ProgressSink, RegistryOptions};

const PARALLEL: usize = 3;

pub struct PushRequest {
    /// The local image name, with the tag to push.
    pub reference: Reference,
    pub creds: Option<Credentials>,
    pub compression: LayerCompression,
}

/// How pushed layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    /// gzip, in a Docker v2.2 manifest (what docker pushes).
    #[default]
    Gzip,
    /// zstd, in an OCI image manifest (`tar+zstd` layers; containerd,
    /// podman and docker 23+ pull them).
    Zstd,
}

impl LayerCompression {
    /// The push-cache codec name.
    fn codec(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for LayerCompression {
    type Err = DistributionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            other => Err(DistributionError::InvalidArgument(format!(
                "unsupported compression {other:?}: use gzip or zstd"
            ))),
        }
    }
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
                match push_layer(
                    handle,
                    &session,
                    store,
                    r.domain(),
                    req.compression,
                    &diff_ids[i],
                    &progress,
                ) {
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
                media_type: match req.compression {
                    LayerCompression::Gzip => DOCKER_LAYER_GZIP.into(),
                    LayerCompression::Zstd => OCI_LAYER_ZSTD.into(),
                },
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
    let (manifest_type, config_type) = match req.compression {
        LayerCompression::Gzip => (DOCKER_MANIFEST, DOCKER_CONFIG),
        LayerCompression::Zstd => (OCI_MANIFEST, OCI_CONFIG),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.into()),
        config: Descriptor {
            media_type: config_type.into(),
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
    let digest = handle.block_on(session.put_manifest(&tag, manifest_type, bytes))?;
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

/// The gzip level of pushed layers: 6, the default of Go's `compress/gzip`
/// that docker's push and containerd use, so blobs are about the size
/// docker makes them (every pull pays for a bigger blob; the push pays for
/// compressing once, since the result is kept). Parallel pieces and stored
/// incompressible pieces (see `gzip.rs`) keep the one-time cost down.
const GZIP_LEVEL: u32 = 6;

/// Threads compressing one layer: the machine's cores, at most 4 (three
/// layers are pushed at once).
/// zstd level of pushed layers: 3, zstd's default (and containerd's).
const ZSTD_LEVEL: i32 = 3;

/// zstd-compresses `src` into `dst` as one frame with a content checksum,
/// single-threaded so the bytes (and the digest) depend only on the input.
/// Calls `progress` with the input bytes consumed so far.
fn zstd_compress(
    mut src: impl std::io::Read,
    dst: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> std::io::Result<u64> {
    let mut enc = zstd::stream::write::Encoder::new(dst, ZSTD_LEVEL)?;
    enc.include_checksum(true)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n: u64 = 0;
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        enc.write_all(&buf[..k])?;
        n += k as u64;
        progress(n);
    }
    enc.finish()?;
    Ok(n)
}

fn gzip_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

fn push_layer(
    handle: &Handle,
    session: &Session,
    store: &ImageStore,
    domain: &str,
    compression: LayerCompression,
    diff_id: &Digest,
    progress: &ProgressSink,
) -> Result<(Digest, u64), DistributionError> {
    let id = short(diff_id);
    let here = format!("{domain}/{}", session.repo);
    let pushed = |digest: Digest, size: u64, status: String| {
        // Only a hint for later mounts: failing to note it fails nothing.
        if let Err(e) = store.note_blob_repository(&digest, &here) {
            tracing::warn!(error = %e, "remembering where a blob was pushed");
        }
        progress(Progress::layer(&id, status));
        Ok((digest, size))
    };
    // Compressed before (for this registry or another): the one question
    // to the registry is whether it has that blob; if not, whether it can
    // mount it from a repository of its own an earlier push put it in
    // (as docker's push does), and only then the upload.
    if let Some((digest, size)) = store.compressed_layer(diff_id, compression.codec()) {
        if handle.block_on(session.blob_exists(&digest))? {
            return pushed(digest, size, "Layer already exists".into());
        }
        let prefix = format!("{domain}/");
        for repo in store.blob_repositories(&digest).iter().rev() {
            let Some(path) = repo.strip_prefix(&prefix) else {
                continue;
            };
            if path == session.repo {
                continue;
            }
            if handle.block_on(session.mount_blob(&digest, path)) {
                return pushed(digest, size, format!("Mounted from {path}"));
            }
        }
        upload_kept(handle, session, store, &digest, size, &id, progress)?;
        return pushed(digest, size, "Pushed".into());
    }
    let (digest, size) =
        compress_and_upload(handle, session, store, compression, diff_id, &id, progress)?;
    pushed(digest, size, "Pushed".into())
}

/// Uploads a kept compressed blob from the content store.
fn upload_kept(
    handle: &Handle,
    session: &Session,
    store: &ImageStore,
    digest: &Digest,
    size: u64,
    id: &str,
    progress: &ProgressSink,
) -> Result<(), DistributionError> {
    // Opened up front, so a blob removed meanwhile fails here, clearly.
    let file = store.open_blob(digest)?;
    let file = std::sync::Mutex::new(Some(file));
    let path_digest = digest.clone();
    let opener = store.content().path(digest);
    let sink = progress.clone();
    let pid = id.to_string();
    handle.block_on(session.upload_blob(digest, size, move || {
        // The first body reads the file opened above; a re-sent one (after
        // a challenge) opens it again.
        let first = file.lock().expect("file lock").take();
        let path = opener.clone();
        let what = path_digest.clone();
        let sink = sink.clone();
        let pid = pid.clone();
        let stream = futures_util::stream::once(async move {
            match first {
                Some(f) => Ok(tokio::fs::File::from_std(f)),
                None => tokio::fs::File::open(&path).await,
            }
        })
        .map(move |f| match f {
            Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).left_stream(),
            Err(e) => {
                let e = std::io::Error::new(e.kind(), format!("opening blob {what}: {e}"));
                futures_util::stream::once(async move { Err(e) }).right_stream()
            }
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
    }))
}

/// Where the compressed bytes go while they are made: into the content
/// store (hashed on the way) and to the upload.
struct Tee {
    blob: BlobWriter,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.blob.write_all(buf)?;
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.blob.flush()
    }
}

/// First push of a layer: compresses it and streams the compressed bytes
/// to the registry at the same time (POST, one streamed PATCH, then PUT
/// `?digest=` once the digest is known), keeping them in the content store
/// for the next push.
fn compress_and_upload(
    handle: &Handle,
    session: &Session,
    store: &ImageStore,
    compression: LayerCompression,
    diff_id: &Digest,
    id: &str,
    progress: &ProgressSink,
) -> Result<(Digest, u64), DistributionError> {
    let src = store.open_layer(diff_id)?;
    let total = src
        .metadata()
        .map_err(DistributionError::io(format!("reading layer {diff_id}")))?
        .len();
    let writer = store.compressed_writer()?;
    let location = handle.block_on(session.start_upload())?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let body =
        reqwest::Body::wrap_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let (uploaded, compressed) = std::thread::scope(|s| {
        let compressor = s.spawn(move || {
            let mut tee = Tee {
                blob: writer,
                tx: tx.clone(),
            };
            let sink = progress.clone();
            let pid = id.to_string();
            let report = |n| {
                sink(Progress {
                    id: Some(pid.clone()),
                    status: "Pushing".into(),
                    detail: Some((n, total)),
                    aux: None,
                })
            };
            let res = match compression {
                LayerCompression::Gzip => {
                    gzip::gzip(src, &mut tee, GZIP_LEVEL, gzip_threads(), report)
                }
                LayerCompression::Zstd => zstd_compress(src, &mut tee, report),
            };
            match res {
                Ok(_) => Ok(tee.blob),
                Err(e) => {
                    // Fail the upload too, so the registry drops the session
                    // rather than waiting for more bytes.
                    let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
                    Err(e)
                }
            }
        });
        let uploaded = handle.block_on(session.patch_stream(&location, body));
        (uploaded, compressor.join().expect("compression thread"))
    });
    // A compression that failed on its own (reading the layer) explains
    // the aborted upload; one that stopped on a closed pipe is explained
    // by the upload's failure.
    let (location, writer) = match (uploaded, compressed) {
        (Ok(location), Ok(writer)) => (location, writer),
        (Err(e), Err(c)) if c.kind() == std::io::ErrorKind::BrokenPipe => return Err(e),
        (Err(e), Ok(_)) => return Err(e),
        (_, Err(c)) => {
            return Err(DistributionError::io(format!(
                "compressing layer {diff_id}"
            ))(c))
        }
    };
    let (digest, size) = store.keep_compressed_layer(diff_id, compression.codec(), writer)?;
    handle.block_on(session.finish_upload(&location, &digest))?;
    Ok((digest, size))
}
