//! A deliberately small HTTP/1.1 client over a unix socket, enough to talk to the Engine API
//! the way any client would: one request per connection (`Connection: close`), bodies framed
//! by Content-Length or chunked transfer encoding.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body_str()))
    }
}

fn connect(socket: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

fn head(method: &str, path: &str, headers: &[(&str, &str)], framing: &str) -> String {
    let mut h =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: berth-tests\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(framing);
    h.push_str("Connection: close\r\n\r\n");
    h
}

/// Send one request and read the whole response (2 minute timeout per read).
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> io::Result<Response> {
    let mut s = connect(socket, Duration::from_secs(120))?;
    let framing = match body {
        Some(b) => {
            let ct = if headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                String::new()
            } else {
                "Content-Type: application/json\r\n".to_string()
            };
            format!("{ct}Content-Length: {}\r\n", b.len())
        }
        None if method == "POST" || method == "PUT" => "Content-Length: 0\r\n".to_string(),
        None => String::new(),
    };
    s.write_all(head(method, path, headers, &framing).as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let mut body = vec![];
    if method != "HEAD" && status != 204 && status != 304 {
        body_reader(r, &headers).read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn read_head<R: BufRead>(r: &mut R) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let mut headers = vec![];
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in response headers",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn body_reader<R: BufRead + 'static>(r: R, headers: &[(String, String)]) -> Box<dyn Read> {
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        Box::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        })
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Box::new(r.take(n))
    } else {
        Box::new(r)
    }
}

/// Decoder for `Transfer-Encoding: chunked`.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "eof in chunk size",
                ));
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {line:?}"),
                )
            })?;
            if self.left == 0 {
                // Trailers, then the final CRLF.
                loop {
                    line.clear();
                    if self.inner.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in chunk"));
        }
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

/// A streaming response (e.g. `/events`): status and headers read, body read line by line.
pub struct Stream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: BufReader<Box<dyn Read>>,
    /// Bytes of a line not yet complete when a read timed out.
    partial: Vec<u8>,
}

impl Stream {
    /// Next newline-terminated line of the body. Errors with `WouldBlock`/`TimedOut` when
    /// nothing arrives within the read timeout given to [`open_stream`]; a partly received
    /// line is kept and completed by a later call.
    pub fn next_line(&mut self) -> io::Result<Option<String>> {
        let n = self.body.read_until(b'\n', &mut self.partial)?;
        if n == 0 && self.partial.is_empty() {
            return Ok(None);
        }
        if n != 0 && !self.partial.ends_with(b"\n") {
            // EOF in the middle of a line cannot happen with n != 0 unless more may follow.
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "partial line"));
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Ok(Some(line))
    }
}

/// Send a bodiless request and return the response as a stream; each read waits at most
/// `read_timeout`.
pub fn open_stream(
    socket: &Path,
    method: &str,
    path: &str,
    read_timeout: Duration,
) -> io::Result<Stream> {
    let mut s = connect(socket, read_timeout)?;
    s.write_all(head(method, path, &[], "").as_bytes())?;
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let body = BufReader::new(body_reader(r, &headers));
    Ok(Stream {
        status,
        headers,
        body,
        partial: Vec::new(),
    })
}

/// A request whose body is sent in pieces with chunked transfer encoding, so the caller
/// decides when (and whether) the body ends.
pub struct Upload {
    stream: UnixStream,
    pub sent: u64,
}

impl Upload {
    pub fn start(
        socket: &Path,
        method: &str,
        path: &str,
        content_type: &str,
    ) -> io::Result<Upload> {
        let mut stream = connect(socket, Duration::from_secs(60))?;
        let ct = [("Content-Type", content_type)];
        stream.write_all(head(method, path, &ct, "Transfer-Encoding: chunked\r\n").as_bytes())?;
        Ok(Upload { stream, sent: 0 })
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.stream
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
        self.stream.write_all(data)?;
        self.stream.write_all(b"\r\n")?;
        self.sent += data.len() as u64;
        Ok(())
    }

    /// End the body and read the response.
    pub fn finish(mut self) -> io::Result<Response> {
        self.stream.write_all(b"0\r\n\r\n")?;
        self.stream
            .set_read_timeout(Some(Duration::from_secs(600)))?;
        let mut r = BufReader::new(self.stream);
        let (status, headers) = read_head(&mut r)?;
        let mut body = vec![];
        body_reader(r, &headers).read_to_end(&mut body)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}
