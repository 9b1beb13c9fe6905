//! Docker's `json-file` log format, written by the shim as the container
//! produces output.
//!
//! Each line the container writes becomes one JSON object on its own line:
//! `{"log":"hi\n","stream":"stdout","time":"2026-11-27T19:13:38.449520929Z"}`.
//! A line longer than [`MAX_LINE`] is cut into partial entries without the
//! trailing newline, as Docker does; a last unterminated line is written
//! when the stream closes. With a tty everything is `stdout`.
//!
//! Rotation follows Docker's `max-size` / `max-file`: when writing an entry
//! would push the file past `max_size`, `FILE.(n-2)` → `FILE.(n-1)` …
//! `FILE` → `FILE.1` and a new `FILE` is started.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::protocol::StreamType;

/// Partial-line threshold: Docker's json-file buffers up to 16 KiB per line.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// Go's `time.RFC3339Nano`: nanoseconds with trailing zeros dropped.
pub fn format_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // "...:SS.nnnnnnnnnZ": trim zeros of the fraction, and the dot if empty.
    let body = &s[..s.len() - 1];
    let body = match body.rfind('.') {
        Some(dot) => {
            let trimmed = body.trim_end_matches('0');
            if trimmed.len() == dot + 1 {
                &body[..dot]
            } else {
                trimmed
            }
        }
        None => body,
    };
    format!("{body}Z")
}

/// The json-file writer with rotation.
pub struct JsonFileLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
}

impl JsonFileLog {
    pub fn open(path: &Path, max_size: u64, max_file: u32) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonFileLog {
            path: path.to_owned(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
        })
    }

    /// Write one entry (a line with its newline, or a partial line).
    pub fn write_entry(
        &mut self,
        stream: StreamType,
        data: &[u8],
        time: DateTime<Utc>,
    ) -> io::Result<()> {
        let text = String::from_utf8_lossy(data);
        let time = format_time(time);
        let mut line = serde_json::to_vec(&Entry {
            log: &text,
            stream: stream.log_name(),
            time: &time,
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        // Oldest first so nothing is overwritten before it moved.
        for n in (1..self.max_file - 1).rev() {
            match fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Cuts one stream's bytes into log entries.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Add bytes; call `emit` for every complete line (newline included)
    /// and for every [`MAX_LINE`]-sized piece of an overlong line.
    pub fn push(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.emit_with_pending(&data[..=i], emit);
                    data = &data[i + 1..];
                }
                None if window.len() == room => {
                    self.emit_with_pending(window, emit);
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = &[];
                }
            }
        }
    }

    fn emit_with_pending(&mut self, tail: &[u8], emit: &mut dyn FnMut(&[u8])) {
        if self.pending.is_empty() {
            emit(tail);
        } else {
            self.pending.extend_from_slice(tail);
            emit(&self.pending);
            self.pending.clear();
        }
    }

    /// Emit what is left (the stream closed mid-line).
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\nd"]),
            vec![
                b"a\n".to_vec(),
                b"bc\n".to_vec(),
                b"\n".to_vec(),
                b"d".to_vec()
            ]
        );
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn cuts_overlong_lines() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input[..100], &input[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2].len(), 11);
        assert_eq!(out.concat(), input);
    }

    #[test]
    fn time_looks_like_go_rfc3339nano() {
        let t: DateTime<Utc> = "2026-11-27T19:13:38.449520929Z".parse().unwrap();
        assert_eq!(format_time(t), "2026-11-27T19:13:38.449520929Z");
        let t: DateTime<Utc> = "2026-11-27T19:13:38.4495Z".parse().unwrap();
        assert_eq!(format_time(t), "2026-11-27T19:13:38.4495Z");
        let t: DateTime<Utc> = "2026-11-27T19:13:38Z".parse().unwrap();
        assert_eq!(format_time(t), "2026-11-27T19:13:38Z");
    }

    #[test]
    fn writes_docker_entries_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let t: DateTime<Utc> = "2026-11-27T19:13:38.449520929Z".parse().unwrap();
        let mut log = JsonFileLog::open(&path, 200, 3).unwrap();
        log.write_entry(StreamType::Stdout, b"hi\n", t).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T19:13:38.449520929Z\"}\n"
        );
        for i in 0..20 {
            log.write_entry(StreamType::Stderr, format!("line {i}\n").as_bytes(), t)
                .unwrap();
        }
        let sizes: Vec<u64> = ["", ".1", ".2"]
            .iter()
            .map(|s| {
                fs::metadata(format!("{}{s}", path.display()))
                    .unwrap()
                    .len()
            })
            .collect();
        assert!(sizes.iter().all(|s| *s > 0 && *s <= 200), "{sizes:?}");
        assert!(!Path::new(&format!("{}.3", path.display())).exists());
        let newest = fs::read_to_string(&path).unwrap();
        assert!(newest.contains("line 19"), "{newest}");
        let older = fs::read_to_string(format!("{}.1", path.display())).unwrap();
        assert!(!older.contains("line 19"));
    }

    #[test]
    fn single_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let mut log = JsonFileLog::open(&path, 100, 1).unwrap();
        for _ in 0..5 {
            log.write_entry(StreamType::Stdout, b"0123456789\n", Utc::now())
                .unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() <= 100);
        assert!(!Path::new(&format!("{}.1", path.display())).exists());
    }
}
