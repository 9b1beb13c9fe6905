//! Docker's JSON message streams (import, load, pull): one JSON object per
//! message, shown the way `jsonmessage.DisplayJSONMessagesStream` shows them
//! when stdout is not a terminal. An `error`/`errorDetail` message ends the
//! stream with an [`ApiError`].

use anyhow::Result;
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use crate::error::ApiError;

/// Incremental splitter of concatenated JSON values.
#[derive(Default)]
pub struct JsonMessages {
    buf: BytesMut,
}

impl JsonMessages {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns every complete value buffered so far.
    pub fn drain(&mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut iter = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        let consumed = loop {
            let before = iter.byte_offset();
            match iter.next() {
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) if e.is_eof() => break before,
                Some(Err(e)) => {
                    return Err(anyhow::anyhow!("malformed message from the engine: {e}"))
                }
                None => break iter.byte_offset(),
            }
        };
        self.buf.advance(consumed);
        Ok(out)
    }

    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

/// Renders one message; `Ok(None)` for messages not shown (progress bars,
/// aux), `Err` for error messages.
pub fn render_message(m: &Value) -> Result<Option<String>, ApiError> {
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
    let detail = m
        .get("errorDetail")
        .and_then(|d| d.get("message"))
        .and_then(Value::as_str);
    if detail.is_some() || !s("error").is_empty() {
        let code = m
            .get("errorDetail")
            .and_then(|d| d.get("code"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let message = detail
            .filter(|d| !d.is_empty())
            .unwrap_or(s("error"))
            .to_string();
        return Err(ApiError {
            status: code as u16,
            message,
        });
    }
    if m.get("aux").is_some() {
        return Ok(None);
    }
    let has_progress = !s("progress").is_empty()
        || m.get("progressDetail")
            .and_then(Value::as_object)
            .is_some_and(|d| d.values().any(|x| !x.is_null()));
    if has_progress {
        return Ok(None);
    }
    let mut line = String::new();
    if !s("id").is_empty() {
        line.push_str(s("id"));
        line.push_str(": ");
    }
    if !s("from").is_empty() {
        line.push_str(&format!("(from {}) ", s("from")));
    }
    if !s("stream").is_empty() {
        line.push_str(s("stream"));
    } else {
        line.push_str(s("status"));
        line.push('\n');
    }
    Ok(Some(line))
}

/// Reads a JSON message stream from a response body, printing as it goes.
pub async fn display(mut body: Incoming) -> Result<()> {
    let mut msgs = JsonMessages::default();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            msgs.push(data);
            for m in msgs.drain()? {
                if let Some(line) = render_message(&m)? {
                    crate::cmd::emit(&line)?;
                }
            }
        }
    }
    if !msgs.leftover().iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!("the engine's message stream ended in the middle of a message");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_values_across_chunks() {
        let mut m = JsonMessages::default();
        m.push(br#"{"stream":"Loaded image: a\n"}{"sta"#);
        assert_eq!(
            m.drain().unwrap(),
            vec![json!({"stream": "Loaded image: a\n"})]
        );
        m.push(b"tus\":\"sha256:abc\"}\r\n");
        assert_eq!(m.drain().unwrap(), vec![json!({"status": "sha256:abc"})]);
        assert!(m.leftover().iter().all(u8::is_ascii_whitespace));
    }

    #[test]
    fn renders_like_jsonmessage() {
        assert_eq!(
            render_message(&json!({"status": "sha256:abc"}))
                .unwrap()
                .unwrap(),
            "sha256:abc\n"
        );
        assert_eq!(
            render_message(&json!({"stream": "Loaded image: a\n"}))
                .unwrap()
                .unwrap(),
            "Loaded image: a\n"
        );
        assert_eq!(
            render_message(&json!({"id": "l1", "status": "Done"}))
                .unwrap()
                .unwrap(),
            "l1: Done\n"
        );
        assert_eq!(
            render_message(
                &json!({"id": "l1", "status": "Loading", "progressDetail": {"current": 1}})
            )
            .unwrap(),
            None
        );
        let e = render_message(&json!({"errorDetail": {"message": "bad tar"}, "error": "bad tar"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "Error response from daemon: bad tar");
    }
}
