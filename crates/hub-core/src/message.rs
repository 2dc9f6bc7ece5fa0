//! Messages, close frames and close codes.

use bytes::Bytes;
use std::fmt;

/// UTF-8 text backed by [`Bytes`], so clones share one buffer.
///
/// Construction validates UTF-8 once; afterwards every recipient of a broadcast shares the same
/// bytes without copying or re-validating them.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Bytes);

impl Text {
    /// Validates `bytes` as UTF-8.
    ///
    /// # Errors
    /// [`std::str::Utf8Error`] when the bytes are not valid UTF-8.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// Wraps bytes that the caller has already validated as UTF-8 (for example a text message
    /// that a WebSocket codec validated on receipt), without validating them again.
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8: [`Text::as_str`] relies on it.
    #[allow(unsafe_code)]
    pub unsafe fn from_bytes_unchecked(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text as a string slice.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor validates UTF-8 or takes it from a `str`, and
        // `from_bytes_unchecked` makes its caller promise it.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (cheap clone).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Consumes the text and returns its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<&'static str> for Message {
    fn from(s: &'static str) -> Self {
        Message::Text(Text(Bytes::from_static(s.as_bytes())))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(Text::from(s))
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Message::Binary(Bytes::from(v))
    }
}

impl From<Text> for Message {
    fn from(text: Text) -> Self {
        Message::Text(text)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// A data message: what handlers receive and what `send`/`broadcast` deliver.
///
/// Both variants are reference-counted: cloning a message for a thousand recipients copies no
/// payload.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message (WebSocket opcode 0x1).
    Text(Text),
    /// A binary message (WebSocket opcode 0x2).
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Text>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Message::Binary(bytes.into())
    }

    /// The payload bytes, whatever the kind.
    pub fn payload(&self) -> &Bytes {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }

    /// The text, when this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Message::Binary(b) => f.debug_tuple("Binary").field(&b.len()).finish(),
        }
    }
}

/// A WebSocket close code (RFC 6455 §7.4) with the codes the hub uses named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away; sent to every client on [`Hub::shutdown`](crate::Hub::shutdown) and
    /// when the keepalive gives up on a peer.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error (e.g. an unmasked client frame, a control frame over 125 bytes).
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1007: a text message that is not valid UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation; the hub sends it when it evicts a slow client.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message over the hub's `max_message_size`.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: unexpected server condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1013: try again later; the hub sends it to a connection over
    /// [`HubConfig::max_connections`](crate::HubConfig::max_connections) that raced past the
    /// upgrade's check.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

/// A close frame: a code and a short UTF-8 reason (at most 123 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code.
    pub code: CloseCode,
    /// The reason; truncated to 123 bytes on a character boundary when sent.
    pub reason: Text,
}

impl CloseFrame {
    /// A close frame; the reason is truncated to the 123 bytes a close frame can carry.
    pub fn new(code: impl Into<CloseCode>, reason: &str) -> Self {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            code: code.into(),
            reason: Text::from(&reason[..end]),
        }
    }

    pub(crate) fn from_static(code: CloseCode, reason: &'static str) -> Self {
        Self {
            code,
            reason: Text(Bytes::from_static(reason.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_truncates_on_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let frame = CloseFrame::new(1000, &long);
        assert!(frame.reason.len() <= 123);
        assert_eq!(frame.reason.len() % 2, 0);
    }

    #[test]
    fn text_rejects_invalid_utf8() {
        assert!(Text::from_bytes(Bytes::from_static(&[0xff, 0xfe])).is_err());
        assert_eq!(
            Text::from_bytes(Bytes::from_static(b"ok")).map(|t| t.len()),
            Ok(2)
        );
    }

    #[test]
    fn clone_shares_payload() {
        let m = Message::text(String::from("hello"));
        let c = m.clone();
        assert_eq!(m.payload().as_ptr(), c.payload().as_ptr());
    }
}
