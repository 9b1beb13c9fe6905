//! `import`: a root file system tar (plain, gzip or zstd) becomes a
//! one-layer image, as `docker import` does. Also the layer staging and
//! publishing steps shared with `load`.
//!
//! The tar is read once: every byte is hashed and written to a new blob on
//! the way into the unpacker, so the layer's diff ID, its blob and its
//! snapshot come out of a single pass.

use std::io::{self, Read, Write};
use std::path::Path;

use berth_content::BlobWriter;
use berth_core::{Digest, Reference};
use berth_snapshot::{apply_layer, decompressed, ApplyStats, SnapshotInfo, Staging};

use crate::changes::apply_changes;
use crate::config::{
    host_architecture, now_rfc3339, ContainerConfig, History, ImageConfig, RootFs,
};
use crate::meta::{ImageRecord, LayerRecord};
use crate::{ImageError, ImageStore};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `repo[:tag]` to tag the new image with.
    pub tag: Option<Reference>,
    /// Dockerfile-style `--change` instructions.
    pub changes: Vec<String>,
    /// Commit message; defaults to `Imported from <source>`.
    pub message: Option<String>,
    /// Where the tar came from, for the default message (`-` for a stream).
    pub source: String,
}

/// A layer unpacked and written to a blob, not yet visible.
pub(crate) struct StagedLayer {
    pub blob: BlobWriter,
    pub staging: Staging,
    pub stats: ApplyStats,
}

/// Chunks in flight from the reading thread to each of its consumers.
const PIPE_DEPTH: usize = 16;
/// Bytes per chunk handed from the reading thread to its consumers.
const PIPE_CHUNK: usize = 256 << 10;

/// The unpacker's end of the pipe from the reading thread: chunks in
/// order; a closed pipe reads as the end. Whether that end was the real
/// end of the stream is the reading thread's result, which the caller
/// checks before the unpacker's.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<bytes::Bytes>,
    buf: bytes::Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.buf = b,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

impl ImageStore {
    /// Unpacks an uncompressed layer stream into a staging snapshot while
    /// writing it to a new blob. Three threads share the work: one reads
    /// `uncompressed` (for a compressed layer that is the decompression,
    /// the longest single part of the job) in chunks that it hands, shared
    /// and uncopied, to this thread, which unpacks them, and to another,
    /// which hashes them and writes the blob.
    pub(crate) fn stage_layer(
        &self,
        uncompressed: impl Read + Send,
    ) -> Result<StagedLayer, ImageError> {
        let blob = self.content.writer()?;
        let staging = self.snapshots.prepare()?;
        let (wtx, wrx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(PIPE_DEPTH);
        let (atx, arx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(PIPE_DEPTH);
        let (applied, read, written) = std::thread::scope(|s| {
            let writer = s.spawn(move || -> io::Result<BlobWriter> {
                let mut blob = blob;
                for chunk in wrx {
                    blob.write_all(&chunk)?;
                }
                Ok(blob)
            });
            let reader = s.spawn(move || -> io::Result<()> {
                let mut input = uncompressed;
                // Once the unpacker has stopped (it failed, or the tar
                // ended), the rest still goes to the blob, whose digest
                // covers every byte.
                let mut unpacking = true;
                loop {
                    let mut chunk = Vec::with_capacity(PIPE_CHUNK);
                    (&mut input)
                        .take(PIPE_CHUNK as u64)
                        .read_to_end(&mut chunk)?;
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    let chunk = bytes::Bytes::from(chunk);
                    if unpacking && atx.send(chunk.clone()).is_err() {
                        unpacking = false;
                    }
                    if wtx.send(chunk).is_err() {
                        // The writer failed; the caller reports its error.
                        return Ok(());
                    }
                }
            });
            let applied = apply_layer(
                ChunkReader {
                    rx: arx,
                    buf: bytes::Bytes::new(),
                },
                staging.path(),
            );
            let read = reader
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the layer reading thread panicked")));
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the layer blob writer thread panicked")));
            (applied, read, written)
        });
        // A writer error (a full disk) is the cause of the others; a read
        // error (a broken download, corrupt compression) is the cause of
        // whatever the unpacker made of the truncated stream.
        let blob = written.map_err(ImageError::io("writing layer blob"))?;
        read.map_err(ImageError::io("reading layer"))?;
        let stats = applied?;
        Ok(StagedLayer {
            blob,
            staging,
            stats,
        })
    }

    /// Makes a staged layer visible. Must be called with `publish` held.
    pub(crate) fn publish_layer(
        &self,
        staged: StagedLayer,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
    ) -> Result<(LayerRecord, Digest), ImageError> {
        let StagedLayer {
            blob,
            staging,
            stats,
        } = staged;
        let size = blob.written();
        let (diff_id, _) = blob.commit(expected.map(|d| (d, size)))?;
        let chain = match parent {
            None => diff_id.clone(),
            Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
        };
        if self.snapshots.exists(chain.hex()) {
            drop(staging);
        } else {
            let info = SnapshotInfo {
                parent: parent.map(|p| p.hex().to_string()),
                size: stats.size,
                diff_id: diff_id.to_string(),
            };
            self.snapshots.commit(staging, chain.hex(), &info)?;
        }
        Ok((
            LayerRecord {
                diff_id,
                size: stats.size,
            },
            chain,
        ))
    }

    pub fn import(
        &self,
        input: Box<dyn Read + Send>,
        opts: ImportOptions,
    ) -> Result<Digest, ImageError> {
        // Validate the changes before reading a byte, so bad input costs nothing.
        let mut container = ContainerConfig::default();
        apply_changes(&mut container, &opts.changes)?;
        let reader = decompressed(input).map_err(ImageError::io("reading import stream"))?;
        let staged = self.stage_layer(reader)?;
        sync_filesystem(self.content.root())?;

        let created = now_rfc3339();
        let comment = opts.message.clone().unwrap_or_else(|| {
            format!(
                "Imported from {}",
                if opts.source.is_empty() {
                    "-"
                } else {
                    &opts.source
                }
            )
        });
        let _guard = self.publish.lock().expect("publish lock");
        let (layer, _chain) = self.publish_layer(staged, None, None)?;
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: host_architecture().to_string(),
            os: "linux".into(),
            // Docker also writes the message as a top-level `comment`; berth
            // keeps it in history only, so the config has the OCI image-spec
            // shape and survives skopeo's docker→OCI conversion byte for
            // byte (same image ID in both formats).
            comment: None,
            config: Some(container),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(comment),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        let id = self.content.write_all(&bytes)?;
        let record = ImageRecord {
            id: id.clone(),
            layers: vec![layer],
            added_at: now_nanos(),
            last_tag_time: None,
            parent: None,
        };
        self.publish_image(record, opts.tag.as_slice())?;
        Ok(id)
    }
}

pub(crate) fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Flushes every dirty page of the file system holding `path` with one
/// `syncfs(2)`, much cheaper than fsyncing each unpacked file, so that what
/// the metadata commit makes reachable is already durable.
pub(crate) fn sync_filesystem(path: &Path) -> Result<(), ImageError> {
    let f =
        std::fs::File::open(path).map_err(ImageError::io(format!("opening {}", path.display())))?;
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open file descriptor for the duration of the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(ImageError::Io {
            context: format!("syncfs {}", path.display()),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}
