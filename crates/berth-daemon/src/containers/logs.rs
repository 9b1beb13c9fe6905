//! Reading the json-file logs the shim writes (`<id>-json.log`, rotated to
//! `.1`, `.2`, …): Docker's `{"log","stream","time"}` lines, filtered by
//! stream, time and tail, framed for the API, optionally followed.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_shim::protocol::{frame_header, StreamType};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use super::Snapshot;

#[derive(Debug, Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    pub tail: Option<usize>,
    pub tty: bool,
}

/// Docker's stream framing (the shim's `frame_header`) and the payload.
fn frame(stream: StreamType, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&frame_header(stream, payload.len() as u32));
    v.extend_from_slice(payload);
    v.into()
}

fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(path.to_path_buf());
    files
}

fn nanos(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Turns one json-file line into its frame, or `None` when filtered out.
pub(crate) fn render(f: &Filter, raw: &str) -> Option<Bytes> {
    let line: Line = serde_json::from_str(raw).ok()?;
    let stream = if line.stream == "stderr" {
        StreamType::Stderr
    } else {
        StreamType::Stdout
    };
    if (stream == StreamType::Stdout && !f.stdout) || (stream == StreamType::Stderr && !f.stderr) {
        return None;
    }
    let t = nanos(&line.time);
    if f.since.is_some_and(|s| t < s) || f.until.is_some_and(|u| t > u) {
        return None;
    }
    let mut payload = Vec::new();
    if f.timestamps {
        payload.extend_from_slice(line.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(line.log.as_bytes());
    Some(if f.tty {
        Bytes::from(payload)
    } else {
        frame(stream, &payload)
    })
}

/// Streams the log on the current thread (call from a blocking task) until
/// it is read, or with `follow` until the container stops and the file is
/// drained, or the receiver goes away.
pub fn stream(
    path: &Path,
    filter: Filter,
    follow: bool,
    mut status: watch::Receiver<Snapshot>,
    tx: mpsc::Sender<Bytes>,
) {
    let files = rotated(path);
    let mut lines: Vec<String> = Vec::new();
    let mut last_pos = 0u64;
    // Read what exists; `tail` needs all of it before emitting.
    for (i, file) in files.iter().enumerate() {
        let Ok(f) = File::open(file) else { continue };
        let mut r = BufReader::new(f);
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) if buf.ends_with('\n') => lines.push(buf.trim_end_matches('\n').to_string()),
                Ok(_) => break,
                Err(_) => break,
            }
            if i == files.len() - 1 {
                last_pos = r.stream_position().unwrap_or(last_pos);
            }
        }
    }
    let mut selected: Vec<Bytes> = lines.iter().filter_map(|l| render(&filter, l)).collect();
    if let Some(n) = filter.tail {
        let skip = selected.len().saturating_sub(n);
        selected.drain(..skip);
    }
    for b in selected {
        if tx.blocking_send(b).is_err() {
            return;
        }
    }
    if !follow {
        return;
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(_) => return,
    };
    let _ = file.seek(SeekFrom::Start(last_pos));
    let mut reader = BufReader::new(file);
    let mut partial = String::new();
    loop {
        let mut buf = String::new();
        match reader.read_line(&mut buf) {
            Ok(0) => {
                let snap = *status.borrow_and_update();
                if !snap.status.is_running() || snap.removed {
                    return;
                }
                // Rotation: the file we hold was renamed; reopen the new one.
                let cur_len = reader.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
                let disk_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                if disk_len < cur_len
                    || std::fs::metadata(path)
                        .map(|m| same_file(&m, reader.get_ref()))
                        .ok()
                        == Some(false)
                {
                    if let Ok(f) = File::open(path) {
                        reader = BufReader::new(f);
                        continue;
                    }
                }
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(_) => {
                partial.push_str(&buf);
                if !partial.ends_with('\n') {
                    continue;
                }
                let line = std::mem::take(&mut partial);
                if let Some(b) = render(&filter, line.trim_end_matches('\n')) {
                    if tx.blocking_send(b).is_err() {
                        return;
                    }
                }
            }
            Err(_) => return,
        }
    }
}

fn same_file(m: &std::fs::Metadata, f: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    f.metadata()
        .map(|fm| fm.ino() == m.ino() && fm.dev() == m.dev())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> Filter {
        Filter {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            timestamps: false,
            tail: None,
            tty: false,
        }
    }

    #[test]
    fn renders_multiplexed_frames_and_filters() {
        let l = r#"{"log":"hi\n","stream":"stderr","time":"2026-11-27T19:00:00.5Z"}"#;
        let b = render(&filter(), l).unwrap();
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&b[8..], b"hi\n");
        assert!(render(
            &Filter {
                stderr: false,
                ..filter()
            },
            l
        )
        .is_none());
        let ts = render(
            &Filter {
                timestamps: true,
                tty: true,
                ..filter()
            },
            l,
        )
        .unwrap();
        assert_eq!(&ts[..], b"2026-11-27T19:00:00.5Z hi\n");
        let late = nanos("2026-11-27T19:00:01Z");
        assert!(render(
            &Filter {
                since: Some(late),
                ..filter()
            },
            l
        )
        .is_none());
    }
}
