//! Pulls that meet trouble: a connection cut in the middle of a layer (the
//! client resumes with `Range`, or starts over when the server ignores it)
//! and a data-root that fills up (the error names ENOSPC and nothing
//! half-written stays behind).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use berth_registry::AuthConfig;
use common::registry::Registry;
use common::TestDaemon;

/// What the fault-injecting proxy observed.
#[derive(Default)]
struct Seen {
    /// A request carried `Range: bytes=…`.
    range_request: AtomicBool,
    /// A response was `206 Partial Content`.
    partial_response: AtomicBool,
    /// The one cut has happened.
    cut: AtomicBool,
    /// Bytes relayed from the registry to the client, in total.
    relayed: AtomicU64,
}

/// A TCP proxy in front of a registry that cuts the first connection whose
/// download passes `cut_after` bytes (once), and with `strip_range` removes
/// `Range` headers from requests, playing a server that ignores them.
struct FaultProxy {
    addr: String,
    seen: Arc<Seen>,
}

impl FaultProxy {
    fn start(upstream: String, cut_after: u64, strip_range: bool) -> FaultProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        // The listener thread ends with the test process.
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { return };
                let (up, s) = (upstream.clone(), s.clone());
                std::thread::spawn(move || relay(client, &up, cut_after, strip_range, &s));
            }
        });
        FaultProxy { addr, seen }
    }
}

fn relay(client: TcpStream, upstream: &str, cut_after: u64, strip_range: bool, seen: &Seen) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    // Requests of a pull are GETs and HEADs without bodies: forward them
    // header block by header block, looking at (and maybe dropping) Range.
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let seen_range = |v: bool| {
        if v {
            seen.range_request.store(true, Ordering::SeqCst)
        }
    };
    let up = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = match c_in.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head: Vec<u8> = buf.drain(..end + 4).collect();
                    let text = String::from_utf8_lossy(&head).to_string();
                    let mut out = String::new();
                    for line in text.split_inclusive("\r\n") {
                        let is_range = line.to_ascii_lowercase().starts_with("range:");
                        seen_range(is_range && line.contains("bytes="));
                        if !(is_range && strip_range) {
                            out.push_str(line);
                        }
                    }
                    if s_out.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                }
            }
            let _ = s_out.shutdown(Shutdown::Write);
        });
        let (mut s_in, mut c_out) = (server.try_clone().unwrap(), client.try_clone().unwrap());
        let mut total: u64 = 0;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = match s_in.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if chunk[..n].windows(13).any(|w| w == b"HTTP/1.1 206 ") {
                seen.partial_response.store(true, Ordering::SeqCst);
            }
            let mut send = n;
            let cut = total + n as u64 > cut_after && !seen.cut.swap(true, Ordering::SeqCst);
            if cut {
                send = (cut_after - total) as usize;
            }
            if c_out.write_all(&chunk[..send]).is_err() {
                break;
            }
            total += send as u64;
            seen.relayed.fetch_add(send as u64, Ordering::SeqCst);
            if cut {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        total
    });
    let _ = up;
}

/// A rootfs tar holding one file of `size` bytes: pseudo-random
/// (incompressible) or zeros (compresses to almost nothing).
fn one_file_tar(path: &Path, size: usize, random: bool) {
    let mut data = vec![0u8; size];
    if random {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
        for b in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
    }
    let f = std::fs::File::create(path).unwrap();
    let mut t = tar::Builder::new(f);
    let mut h = tar::Header::new_gnu();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, "data.bin", &data[..]).unwrap();
    t.finish().unwrap();
}

/// Pushes an image of one `size`-byte file to `reg` as `NAME:latest`;
/// returns the image ID.
fn seed(reg: &Registry, name: &str, size: usize, random: bool) -> String {
    let dir = common::scratch();
    let tar = dir.path().join("rootfs.tar");
    one_file_tar(&tar, size, random);
    let d = TestDaemon::builder().start();
    let id = d.import(&tar, "seed:latest");
    let remote = format!("{}/{name}:latest", reg.host());
    d.berth_ok(&["tag", "seed:latest", &remote]);
    d.berth_ok(&["push", &remote]);
    id
}

fn ok(o: common::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        o.stdout_str(),
        o.stderr
    );
    o.stdout_str()
}

const MIB: usize = 1 << 20;

#[test]
fn broken_layer_download_resumes_with_range() {
    let reg = Registry::start(|_| AuthConfig::None);
    let id = seed(&reg, "big", 32 * MIB, true);

    // The registry honours Range: the client resumes where the cut was.
    let proxy = FaultProxy::start(reg.host(), 6 * MIB as u64, false);
    let d = TestDaemon::builder().short().start();
    let name = format!("{}/big:latest", proxy.addr);
    let written = daemon_written(&d);
    ok(d.berth_out(&["pull", &name], None), "pull through the cut");
    // What the daemon wrote: the layer's tar (the diff ID's blob) and its
    // unpacked file, 32 MiB each; the compressed stream was only hashed on
    // its way to the unpacker (it would be a third 32 MiB).
    let written = daemon_written(&d) - written;
    assert!(
        written < 80 * MIB as u64,
        "the daemon wrote {written} bytes for a 32 MiB layer"
    );
    assert!(proxy.seen.cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(
        proxy.seen.range_request.load(Ordering::SeqCst),
        "no Range request after the cut"
    );
    assert!(proxy.seen.partial_response.load(Ordering::SeqCst), "no 206");
    // Resumed, not restarted: well under two copies of the layer crossed.
    let relayed = proxy.seen.relayed.load(Ordering::SeqCst);
    assert!(relayed < 40 * MIB as u64, "{relayed} bytes relayed");
    // Same image ID: the same diff IDs, so the same bytes unpacked.
    assert_eq!(d.image_id(&name), id);
    // The resumed stream stayed one unbroken stream into the unpacker: no
    // second unpack from a kept copy of the compressed blob.
    assert!(
        !d.log().contains("unpacking the verified blob"),
        "a resumed download fell back to a kept blob"
    );
    assert_no_pull_leftovers(&d);
    drop(d);

    // A server that ignores Range (answers 200): the client starts over.
    let proxy = FaultProxy::start(reg.host(), 6 * MIB as u64, true);
    let d = TestDaemon::builder().short().start();
    let name = format!("{}/big:latest", proxy.addr);
    ok(
        d.berth_out(&["pull", &name], None),
        "pull with Range ignored",
    );
    assert!(proxy.seen.cut.load(Ordering::SeqCst), "the proxy never cut");
    assert!(proxy.seen.range_request.load(Ordering::SeqCst));
    assert!(!proxy.seen.partial_response.load(Ordering::SeqCst));
    assert!(
        d.log().contains("registry ignored Range"),
        "the client did not notice the 200"
    );
    // The unpacker had seen the first bytes twice: its result was dropped
    // and the verified blob, kept from the restart on, unpacked instead.
    assert!(
        d.log().contains("unpacking the verified blob"),
        "the broken stream's unpack result was used"
    );
    assert_eq!(d.image_id(&name), id);
    assert_no_pull_leftovers(&d);
}

/// Bytes the daemon has passed to write(2) and friends (`wchar` in
/// /proc/PID/io).
fn daemon_written(d: &TestDaemon) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{}/io", d.pid())).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wchar in /proc/PID/io:\n{io}"))
}

/// Nothing of a finished pull stays in the ingest or the scratch area.
fn assert_no_pull_leftovers(d: &TestDaemon) {
    let ingest = common::files_under(&d.data_root.join("content/ingest"));
    assert!(ingest.is_empty(), "ingest not empty: {ingest:?}");
    let tmp = common::files_under(&d.data_root.join("tmp"));
    assert!(tmp.is_empty(), "scratch files left: {tmp:?}");
}

#[test]
fn pull_onto_a_full_disk_names_enospc() {
    let reg = Registry::start(|_| AuthConfig::None);
    // 40 MiB of random bytes: the download itself does not fit.
    let big = seed(&reg, "random", 40 * MIB, true);
    // 64 MiB of zeros: a tiny download whose unpacking does not fit.
    let zeros = seed(&reg, "zeros", 64 * MIB, false);
    let _ = (big, zeros);

    let d = TestDaemon::builder()
        .short()
        .prepare(|root| {
            let st = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
                .arg(root)
                .status()
                .unwrap();
            assert!(st.success(), "mount tmpfs on {}", root.display());
        })
        .start();
    for name in ["random", "zeros"] {
        let reference = format!("{}/{name}:latest", reg.host());
        let o = d.berth_out(&["pull", &reference], None);
        assert!(!o.status.success(), "pull of {name} onto 24 MiB succeeded");
        assert!(
            o.stderr.to_lowercase().contains("no space left on device"),
            "{name}: the error does not name ENOSPC:\n{}",
            o.stderr
        );
        eprintln!("{name}: {}", o.stderr.trim());
        // A failed pull left no image.
        d.berth_must_fail(
            &["image", "inspect", &reference],
            1,
            &[&format!("No such image: {reference}")],
        );
    }
    let images = d.berth_ok(&["images", "-q"]);
    assert!(
        images.trim().is_empty(),
        "images after failed pulls: {images}"
    );
    let ingest = common::files_under(&d.data_root.join("content/ingest"));
    assert!(ingest.is_empty(), "ingest not empty: {ingest:?}");
    let tmp = common::files_under(&d.data_root.join("tmp"));
    assert!(tmp.is_empty(), "scratch files left: {tmp:?}");
    // The failures gave back what they had written.
    let out = String::from_utf8_lossy(
        &std::process::Command::new("df")
            .arg(&d.data_root)
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    let used: u64 = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        used < 8 * 1024,
        "{used} KiB still used on the data-root:\n{out}"
    );
}

#[test]
fn kill9_during_a_pull_leaves_nothing_and_the_pull_redoes() {
    let reg = Registry::start(|_| AuthConfig::None);
    let id = seed(&reg, "crashy", 32 * MIB, true);
    // The cut stalls the download (the client waits before resuming): the
    // daemon is killed while the layer is half downloaded and half unpacked.
    let proxy = FaultProxy::start(reg.host(), 8 * MIB as u64, false);
    let mut d = TestDaemon::builder().short().start();
    let name = format!("{}/crashy:latest", proxy.addr);
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", &d.host(), "pull", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !proxy.seen.cut.load(Ordering::SeqCst) {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the pull never reached the cut"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let staged = common::files_under(&d.data_root.join("snapshots"));
    d.kill9();
    let _ = cli.wait();
    assert!(
        !staged.is_empty(),
        "nothing was being unpacked at the kill (the test missed its window)"
    );

    d.restart();
    assert!(
        d.image_ids().is_empty(),
        "images after the kill: {:?}",
        d.image_ids()
    );
    assert_no_pull_leftovers(&d);
    let blobs = common::files_under(&d.data_root.join("content/blobs"));
    assert!(blobs.is_empty(), "blobs after the kill: {blobs:?}");
    let snapshots = common::files_under(&d.data_root.join("snapshots"));
    assert!(
        snapshots.is_empty(),
        "snapshot files after the kill: {snapshots:?}"
    );

    // The same pull now completes, with the same image.
    let proxy = FaultProxy::start(reg.host(), u64::MAX, false);
    let name = format!("{}/crashy:latest", proxy.addr);
    ok(d.berth_out(&["pull", &name], None), "pull after the kill");
    assert_eq!(d.image_id(&name), id);
    assert_no_pull_leftovers(&d);
}
