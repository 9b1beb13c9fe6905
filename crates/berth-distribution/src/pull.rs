//! `pull`: reference → manifest (platform picked from an index) → config →
//! layers downloaded three at a time, each verified against its digest as
//! it streams to a scratch file and unpacked at the same time, and
//! registered in one step.

use std::io::Write;
use std::sync::Mutex;

use berth_content::{BlobWriter, ContentStore};
use berth_core::{Digest, Reference, Sha256Writer};
use berth_image::config::{host_architecture, ImageConfig};
use berth_image::manifest::{parse_manifest_or_index, Descriptor, Manifest, ManifestKind};
use berth_image::{ImageStore, PulledLayer};
use tokio::runtime::Handle;

use crate::client::Session;
use crate::{Credentials, DistributionError, Progress, ProgressSink, RegistryOptions};

/// Parallel blob downloads, as dockerd's default `max-concurrent-downloads`… of 3.
const PARALLEL: usize = 3;
const ATTEMPTS: usize = 3;

pub struct PullRequest {
    pub reference: Reference,
    /// `os/arch[/variant]`; the host's by default.
    pub platform: Option<String>,
    pub creds: Option<Credentials>,
}

pub struct Pulled {
    pub id: Digest,
    pub digest: Digest,
    pub up_to_date: bool,
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

fn parse_platform(p: Option<&str>) -> Result<(String, String, Option<String>), DistributionError> {
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return Ok(("linux".into(), host_architecture().into(), None));
    };
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [os, arch] => Ok((os.to_string(), arch.to_string(), None)),
        [os, arch, v] => Ok((os.to_string(), arch.to_string(), Some(v.to_string()))),
        [arch] if !arch.is_empty() => Ok(("linux".into(), arch.to_string(), None)),
        _ => Err(DistributionError::InvalidArgument(format!(
            "invalid platform {p:?}: use os/arch[/variant]"
        ))),
    }
}

/// Picks the manifest for `platform` from an index.
pub fn pick_platform<'a>(
    manifests: &'a [Descriptor],
    platform: &(String, String, Option<String>),
) -> Option<&'a Descriptor> {
    let (os, arch, variant) = platform;
    let matching = manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| &p.os == os && &p.architecture == arch)
    });
    let all: Vec<&Descriptor> = matching.collect();
    if let Some(v) = variant {
        if let Some(d) = all
            .iter()
            .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_ref()) == Some(v))
        {
            return Some(d);
        }
    }
    all.first().copied()
}

/// Pulls `req.reference` into `store`. Runs on a blocking thread; network
/// I/O runs on `handle`'s runtime.
pub fn pull(
    handle: &Handle,
    store: &ImageStore,
    opts: &RegistryOptions,
    req: PullRequest,
    progress: ProgressSink,
) -> Result<Pulled, DistributionError> {
    pull_one(handle, store, opts, req, progress, true)
}

/// Pulls every tag of the repository `req.reference` names (which has
/// neither tag nor digest), as `docker pull --all-tags` does: the tags in
/// the registry's order, each as its own pull, and one closing status
/// line for the repository.
pub fn pull_all_tags(
    handle: &Handle,
    store: &ImageStore,
    opts: &RegistryOptions,
    req: PullRequest,
    progress: ProgressSink,
) -> Result<Vec<(Reference, Pulled)>, DistributionError> {
    let r = &req.reference;
    if r.tag().is_some() || r.digest().is_some() {
        return Err(DistributionError::InvalidArgument(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let tags = on_first_endpoint(handle, opts, r, req.creds.as_ref(), |s| async move {
        s.list_tags().await
    })?;
    if tags.is_empty() {
        return Err(DistributionError::NotFound(format!(
            "no tags found for {}",
            r.familiar_name()
        )));
    }
    let mut pulled = Vec::with_capacity(tags.len());
    for t in &tags {
        let tagged = r.with_tag(t).map_err(|e| {
            DistributionError::Protocol(format!("the registry lists an invalid tag {t:?}: {e}"))
        })?;
        let one = pull_one(
            handle,
            store,
            opts,
            PullRequest {
                reference: tagged.clone(),
                platform: req.platform.clone(),
                creds: req.creds.clone(),
            },
            progress.clone(),
            false,
        )?;
        pulled.push((tagged, one));
    }
    let name = r.familiar_name();
    progress(Progress::status(
        if pulled.iter().any(|(_, p)| !p.up_to_date) {
            format!("Status: Downloaded newer image for {name}")
        } else {
            format!("Status: Image is up to date for {name}")
        },
    ));
    Ok(pulled)
}

/// One pull; `closing` adds the final `Status:` line (an all-tags pull
/// writes one for the repository instead).
fn pull_one(
    handle: &Handle,
    store: &ImageStore,
    opts: &RegistryOptions,
    req: PullRequest,
    progress: ProgressSink,
    closing: bool,
) -> Result<Pulled, DistributionError> {
    let r = &req.reference;
    let platform = parse_platform(req.platform.as_deref())?;
    let reference = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let tagged = if r.digest().is_none() {
        Some(
            r.with_tag(&reference)
                .map_err(|e| DistributionError::InvalidArgument(e.to_string()))?,
        )
    } else {
        None
    };
    let shown = tagged.as_ref().unwrap_or(r).familiar();
    let not_found = |e: DistributionError| match e {
        DistributionError::NotFound(m) => {
            DistributionError::NotFound(format!("manifest for {shown} not found: {m}"))
        }
        e => e,
    };

    // The manifest, from the first endpoint that has it.
    let (session, (bytes, _media_type)) =
        on_first_endpoint(handle, opts, r, req.creds.as_ref(), |s| async {
            let m = s.get_manifest(&reference).await?;
            Ok((s, m))
        })
        .map_err(not_found)?;
    let top_digest = Digest::sha256_of(&bytes);
    if let Some(d) = r.digest() {
        if d != &top_digest {
            return Err(DistributionError::Protocol(format!(
                "manifest {d} has digest {top_digest}: the registry sent the wrong content"
            )));
        }
    }
    progress(Progress::status(format!(
        "{reference}: Pulling from {}",
        r.path()
    )));
    let manifest = resolve(handle, &session, &bytes, &platform, 0)?;

    // The config: small, verified, and the source of truth for diff IDs.
    let config_bytes = handle.block_on(session.get_small_blob(&manifest.config.digest))?;
    let config = ImageConfig::parse(&config_bytes).map_err(|e| {
        DistributionError::Protocol(format!(
            "image config {} is not valid: {e}",
            manifest.config.digest
        ))
    })?;
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(DistributionError::Protocol(format!(
            "the manifest lists {} layers but the image config has {} diff ids",
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let mut todo = Vec::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        if l.media_type.contains("foreign") || l.media_type.contains("nondistributable") {
            return Err(DistributionError::Protocol(format!(
                "layer {} is a foreign layer ({}), which berth does not fetch",
                l.digest, l.media_type
            )));
        }
        if store.has_layer(&diff_ids, i) {
            progress(Progress::layer(&short(&l.digest), "Already exists"));
        } else {
            progress(Progress::layer(&short(&l.digest), "Pulling fs layer"));
            todo.push(i);
        }
    }

    let scratch = store.scratch_dir("pull")?;
    let staging = ContentStore::open(scratch.path())?;
    let results: Mutex<Vec<Option<PulledLayer>>> =
        Mutex::new((0..manifest.layers.len()).map(|_| None).collect());
    let queue = Mutex::new(todo.into_iter());
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
                let desc = &manifest.layers[i];
                match fetch_layer(handle, &session, store, &staging, desc, &progress) {
                    Ok(l) => results.lock().expect("lock")[i] = Some(l),
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
    let layers = results.into_inner().expect("lock");
    let repo_digest = r.with_digest(top_digest.clone());
    let (id, up_to_date) =
        store.register_pulled(&config_bytes, layers, tagged.as_ref(), Some(&repo_digest))?;
    progress(Progress::status(format!("Digest: {top_digest}")));
    if closing {
        progress(Progress::status(if up_to_date {
            format!("Status: Image is up to date for {shown}")
        } else {
            format!("Status: Downloaded newer image for {shown}")
        }));
    }
    Ok(Pulled {
        id,
        digest: top_digest,
        up_to_date,
    })
}

/// Runs `op` on a pull session with the first endpoint of `r`'s registry
/// (mirrors first) where it succeeds. A mirror's failure moves on to the
/// next endpoint; the registry's own failure is the answer.
fn on_first_endpoint<T, F, Fut>(
    handle: &Handle,
    opts: &RegistryOptions,
    r: &Reference,
    creds: Option<&Credentials>,
    op: F,
) -> Result<T, DistributionError>
where
    F: Fn(Session) -> Fut,
    Fut: std::future::Future<Output = Result<T, DistributionError>>,
{
    let mut last_err = None;
    for ep in &opts.endpoints(r.domain()) {
        let attempt = handle.block_on(async {
            let s = Session::connect(ep, r.path(), "pull", creds.cloned()).await?;
            op(s).await
        });
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) if ep.mirror => {
                tracing::info!(mirror = ?ep.urls, error = %e, "mirror failed; trying the next endpoint");
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| DistributionError::Protocol("no endpoint".into())))
}

/// Follows an index to the platform's image manifest, verifying digests.
fn resolve(
    handle: &Handle,
    session: &Session,
    bytes: &[u8],
    platform: &(String, String, Option<String>),
    depth: u32,
) -> Result<Manifest, DistributionError> {
    if depth > 2 {
        return Err(DistributionError::Protocol(
            "image indexes nest too deeply".into(),
        ));
    }
    match parse_manifest_or_index(bytes)
        .map_err(|e| DistributionError::Protocol(format!("invalid manifest: {e}")))?
    {
        ManifestKind::Image(m) => Ok(m),
        ManifestKind::Index(idx) => {
            let pick = pick_platform(&idx.manifests, platform).ok_or_else(|| {
                let (os, arch, v) = platform;
                DistributionError::NotFound(format!(
                    "no matching manifest for {os}/{arch}{} in the manifest list entries",
                    v.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
                ))
            })?;
            let (inner, _) = handle.block_on(session.get_manifest(&pick.digest.to_string()))?;
            let actual = Digest::sha256_of(&inner);
            if actual != pick.digest {
                return Err(DistributionError::Protocol(format!(
                    "manifest {} has digest {actual}: the registry sent the wrong content",
                    pick.digest
                )));
            }
            resolve(handle, session, &inner, platform, depth + 1)
        }
    }
}

/// Downloads one layer blob (retrying a broken transfer) while it is
/// unpacked: the bytes are hashed and, through a bounded channel, fed to an
/// unpacking thread, so download and unpack overlap instead of running one
/// after the other. The compressed bytes are not written anywhere while the
/// stream to the unpacker is intact: the unpacked result is used only if
/// the download verified and its bytes reached the unpacker as one unbroken
/// stream. When that stream breaks (the server ignored a `Range` and sent
/// the blob again, or the unpacker stopped before the end), the verified
/// blob is kept in a scratch file instead and unpacked afresh from there.
fn fetch_layer(
    handle: &Handle,
    session: &Session,
    store: &ImageStore,
    staging: &ContentStore,
    desc: &Descriptor,
    progress: &ProgressSink,
) -> Result<PulledLayer, DistributionError> {
    let id = short(&desc.digest);
    let mut attempt = 0;
    // Whether the next attempt writes the blob to `staging` from byte 0.
    let mut keep = false;
    let (piped, kept) = loop {
        attempt += 1;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(PIPE_DEPTH);
        let (downloaded, unpacked, tee) = std::thread::scope(|s| {
            let unpacker = s.spawn(move || {
                store.stage_pulled_layer(PipeReader {
                    rx,
                    buf: bytes::Bytes::new(),
                    ended: false,
                })
            });
            let mut tee = Tee {
                tx: Some(tx),
                intact: true,
                receiver_gone: false,
            };
            let downloaded = download(
                handle, session, staging, desc, &id, progress, &mut tee, keep,
            );
            if downloaded.is_ok() && tee.intact {
                if let Some(tx) = &tee.tx {
                    let _ = tx.send(Piece::End);
                }
            }
            let state = TeeState {
                intact: tee.intact && tee.tx.is_some(),
                restarted: !tee.intact,
                receiver_gone: tee.receiver_gone,
            };
            drop(tee);
            let unpacked = unpacker.join().unwrap_or_else(|_| {
                Err(berth_image::ImageError::Io {
                    context: format!("unpacking {}", desc.digest),
                    source: std::io::Error::other("the unpacking thread panicked"),
                })
            });
            (downloaded, unpacked, state)
        });
        match downloaded {
            Ok(kept) if tee.intact => break (Some(unpacked), kept),
            Ok(true) => break (None, true),
            // Verified, not kept, and the unpacker stopped reading on its
            // own: what it saw was a verified prefix of the layer, so its
            // error is the layer's (a bad tar, a full disk).
            Ok(false) if tee.receiver_gone && !tee.restarted && unpacked.is_err() => {
                break (Some(unpacked), false)
            }
            // The unpacker finished before the end of the blob (trailing
            // bytes after the archive): fetch the blob again, keeping it.
            Ok(false) if !keep => {
                tracing::info!(digest = %desc.digest, "the unpacker stopped before the end of the layer; downloading it again into a scratch blob");
                keep = true;
                attempt -= 1;
            }
            Ok(false) => {
                return Err(DistributionError::Protocol(format!(
                    "layer {}: downloaded but not unpacked",
                    desc.digest
                )))
            }
            Err(e) if attempt < ATTEMPTS && e.retryable() && !is_disk_full(&e) => {
                tracing::warn!(digest = %desc.digest, attempt, error = %e, "layer download failed; retrying");
                progress(Progress::layer(
                    &id,
                    format!(
                        "Retrying in {attempt} second{}",
                        if attempt == 1 { "" } else { "s" }
                    ),
                ));
                std::thread::sleep(std::time::Duration::from_secs(attempt as u64));
            }
            Err(e) => return Err(e),
        }
    };
    progress(Progress::layer(&id, "Download complete"));
    progress(Progress::layer(&id, "Extracting"));
    let staged = match piped {
        Some(Ok(staged)) => staged,
        // An unpack error from the verified bytes is the layer's own fault
        // (a full disk, a bad tar): unpacking again would say the same.
        Some(Err(e)) => {
            if kept {
                let _ = staging.delete(&desc.digest);
            }
            return Err(e.into());
        }
        None => {
            tracing::info!(digest = %desc.digest, "the stream to the unpacker broke; unpacking the verified blob");
            let f = staging.open_blob(&desc.digest)?;
            let staged = store.stage_pulled_layer(std::io::BufReader::with_capacity(1 << 20, f));
            let _ = staging.delete(&desc.digest);
            staged?
        }
    };
    if kept {
        let _ = staging.delete(&desc.digest);
    }
    progress(Progress::layer(&id, "Pull complete"));
    Ok(staged)
}

/// How the stream to the unpacker ended, once the download is over.
struct TeeState {
    /// Every byte of the verified blob (and then [`Piece::End`]) reached
    /// the unpacker.
    intact: bool,
    /// The download started over from byte 0 after the unpacker had bytes.
    restarted: bool,
    /// The unpacker stopped reading (it finished or failed) before the end.
    receiver_gone: bool,
}

/// Chunks in flight between the download and the unpacker.
const PIPE_DEPTH: usize = 64;

enum Piece {
    Data(bytes::Bytes),
    /// The whole blob was sent and its digest verified.
    End,
}

/// The download's side of the pipe to the unpacker.
struct Tee {
    /// `None` once the unpacker stopped reading (it finished or failed).
    tx: Option<std::sync::mpsc::SyncSender<Piece>>,
    /// False once the stream had to start over from byte 0: what the
    /// unpacker got is then not the verified blob.
    intact: bool,
    /// The unpacker dropped its end of the pipe.
    receiver_gone: bool,
}

impl Tee {
    fn send(&mut self, chunk: &bytes::Bytes) {
        if let Some(tx) = &self.tx {
            if tx.send(Piece::Data(chunk.clone())).is_err() {
                self.tx = None;
                self.receiver_gone = true;
            }
        }
    }

    fn restart(&mut self) {
        self.intact = false;
        self.tx = None;
    }

    /// Whether the unpacker still gets every byte.
    fn feeding(&self) -> bool {
        self.intact && self.tx.is_some()
    }
}

/// The unpacker's side: bytes in order, end of file only after
/// [`Piece::End`]; a pipe closed without it reads as an error, never as a
/// (possibly truncated) end of the layer.
struct PipeReader {
    rx: std::sync::mpsc::Receiver<Piece>,
    buf: bytes::Bytes,
    ended: bool,
}

impl std::io::BufRead for PipeReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.buf.is_empty() {
            if self.ended {
                return Ok(&[]);
            }
            match self.rx.recv() {
                Ok(Piece::Data(b)) => self.buf = b,
                Ok(Piece::End) => self.ended = true,
                Err(_) => {
                    // Not `Interrupted`: readers retry that.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the download stopped before the end of the layer",
                    ));
                }
            }
        }
        Ok(&self.buf)
    }

    fn consume(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.buf, n);
    }
}

impl std::io::Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let avail = self.fill_buf()?;
        let n = out.len().min(avail.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// How many times one download resumes after a broken connection before
/// the attempt fails (and [`fetch_layer`] starts over, up to [`ATTEMPTS`]).
const RESUMES: u32 = 5;

/// Where a resumed response starts: `Some(offset)` for a 206 whose
/// `Content-Range: bytes START-END/TOTAL` starts at `offset`; `None` for a
/// 200 (the server ignored Range and sent everything); an error otherwise.
fn resumed_at(resp: &reqwest::Response, digest: &Digest) -> Result<Option<u64>, DistributionError> {
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Ok(None);
    }
    let cr = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let start = cr
        .strip_prefix("bytes ")
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            DistributionError::Protocol(format!(
                "blob {digest}: 206 response with an unusable Content-Range {cr:?}"
            ))
        })?;
    Ok(Some(start))
}

/// Where [`download`] puts the blob's bytes besides the unpacker.
enum Sink {
    /// Hashed only: the unpacker gets the bytes, nothing else needs them.
    Hash(Sha256Writer<std::io::Sink>),
    /// Written to a scratch blob, to unpack from once verified.
    Blob(BlobWriter),
}

impl Sink {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Hash(h) => h.write_all(chunk),
            Sink::Blob(w) => w.write_all(chunk),
        }
    }

    /// Checks size and digest; a kept blob is committed to the staging
    /// store. Returns whether it was kept.
    fn commit(self, desc: &Descriptor) -> Result<bool, berth_content::ContentError> {
        match self {
            Sink::Blob(w) => w.commit(Some((&desc.digest, desc.size))).map(|_| true),
            Sink::Hash(h) => {
                let (_, digest, size) = h.finish();
                if size != desc.size {
                    Err(berth_content::ContentError::SizeMismatch {
                        digest: desc.digest.clone(),
                        expected: desc.size,
                        actual: size,
                    })
                } else if digest != desc.digest {
                    Err(berth_content::ContentError::DigestMismatch {
                        expected: desc.digest.clone(),
                        actual: digest,
                    })
                } else {
                    Ok(false)
                }
            }
        }
    }
}

/// Downloads one blob, verifying size and digest. While `tee` feeds the
/// unpacker and `keep` is false the bytes are only hashed; otherwise (and
/// from the moment the download has to start over) they are written to a
/// scratch blob in `staging`. A connection that breaks mid-stream is
/// resumed with `Range: bytes=N-` (RFC 9110 §14.2), continuing the same
/// running digest; a server that answers the range with a 200 gets a fresh
/// scratch blob and the whole blob again. Returns whether the blob was kept
/// in `staging`.
#[allow(clippy::too_many_arguments)]
fn download(
    handle: &Handle,
    session: &Session,
    staging: &ContentStore,
    desc: &Descriptor,
    id: &str,
    progress: &ProgressSink,
    tee: &mut Tee,
    keep: bool,
) -> Result<bool, DistributionError> {
    let mut w = if keep || !tee.feeding() {
        Sink::Blob(staging.writer()?)
    } else {
        Sink::Hash(Sha256Writer::new(std::io::sink()))
    };
    let mut done: u64 = 0;
    let mut reported: u64 = 0;
    let mut resumes = 0;
    loop {
        let streamed = (|| -> Result<(), DistributionError> {
            let mut resp = handle.block_on(session.get_blob_from(&desc.digest, done))?;
            if done > 0 {
                match resumed_at(&resp, &desc.digest)? {
                    Some(at) if at == done => {}
                    Some(at) => {
                        return Err(DistributionError::Protocol(format!(
                            "blob {}: asked to resume at byte {done}, the registry sent from {at}",
                            desc.digest
                        )))
                    }
                    None => {
                        tracing::info!(digest = %desc.digest, "registry ignored Range; downloading again from the start");
                        w = Sink::Blob(staging.writer()?);
                        tee.restart();
                        done = 0;
                        reported = 0;
                    }
                }
            }
            while let Some(chunk) =
                handle
                    .block_on(resp.chunk())
                    .map_err(DistributionError::http(format!(
                        "downloading {}",
                        desc.digest
                    )))?
            {
                if done + chunk.len() as u64 > desc.size {
                    return Err(DistributionError::Protocol(format!(
                        "blob {}: the registry sent more than the {} bytes the manifest declares",
                        desc.digest, desc.size
                    )));
                }
                w.write(&chunk)
                    .map_err(DistributionError::io(format!("writing {}", desc.digest)))?;
                tee.send(&chunk);
                done += chunk.len() as u64;
                if done - reported >= 512 << 10 || done == desc.size {
                    reported = done;
                    progress(Progress {
                        id: Some(id.to_string()),
                        status: "Downloading".into(),
                        detail: Some((done, desc.size)),
                        aux: None,
                    });
                }
            }
            if done < desc.size {
                // The body ended early (a connection closed without an error).
                return Err(DistributionError::Io {
                    context: format!("downloading {}", desc.digest),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("connection closed after {done} of {} bytes", desc.size),
                    ),
                });
            }
            Ok(())
        })();
        match streamed {
            Ok(()) => break,
            Err(e) if e.retryable() && !is_disk_full(&e) && resumes < RESUMES => {
                resumes += 1;
                tracing::warn!(digest = %desc.digest, done, resumes, error = %e,
                    "layer download broke; resuming");
                progress(Progress::layer(id, format!("Resuming at {done} bytes")));
                std::thread::sleep(std::time::Duration::from_millis(200 * resumes as u64));
            }
            Err(e) => return Err(e),
        }
    }
    progress(Progress::layer(id, "Verifying Checksum"));
    w.commit(desc).map_err(|e| match e {
        // A short transfer is worth another try; wrong bytes are not.
        berth_content::ContentError::SizeMismatch { .. } => DistributionError::Io {
            context: format!("downloading {}", desc.digest),
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string()),
        },
        e => DistributionError::Protocol(format!("layer {}: {e}", desc.digest)),
    })
}

/// A local write failed because the disk is full: no retry will help.
fn is_disk_full(e: &DistributionError) -> bool {
    matches!(e, DistributionError::Io { source, .. }
        if source.raw_os_error() == Some(28) || source.kind() == std::io::ErrorKind::StorageFull)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::manifest::Platform;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: "x".into(),
            digest: Digest::sha256_of(&[n]),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
            }),
            annotations: Default::default(),
        }
    }

    #[test]
    fn picks_the_platform() {
        let m = vec![
            desc("arm", Some("v6"), 1),
            desc("arm", Some("v7"), 2),
            desc("amd64", None, 3),
        ];
        let p = |s| parse_platform(Some(s)).unwrap();
        assert_eq!(
            pick_platform(&m, &p("linux/amd64")).unwrap().digest,
            m[2].digest
        );
        assert_eq!(
            pick_platform(&m, &p("linux/arm/v7")).unwrap().digest,
            m[1].digest
        );
        assert!(pick_platform(&m, &p("linux/s390x")).is_none());
        assert!(parse_platform(Some("a/b/c/d")).is_err());
    }
}
