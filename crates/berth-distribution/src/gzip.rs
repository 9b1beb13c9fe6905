//! Deterministic parallel gzip (RFC 1952) for layer pushes.
//!
//! The input is cut into fixed [`CHUNK`]-byte pieces, each deflated on its
//! own (RFC 1951) on a pool of threads and primed with the last 32 KiB of
//! the piece before it as its dictionary, so matches still reach across
//! piece boundaries. Every piece but the last ends with a sync flush (an
//! empty stored block, byte-aligned), the last with the final block; their
//! concatenation is one valid deflate stream — the technique of pigz. The
//! CRC-32 of the whole input is combined from the pieces' CRCs.
//!
//! The output depends only on the input bytes and the level — not on the
//! number of threads or on timing — so a layer compresses to the same
//! digest every time. The gzip header has no name and no timestamp (mtime
//! 0) and says "unknown OS", as Go's `compress/gzip` writes it for docker.
//!
//! A piece whose samples do not compress (random data, or files that are
//! already compressed: `.gz`, `.jpg`, wheels) is written as stored blocks
//! instead of searched for matches that are not there: deflating it costs
//! several times more and gains nothing (zstd skips such blocks the same
//! way). The decision is made from the piece's bytes alone, so it keeps the
//! output deterministic.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use crc32fast::Hasher as Crc;

/// Bytes of input per piece.
pub const CHUNK: usize = 1 << 20;
/// The deflate window: how much of the previous piece primes the next.
const WINDOW: usize = 32 << 10;
/// Sample size for the incompressibility check, taken at three places.
const SAMPLE: usize = 16 << 10;

/// The gzip member header: magic, CM=deflate, no flags, MTIME=0, XFL=0,
/// OS=255 (unknown).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Piece {
    bytes: Vec<u8>,
    crc: Crc,
    len: u64,
}

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Piece>>,
}

fn deflate_err(e: zlib_rs::DeflateError) -> io::Error {
    io::Error::other(format!("deflate: {}", e.as_str()))
}

/// How a piece is compressed, chosen from samples of its own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Stored blocks: the samples do not shrink.
    Store,
    /// Runs only (zlib's `Z_RLE`): the samples shrink a little — mostly
    /// incompressible bytes with zero runs between them, like tar headers
    /// and padding around random or already compressed files. A full
    /// match search over such a piece costs about four times as much for
    /// the same output; runs of one byte are what it finds anyway.
    Runs,
    /// The full search at the requested level.
    Full,
}

/// Deflates `data` on its own (raw, no zlib header) with a sync flush (or
/// the final block when `last`) at the end, primed with `dict`.
///
/// zlib-rs is used directly rather than through flate2 because flate2
/// cannot choose a strategy ([`Plan::Runs`]).
fn deflate(data: &[u8], dict: &[u8], level: u32, plan: Plan, last: bool) -> io::Result<Vec<u8>> {
    let (level, strategy) = match plan {
        Plan::Store => (0, zlib_rs::Strategy::Default),
        Plan::Runs => (level.max(1), zlib_rs::Strategy::Rle),
        Plan::Full => (level, zlib_rs::Strategy::Default),
    };
    let mut c = zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
        level: level as i32,
        // Negative: raw deflate, no zlib header or trailer.
        window_bits: -15,
        strategy,
        ..zlib_rs::DeflateConfig::default()
    });
    if !dict.is_empty() && level > 0 {
        c.set_dictionary(dict).map_err(deflate_err)?;
    }
    let flush = if last {
        zlib_rs::DeflateFlush::Finish
    } else {
        zlib_rs::DeflateFlush::SyncFlush
    };
    // Room for the worst case (stored blocks plus the flush marker), so
    // one call normally does it all.
    let mut out = vec![0u8; zlib_rs::compress_bound(data.len()) + 64];
    loop {
        let (done_in, done_out) = (c.total_in() as usize, c.total_out() as usize);
        let status = c
            .compress(&data[done_in..], &mut out[done_out..], flush)
            .map_err(deflate_err)?;
        let written = c.total_out() as usize;
        if c.total_in() as usize == data.len() {
            // Finished: the final block is out (Finish), or the flush
            // left room in the buffer, so nothing is pending (Sync).
            if status == zlib_rs::Status::StreamEnd || (!last && written < out.len()) {
                out.truncate(written);
                return Ok(out);
            }
        }
        if out.len() - written < 4096 {
            out.resize(out.len() * 2, 0);
        }
    }
}

/// Picks a piece's [`Plan`] from three samples deflated quickly.
fn plan(data: &[u8]) -> Plan {
    if data.len() < 4 * SAMPLE {
        return Plan::Full;
    }
    let mid = data.len() / 2 - SAMPLE / 2;
    let (mut inp, mut outp) = (0usize, 0usize);
    for s in [0, mid, data.len() - SAMPLE] {
        let sample = &data[s..s + SAMPLE];
        match deflate(sample, &[], 1, Plan::Full, true) {
            Ok(o) => {
                inp += sample.len();
                outp += o.len();
            }
            Err(_) => return Plan::Full,
        }
    }
    // Under 3% saved: not worth any search. Under 15%: random-looking
    // bytes with a little structure; runs find what there is to find.
    if outp * 100 >= inp * 97 {
        Plan::Store
    } else if outp * 100 >= inp * 85 {
        Plan::Runs
    } else {
        Plan::Full
    }
}

fn compress_piece(job: &Job, level: u32) -> io::Result<Piece> {
    let plan = if level > 0 {
        plan(&job.data)
    } else {
        Plan::Store
    };
    let bytes = deflate(&job.data, &job.dict, level, plan, job.last)?;
    let mut crc = Crc::new();
    crc.update(&job.data);
    Ok(Piece {
        bytes,
        crc,
        len: job.data.len() as u64,
    })
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Gzips `src` into `dst` with `threads` compressing threads; calls
/// `progress` with the input bytes done so far after each piece. Returns
/// the number of input bytes.
pub fn gzip(
    src: impl Read + Send,
    dst: &mut impl Write,
    level: u32,
    threads: usize,
    mut progress: impl FnMut(u64),
) -> io::Result<u64> {
    let threads = threads.max(1);
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let job_rx = Mutex::new(job_rx);
    // Replies in input order; the bound keeps memory to a few pieces.
    let (order_tx, order_rx) = sync_channel::<Receiver<io::Result<Piece>>>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let job = job_rx.lock().expect("job lock").recv();
                let Ok(job) = job else { return };
                let piece = compress_piece(&job, level);
                // The writer may have given up; nothing to do then.
                let _ = job.reply.send(piece);
            });
        }
        let reader = s.spawn(move || -> io::Result<()> {
            let mut src = src;
            let mut cur = vec![0u8; CHUNK];
            let mut n = read_full(&mut src, &mut cur)?;
            cur.truncate(n);
            let mut dict: Vec<u8> = Vec::new();
            loop {
                let mut next = vec![0u8; CHUNK];
                let m = if n == CHUNK {
                    read_full(&mut src, &mut next)?
                } else {
                    0
                };
                next.truncate(m);
                let last = m == 0;
                let next_dict = cur[cur.len().saturating_sub(WINDOW)..].to_vec();
                let (reply, rx) = sync_channel(1);
                if order_tx.send(rx).is_err() {
                    return Ok(());
                }
                let job = Job {
                    data: cur,
                    dict,
                    last,
                    reply,
                };
                if job_tx.send(job).is_err() {
                    return Ok(());
                }
                if last {
                    return Ok(());
                }
                dict = next_dict;
                cur = next;
                n = m;
            }
        });
        let written = (|| -> io::Result<(u64, u32)> {
            let order_rx = order_rx;
            dst.write_all(&HEADER)?;
            let mut crc = Crc::new();
            let mut n: u64 = 0;
            for rx in order_rx.iter() {
                let piece = rx
                    .recv()
                    .map_err(|_| io::Error::other("a compression thread stopped"))??;
                dst.write_all(&piece.bytes)?;
                crc.combine(&piece.crc);
                n += piece.len;
                progress(n);
            }
            Ok((n, crc.finalize()))
        })();
        // The replies ended: the input is done, or reading it failed.
        reader.join().expect("reader thread")?;
        let (n, sum) = written?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&sum.to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952 2.3.1).
        trailer[4..].copy_from_slice(&(n as u32).to_le_bytes());
        dst.write_all(&trailer)?;
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    /// Text-like bytes (compressible) with a stretch of noise in the middle.
    fn sample_input(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        while v.len() < len {
            if v.len() > len / 3 && v.len() < len / 2 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.extend_from_slice(format!("line {} of a layer\n", v.len() % 977).as_bytes());
            }
        }
        v.truncate(len);
        v
    }

    fn run(data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let n = gzip(data, &mut out, 6, threads, |_| {}).unwrap();
        assert_eq!(n, data.len() as u64);
        out
    }

    #[test]
    fn round_trips_and_is_deterministic_across_thread_counts() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let data = sample_input(len);
            let one = run(&data, 1);
            assert_eq!(gunzip(&one), data, "len {len}");
            for t in [2, 4] {
                assert_eq!(run(&data, t), one, "len {len}, {t} threads");
            }
            if len > 4 * SAMPLE {
                assert!(one.len() < data.len(), "len {len}: {} bytes", one.len());
            }
        }
    }

    #[test]
    fn header_has_no_timestamp_and_trailer_is_crc_and_size() {
        let data = sample_input(100_000);
        let out = run(&data, 2);
        assert_eq!(out[..10], HEADER);
        let mut crc = Crc::new();
        crc.update(&data);
        let tail = &out[out.len() - 8..];
        assert_eq!(tail[..4], crc.finalize().to_le_bytes());
        assert_eq!(tail[4..], (data.len() as u32).to_le_bytes());
    }

    #[test]
    fn incompressible_pieces_are_stored() {
        let mut data = vec![0u8; 2 * CHUNK];
        let mut x: u64 = 1;
        for b in data.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        let out = run(&data, 2);
        assert_eq!(gunzip(&out), data);
        // Stored blocks: 5 bytes of framing per 64 KiB, plus header/trailer.
        assert!(out.len() < data.len() + data.len() / 1000, "{}", out.len());
    }

    /// Random 4 KiB "files" behind 512-byte mostly zero "headers", as in a
    /// tar of small random files: a little compressible, all in zero runs.
    fn random_files_with_headers(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut x: u64 = 7;
        while v.len() < len {
            let mut header = [0u8; 512];
            header[..12].copy_from_slice(b"opt/data/f01");
            v.extend_from_slice(&header);
            for _ in 0..4096 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v.push((x >> 56) as u8);
            }
        }
        v.truncate(len);
        v
    }

    #[test]
    fn pieces_are_planned_from_their_bytes() {
        let text = sample_input(CHUNK);
        assert_eq!(plan(&text), Plan::Full);
        let mixed = random_files_with_headers(CHUNK);
        assert_eq!(plan(&mixed), Plan::Runs);
        let mut noise = vec![0u8; CHUNK];
        let mut x: u64 = 3;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert_eq!(plan(&noise), Plan::Store);
        // Runs still finds the zero runs: the output is smaller than the
        // input by most of the header bytes, and it round-trips.
        let data = random_files_with_headers(3 * CHUNK);
        let out = run(&data, 2);
        assert_eq!(gunzip(&out), data);
        assert!(
            out.len() < data.len() - data.len() / 12,
            "{} of {}",
            out.len(),
            data.len()
        );
    }

    #[test]
    fn read_errors_are_reported() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'a');
                self.0 -= n;
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let err = gzip(Failing(3 * CHUNK + 5), &mut out, 6, 2, |_| {}).unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }
}
