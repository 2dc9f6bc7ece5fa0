//! What goes over the channel: `<id> <envelope>`, the id given by the publish script in
//! decimal; the envelope is version, the publishing node, the message's kind, its bytes.

use bytes::{BufMut, Bytes, BytesMut};
use hub_core::Message;

const VERSION: u8 = 1;
const TEXT: u8 = 1;
const BINARY: u8 = 2;

/// Encodes `message` as published by `node`.
pub(crate) fn encode(node: u64, message: &Message) -> Bytes {
    let (kind, payload): (u8, &[u8]) = match message {
        Message::Text(t) => (TEXT, t.as_bytes()),
        Message::Binary(b) => (BINARY, b),
    };
    let mut out = BytesMut::with_capacity(10 + payload.len());
    out.put_u8(VERSION);
    out.put_u64(node);
    out.put_u8(kind);
    out.put_slice(payload);
    out.freeze()
}

/// Decodes an envelope; `None` for anything malformed (a text that is not UTF-8 included).
pub(crate) fn decode(bytes: &[u8]) -> Option<(u64, Message)> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION || rest.len() < 9 {
        return None;
    }
    let node = u64::from_be_bytes(rest[..8].try_into().ok()?);
    let payload = &rest[9..];
    let message = match rest[8] {
        TEXT => Message::from(std::str::from_utf8(payload).ok()?.to_string()),
        BINARY => Message::from(Bytes::copy_from_slice(payload)),
        _ => return None,
    };
    Some((node, message))
}

/// Splits a channel message into its id and envelope.
pub(crate) fn split_id(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let space = bytes.iter().position(|b| *b == b' ')?;
    let id = std::str::from_utf8(&bytes[..space]).ok()?.parse().ok()?;
    Some((id, &bytes[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        for message in [Message::from("héllo"), Message::from(vec![0u8, 255, 7])] {
            let bytes = encode(42, &message);
            assert_eq!(decode(&bytes), Some((42, message)));
        }
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&[9; 20]), None); // unknown version
        let mut bad_text = encode(1, &Message::from("x")).to_vec();
        bad_text.push(0xff);
        assert_eq!(decode(&bad_text), None);
        assert_eq!(split_id(b"17 \x01rest"), Some((17, &b"\x01rest"[..])));
        assert_eq!(split_id(b"17"), None);
        assert_eq!(split_id(b"-1 x"), None);
        assert_eq!(split_id(b"99999999999999999999999 x"), None);
    }
}
