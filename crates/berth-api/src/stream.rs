//! Bridges between async HTTP bodies and the blocking readers and writers
//! the backend works with.

use std::io::{self, Read, Write};

use axum::body::Body;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// A request body as a blocking reader. Use only inside `spawn_blocking`.
pub fn body_reader(body: Body) -> Box<dyn Read + Send> {
    let stream = body.into_data_stream().map_err(io::Error::other);
    let reader = StreamReader::new(stream);
    Box::new(SyncIoBridge::new(reader))
}

/// A blocking writer whose bytes become a streamed response body.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl ChannelWriter {
    pub fn new() -> (ChannelWriter, Body) {
        let (tx, rx) = mpsc::channel(16);
        (
            ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            },
            Body::from_stream(ReceiverStream::new(rx)),
        )
    }

    /// Ends the body with an error, so the client sees a truncated transfer
    /// rather than a well-formed but incomplete archive.
    pub fn fail(self, message: String) {
        let _ = self.tx.blocking_send(Err(io::Error::other(message)));
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A body of newline-separated JSON messages, as Docker's progress streams.
pub fn json_lines(messages: &[serde_json::Value]) -> Body {
    let mut out = Vec::new();
    for m in messages {
        serde_json::to_writer(&mut out, m).expect("json serializes");
        out.extend_from_slice(b"\r\n");
    }
    Body::from(out)
}
