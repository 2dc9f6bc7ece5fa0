//! The injection-proof event encoder.
//!
//! Every field the caller did not ask for is impossible to produce:
//! - `data` is split on CR, LF and CRLF into one `data:` line each (the browser joins them
//!   with LF, so CR and CRLF arrive as LF: SSE has no way to carry a CR);
//! - each value is written after `": "`, so a leading space in the value survives (the parser
//!   strips exactly one);
//! - an `event` name or `id` containing CR, LF or NUL is refused with an error, never a panic;
//! - comments are split per line, each line starting with `:`.
//!
//! ```
//! use sse_core::Event;
//!
//! let bytes = Event::new()
//!     .event("update").unwrap()
//!     .id("7").unwrap()
//!     .data("line one\nline two\r\nevent: not a field")
//!     .to_bytes();
//! assert_eq!(
//!     &bytes[..],
//!     b"event: update\nid: 7\ndata: line one\ndata: line two\ndata: event: not a field\n\n"
//! );
//! assert!(Event::new().event("evil\nid: 1").is_err());
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use std::time::Duration;

/// Why an event could not be encoded. Nothing was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An `event` name or `id` contains CR, LF or NUL, which would forge or drop fields.
    /// Not retryable with the same value.
    #[error("SSE {field} must not contain CR, LF or NUL")]
    InvalidField {
        /// `"event"` or `"id"`.
        field: &'static str,
    },
}

fn check(field: &'static str, value: &str) -> Result<(), EncodeError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(EncodeError::InvalidField { field })
    } else {
        Ok(())
    }
}

/// Splits on CRLF, CR and LF, as the WHATWG parser does.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

pub(crate) fn put_field(buf: &mut BytesMut, name: &str, value: &str) {
    buf.reserve(name.len() + value.len() + 3);
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value.as_bytes());
    buf.put_u8(b'\n');
}

/// Writes `data` as one `data:` line per line of text.
pub(crate) fn put_data(buf: &mut BytesMut, data: &str) {
    for line in lines(data) {
        put_field(buf, "data", line);
    }
}

/// Writes a comment, one `:` line per line of text.
pub fn encode_comment(buf: &mut BytesMut, text: &str) {
    for line in lines(text) {
        buf.reserve(line.len() + 3);
        buf.put_slice(b": ");
        buf.put_slice(line.as_bytes());
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
}

/// Writes a `retry:` field (the browser's reconnection delay), in milliseconds.
pub fn encode_retry(buf: &mut BytesMut, retry: Duration) {
    put_field(buf, "retry", &retry.as_millis().to_string());
    buf.put_u8(b'\n');
}

/// One event: an optional name, id and retry, and data. Build it, then [`Event::to_bytes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    event: Option<String>,
    id: Option<String>,
    retry: Option<Duration>,
    data: String,
}

impl Event {
    /// An event of the default type (`message`) with empty data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the event name (`addEventListener(name, ..)` in the browser).
    ///
    /// # Errors
    /// [`EncodeError::InvalidField`] if `name` contains CR, LF or NUL.
    pub fn event(mut self, name: &str) -> Result<Self, EncodeError> {
        check("event", name)?;
        self.event = Some(name.to_string());
        Ok(self)
    }

    /// Sets the id (the browser sends it back as `Last-Event-ID` when it reconnects).
    ///
    /// # Errors
    /// [`EncodeError::InvalidField`] if `id` contains CR, LF or NUL.
    pub fn id(mut self, id: &str) -> Result<Self, EncodeError> {
        check("id", id)?;
        self.id = Some(id.to_string());
        Ok(self)
    }

    /// Sets the browser's reconnection delay.
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets the data to `text` (any text: line breaks become separate `data:` lines).
    pub fn data(mut self, text: &str) -> Self {
        self.data = text.to_string();
        self
    }

    /// Sets the data to `value` serialized as JSON (one line).
    ///
    /// # Errors
    /// The serializer's error if `value` cannot be serialized.
    pub fn json_data(mut self, value: &impl Serialize) -> Result<Self, serde_json::Error> {
        self.data = serde_json::to_string(value)?;
        Ok(self)
    }

    /// Appends the encoded event to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        if let Some(event) = &self.event {
            put_field(buf, "event", event);
        }
        if let Some(id) = &self.id {
            put_field(buf, "id", id);
        }
        if let Some(retry) = self.retry {
            put_field(buf, "retry", &retry.as_millis().to_string());
        }
        put_data(buf, &self.data);
        buf.put_u8(b'\n');
    }

    /// The encoded event.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.data.len() + 32);
        self.encode(&mut buf);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap_or_default()
    }

    #[test]
    fn line_endings_split_data() {
        let e = Event::new().data("a\rb\nc\r\nd\n\re");
        assert_eq!(
            s(e.to_bytes()),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n"
        );
    }

    #[test]
    fn leading_space_and_empty_data_survive() {
        assert_eq!(s(Event::new().data(" x").to_bytes()), "data:  x\n\n");
        assert_eq!(s(Event::new().to_bytes()), "data: \n\n");
    }

    #[test]
    fn forbidden_characters_in_names_and_ids_are_errors() {
        for bad in ["a\nb", "a\rb", "a\0b", "\n"] {
            assert_eq!(
                Event::new().event(bad),
                Err(EncodeError::InvalidField { field: "event" })
            );
            assert_eq!(
                Event::new().id(bad),
                Err(EncodeError::InvalidField { field: "id" })
            );
        }
    }

    #[test]
    fn comments_are_split_per_line() {
        let mut buf = BytesMut::new();
        encode_comment(&mut buf, "hi\ndata: forged\r\nid: 9");
        assert_eq!(s(buf.freeze()), ": hi\n: data: forged\n: id: 9\n\n");
    }
}
