//! Layer compression: which codec a blob uses and how to undo it.
//!
//! Registries serve layers as gzip (`tar+gzip`), zstd (`tar+zstd`) or, for
//! `docker save` archives and some OCI layouts, plain tar. The media type is
//! not always trustworthy (Docker v2 schema 2 always says gzip), so the codec
//! is sniffed from the first bytes of the stream. The sniffed bytes are
//! buffered and replayed, so the caller's reader (often a tee that hashes the
//! compressed blob) still sees every byte exactly once.

use std::io::{self, BufRead, Cursor, Read};

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
    let head = sniff(&mut reader)?;
    let replayed = Cursor::new(head.clone()).chain(reader);
    Ok(match Compression::detect(&head) {
        // Plain tar is read as it comes: a buffer would only add a copy.
        Compression::None => Box::new(replayed),
        _ => decoder(
            io::BufReader::with_capacity(DECODE_BUF_LEN, replayed),
            &head,
        )?,
    })
}

/// [`decompressed`] for a reader that already buffers (a pipe of
/// downloaded chunks, a `BufReader` on a file): the decoder reads the
/// compressed bytes straight from its buffer instead of copying them into
/// one of its own first.
pub fn decompressed_buffered(
    reader: impl BufRead + Send + 'static,
) -> io::Result<Box<dyn Read + Send>> {
    let mut reader = reader;
    let head = sniff(&mut reader)?;
    let replayed = Cursor::new(head.clone()).chain(reader);
    match Compression::detect(&head) {
        Compression::None => Ok(Box::new(replayed)),
        _ => decoder(replayed, &head),
    }
}

/// Input buffer of the decoders behind [`decompressed`].
const DECODE_BUF_LEN: usize = 128 << 10;

/// Reads the first [`SNIFF_LEN`] bytes (fewer only at the end of the
/// stream). A pipe or socket may return fewer bytes than asked; reading
/// goes on until the magic fits or the stream ends.
fn sniff(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
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
    Ok(head)
}

fn decoder(input: impl BufRead + Send + 'static, head: &[u8]) -> io::Result<Box<dyn Read + Send>> {
    Ok(match Compression::detect(head) {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(GzipDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// gzip header flags (RFC 1952, 2.3.1).
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = 0xe0;

/// A multi-member gzip decoder (RFC 1952): each member's header is parsed
/// here, its deflate data is inflated by flate2, and its trailer (CRC-32 and
/// length) is checked before the next member or the end.
///
/// Written here rather than using flate2's `MultiGzDecoder` because that
/// one computes the CRC-32 with its backend's routine, which (with the
/// zlib-rs backend berth needs for fast inflate) cost as much CPU as the
/// inflate itself when unpacking a pulled 512 MiB layer; crc32fast does the
/// same check several times faster. Behavior matches flate2's: reserved
/// flags, a method other than deflate, a bad header CRC, a wrong trailer or
/// bytes after a member that are not another member are errors.
pub struct GzipDecoder<R: BufRead> {
    state: GzState<R>,
}

enum GzState<R: BufRead> {
    /// Before a member's header.
    Header(R),
    Body {
        inflate: flate2::bufread::DeflateDecoder<R>,
        crc: crc32fast::Hasher,
        len: u32,
    },
    End,
    /// An error was returned; the stream is unusable.
    Failed,
}

fn corrupt(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

impl<R: BufRead> GzipDecoder<R> {
    pub fn new(reader: R) -> Self {
        GzipDecoder {
            state: GzState::Header(reader),
        }
    }
}

/// Reads one byte, hashing it into the header CRC.
fn header_byte(r: &mut impl BufRead, crc: &mut crc32fast::Hasher) -> io::Result<u8> {
    let mut b = [0u8; 1];
    read_full(r, &mut b, "truncated member header")?;
    crc.update(&b);
    Ok(b[0])
}

/// Fills `buf`; the end of the input before that is corruption (`what`),
/// while the reader's own errors pass through unchanged (a broken
/// download stays a broken download). `Interrupted` is retried, as
/// `read_exact` does, so it never leaves the decoder half-way through a
/// header.
fn read_full(r: &mut impl Read, mut buf: &mut [u8], what: &str) -> io::Result<()> {
    while !buf.is_empty() {
        match r.read(buf) {
            Ok(0) => return Err(corrupt(what)),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the input has ended, retrying `Interrupted`.
fn at_end(r: &mut impl BufRead) -> io::Result<bool> {
    loop {
        match r.fill_buf() {
            Ok(b) => return Ok(b.is_empty()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Skips a zero-terminated header field (file name, comment) of any length
/// without keeping it.
fn skip_cstr(r: &mut impl BufRead, crc: &mut crc32fast::Hasher) -> io::Result<()> {
    // Byte by byte: these fields are short, and `r` buffers.
    while header_byte(r, crc)? != 0 {}
    Ok(())
}

/// Parses a member header (the magic included), leaving `r` at the start
/// of the deflate data.
fn parse_header(r: &mut impl BufRead) -> io::Result<()> {
    let mut crc = crc32fast::Hasher::new();
    let mut fixed = [0u8; 10];
    for b in fixed.iter_mut() {
        *b = header_byte(r, &mut crc)?;
    }
    if fixed[..2] != GZIP_MAGIC {
        return Err(corrupt(
            "invalid member header (bytes after the data are not gzip)",
        ));
    }
    if fixed[2] != 8 {
        return Err(corrupt(format!(
            "unsupported compression method {}",
            fixed[2]
        )));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(corrupt("reserved header flags are set"));
    }
    if flags & FEXTRA != 0 {
        let xlen = u16::from_le_bytes([header_byte(r, &mut crc)?, header_byte(r, &mut crc)?]);
        for _ in 0..xlen {
            header_byte(r, &mut crc)?;
        }
    }
    if flags & FNAME != 0 {
        skip_cstr(r, &mut crc)?;
    }
    if flags & FCOMMENT != 0 {
        skip_cstr(r, &mut crc)?;
    }
    if flags & FHCRC != 0 {
        let want = crc.clone().finalize() as u16;
        let mut b = [0u8; 2];
        read_full(r, &mut b, "truncated member header")?;
        if u16::from_le_bytes(b) != want {
            return Err(corrupt("header checksum mismatch"));
        }
    }
    Ok(())
}

impl<R: BufRead> Read for GzipDecoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, GzState::Failed) {
                GzState::Header(mut r) => {
                    parse_header(&mut r)?;
                    self.state = GzState::Body {
                        inflate: flate2::bufread::DeflateDecoder::new(r),
                        crc: crc32fast::Hasher::new(),
                        len: 0,
                    };
                }
                GzState::Body {
                    mut inflate,
                    mut crc,
                    len,
                } => {
                    let n = match inflate.read(out) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            self.state = GzState::Body { inflate, crc, len };
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    };
                    if n > 0 {
                        crc.update(&out[..n]);
                        self.state = GzState::Body {
                            inflate,
                            crc,
                            len: len.wrapping_add(n as u32),
                        };
                        return Ok(n);
                    }
                    // End of this member's deflate data: the trailer, then
                    // either the end of the stream or another member.
                    let mut r = inflate.into_inner();
                    let mut trailer = [0u8; 8];
                    read_full(&mut r, &mut trailer, "truncated member trailer")?;
                    let want_crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
                    let want_len = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
                    if want_crc != crc.finalize() || want_len != len {
                        return Err(corrupt("checksum or length mismatch in a member trailer"));
                    }
                    self.state = if at_end(&mut r)? {
                        GzState::End
                    } else {
                        GzState::Header(r)
                    };
                }
                GzState::End => {
                    self.state = GzState::End;
                    return Ok(0);
                }
                GzState::Failed => return Err(corrupt("the stream failed earlier")),
            }
        }
    }
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
        assert_eq!(roundtrip(all.clone()), b"hello world");
        assert_eq!(decode_buffered(all).unwrap(), b"hello world");
    }

    fn gz_with_header_fields(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("made by a test")
            .extra(vec![1, 2, 3, 4])
            .mtime(12345)
            .write(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn decode_buffered(data: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompressed_buffered(io::BufReader::with_capacity(7, Trickle(Cursor::new(data))))?
            .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_header_fields_are_skipped_and_both_entry_points_agree() {
        let gz = gz_with_header_fields(&payload());
        assert_eq!(roundtrip(gz.clone()), payload());
        assert_eq!(decode_buffered(gz).unwrap(), payload());
        // A header CRC (FHCRC) is checked: flip a byte of the mtime.
        let mut h = vec![0x1f, 0x8b, 8, FHCRC, 0, 0, 0, 0, 0, 255];
        let crc = crc32fast::hash(&h) as u16;
        h.extend(crc.to_le_bytes());
        let mut body = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        body.write_all(b"abc").unwrap();
        h.extend(body.finish().unwrap());
        h.extend(crc32fast::hash(b"abc").to_le_bytes());
        h.extend(3u32.to_le_bytes());
        assert_eq!(decode_buffered(h.clone()).unwrap(), b"abc");
        h[5] ^= 1;
        let e = decode_buffered(h).unwrap_err();
        assert!(e.to_string().contains("header checksum"), "{e}");
    }

    /// Every other call is `Interrupted`, which readers must retry.
    struct Flaky<R> {
        inner: R,
        flip: bool,
    }
    impl<R: BufRead> Read for Flaky<R> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = {
                let avail = self.fill_buf()?;
                let n = avail.len().min(out.len());
                out[..n].copy_from_slice(&avail[..n]);
                n
            };
            self.consume(n);
            Ok(n)
        }
    }
    impl<R: BufRead> BufRead for Flaky<R> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            self.flip = !self.flip;
            if self.flip {
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.inner.fill_buf()
        }
        fn consume(&mut self, n: usize) {
            self.inner.consume(n)
        }
    }

    #[test]
    fn interrupted_reads_are_retried_at_every_boundary() {
        let mut all = gz_with_header_fields(b"first member ");
        all.extend(gz_with_header_fields(&payload()));
        let reader = Flaky {
            inner: io::BufReader::with_capacity(5, Trickle(Cursor::new(all))),
            flip: false,
        };
        let mut d = GzipDecoder::new(reader);
        let mut out = Vec::new();
        let mut buf = [0u8; 333];
        loop {
            match d.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{e}"),
            }
        }
        let mut want = b"first member ".to_vec();
        want.extend(payload());
        assert_eq!(out, want);
    }

    #[test]
    fn corrupt_gzip_is_an_error_never_short_data() {
        let gz = gz_with_header_fields(&payload());
        // Wrong CRC-32 in the trailer.
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 8] ^= 0xff;
        let e = decode_buffered(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // Wrong length in the trailer.
        let mut bad = gz.clone();
        bad[n - 1] ^= 0x01;
        assert!(decode_buffered(bad).is_err());
        // Truncated anywhere: in the trailer, in the data, in the header.
        for cut in [n - 3, n / 2, 12] {
            let e = decode_buffered(gz[..cut].to_vec()).unwrap_err();
            assert!(
                e.to_string().contains("truncated") || e.kind() == io::ErrorKind::UnexpectedEof,
                "cut {cut}: {e}"
            );
        }
        // Bytes after the last member that are not another member.
        let mut trailing = gz.clone();
        trailing.extend(b"some garbage after the member");
        let e = decode_buffered(trailing).unwrap_err();
        assert!(e.to_string().contains("not gzip"), "{e}");
        // Reserved flags and another method.
        let mut r = gz.clone();
        r[3] |= 0x20;
        assert!(decode_buffered(r)
            .unwrap_err()
            .to_string()
            .contains("reserved"));
        let mut m = gz;
        m[2] = 7;
        assert!(decode_buffered(m)
            .unwrap_err()
            .to_string()
            .contains("method"));
    }

    #[test]
    fn detects_and_decodes_zstd() {
        let z = zstd::encode_all(&payload()[..], 3).unwrap();
        assert_eq!(Compression::detect(&z), Compression::Zstd);
        assert_eq!(roundtrip(z.clone()), payload());
        assert_eq!(decode_buffered(z).unwrap(), payload());
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
