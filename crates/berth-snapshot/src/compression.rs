//! Layer compression: which codec a blob uses and how to undo it.
//!
//! Registries serve layers as gzip (`tar+gzip`), zstd (`tar+zstd`) or, for
//! `docker save` archives and some OCI layouts, plain tar. The media type is
//! not always trustworthy (Docker v2 schema 2 always says gzip), so the codec
//! is sniffed from the first bytes of the stream. The sniffed bytes are
//! buffered and replayed, so the caller's reader (often a tee that hashes the
//! compressed blob) still sees every byte exactly once.

use std::io::{self, Cursor, Read};

/// gzip member header (RFC 1952, 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd frame magic number (RFC 8878, 3.1.1), little endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// How many bytes [`Compression::detect`] needs to decide.
pub const SNIFF_LEN: usize = 4;

/// The codec of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain (uncompressed) tar.
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detects the codec from the first bytes of a blob (at least
    /// [`SNIFF_LEN`] bytes unless the blob is shorter). Anything that is not
    /// gzip or zstd is taken to be plain tar; the tar reader rejects garbage.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Returns a reader of the uncompressed stream, whatever codec `reader`
/// uses. Reading the returned reader to EOF reads `reader` to the end of the
/// compressed data (for gzip: all concatenated members).
pub fn decompressed(reader: impl Read + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
    let mut reader = reader;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    // A pipe or socket may return fewer bytes than asked; keep reading until
    // the magic fits or the stream ends.
    while head.len() < SNIFF_LEN {
        let mut byte = [0u8; SNIFF_LEN];
        let want = SNIFF_LEN - head.len();
        match reader.read(&mut byte[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&byte[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let codec = Compression::detect(&head);
    let replayed = Cursor::new(head).chain(reader);
    Ok(match codec {
        Compression::None => Box::new(replayed),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(replayed)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(replayed)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn payload() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    /// A reader that hands out one byte per read, like a slow pipe.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    fn roundtrip(data: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        decompressed(Trickle(Cursor::new(data)))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn detects_and_decodes_gzip() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&payload()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(Compression::detect(&gz), Compression::Gzip);
        assert_eq!(roundtrip(gz), payload());
    }

    #[test]
    fn decodes_concatenated_gzip_members() {
        let mut all = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            all.extend(enc.finish().unwrap());
        }
        assert_eq!(roundtrip(all), b"hello world");
    }

    #[test]
    fn detects_and_decodes_zstd() {
        let z = zstd::encode_all(&payload()[..], 3).unwrap();
        assert_eq!(Compression::detect(&z), Compression::Zstd);
        assert_eq!(roundtrip(z), payload());
    }

    #[test]
    fn plain_and_short_streams_pass_through() {
        assert_eq!(Compression::detect(b"ustar"), Compression::None);
        assert_eq!(roundtrip(payload()), payload());
        assert_eq!(roundtrip(b"ab".to_vec()), b"ab");
        assert_eq!(roundtrip(Vec::new()), b"");
        // A lone gzip magic byte is not gzip.
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
    }
}
