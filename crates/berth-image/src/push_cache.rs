//! The push cache: the compressed form of a layer, made by the first push
//! and kept so that later pushes (to the same or any other registry) send
//! the same bytes without compressing again.
//!
//! Lifecycle: a push compresses a layer through [`ImageStore::compressed_writer`]
//! (an ordinary content-store ingest) while it uploads, then
//! [`ImageStore::keep_compressed_layer`] publishes the blob and records
//! `diff ID → compressed digest size` in `meta.db`, both under the publish
//! lock. The blob is a garbage-collection root for as long as some image
//! references its layer: when the last such image is removed, the entry is
//! forgotten and the blob deleted by the same collection (`store.rs`). A
//! crash between publishing the blob and recording it leaves an
//! unreferenced blob, which the collection at the next start removes; an
//! entry whose blob is missing is treated as absent.
//!
//! Disk cost: one compressed copy per pushed layer, next to its
//! uncompressed blob and snapshot — the same trade containerd makes by
//! keeping the compressed blobs it pushed or pulled.

use berth_content::BlobWriter;
use berth_core::Digest;

use crate::{ImageError, ImageStore};

/// The push-cache key of a layer's compressed form: the diff ID alone for
/// gzip (as entries made before other codecs were), `"<diff ID> <codec>"`
/// otherwise.
fn cache_key(diff_id: &Digest, codec: &str) -> String {
    if codec == "gzip" {
        diff_id.to_string()
    } else {
        format!("{diff_id} {codec}")
    }
}

impl ImageStore {
    /// The kept compressed blob of a layer in `codec` (`gzip`, `zstd`), if
    /// a push made one and it is still here whole: its digest and size.
    pub fn compressed_layer(&self, diff_id: &Digest, codec: &str) -> Option<(Digest, u64)> {
        let (digest, size) = self.meta.compressed_of(&cache_key(diff_id, codec))?;
        (self.content.size(&digest).ok()? == size).then_some((digest, size))
    }

    /// A content-store writer for a layer's compressed form.
    pub fn compressed_writer(&self) -> Result<BlobWriter, ImageError> {
        Ok(self.content.writer()?)
    }

    /// Publishes a compressed form written through [`compressed_writer`] and
    /// records it for `diff_id`. If no image references the layer any more
    /// (it was removed during the push), the blob is not kept. Returns the
    /// blob's digest and size either way.
    ///
    /// [`compressed_writer`]: ImageStore::compressed_writer
    pub fn keep_compressed_layer(
        &self,
        diff_id: &Digest,
        codec: &str,
        writer: BlobWriter,
    ) -> Result<(Digest, u64), ImageError> {
        let _guard = self.publish.lock().expect("publish lock");
        let referenced = self.meta.with(|s| {
            s.images
                .values()
                .any(|r| r.layers.iter().any(|l| &l.diff_id == diff_id))
        });
        let (digest, size) = writer.commit(None)?;
        if !referenced {
            self.content.delete(&digest)?;
            return Ok((digest, size));
        }
        self.meta
            .set_compressed(&cache_key(diff_id, codec), &digest, size)?;
        Ok((digest, size))
    }

    /// The repositories (`domain/path`) earlier pushes put a kept
    /// compressed blob in, most recent last: where a push to another
    /// repository of the same registry can mount it from.
    pub fn blob_repositories(&self, blob: &Digest) -> Vec<String> {
        self.meta.blob_repos(blob)
    }

    /// Records that the repository `repo` (`domain/path`) has `blob`.
    pub fn note_blob_repository(&self, blob: &Digest, repo: &str) -> Result<(), ImageError> {
        self.meta.add_blob_repo(blob, repo)
    }

    /// Opens a committed blob (a kept compressed layer) for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<std::fs::File, ImageError> {
        Ok(self.content.open_blob(digest)?)
    }
}
