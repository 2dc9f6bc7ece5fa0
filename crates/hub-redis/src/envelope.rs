//! What goes over the channel: `<id> <envelope>`, the id given by the publish script in
//! decimal; the envelope is version, the publishing node, the node's sequence number of the
//! broadcast, the message's kind, its bytes. The sequence lets the origin recognise a
//! broadcast it already delivered itself (its publish timed out, then Redis ran it anyway).

use bytes::{BufMut, Bytes, BytesMut};
use hub_core::Message;

/// Version 1: no sequence number (still read, as sequence 0).
const VERSION_1: u8 = 1;
const VERSION: u8 = 2;
const TEXT: u8 = 1;
const BINARY: u8 = 2;

/// A decoded envelope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The node that published it.
    pub(crate) node: u64,
    /// The publishing node's sequence number of it (0: unknown).
    pub(crate) seq: u64,
    pub(crate) message: Message,
}

/// Encodes `message`, broadcast `seq` of `node`.
pub(crate) fn encode(node: u64, seq: u64, message: &Message) -> Bytes {
    let (kind, payload): (u8, &[u8]) = match message {
        Message::Text(t) => (TEXT, t.as_bytes()),
        Message::Binary(b) => (BINARY, b),
    };
    let mut out = BytesMut::with_capacity(18 + payload.len());
    out.put_u8(VERSION);
    out.put_u64(node);
    out.put_u64(seq);
    out.put_u8(kind);
    out.put_slice(payload);
    out.freeze()
}

/// Decodes an envelope; `None` for anything malformed (a text that is not UTF-8 included).
pub(crate) fn decode(bytes: &[u8]) -> Option<Envelope> {
    let (&version, rest) = bytes.split_first()?;
    let (node, rest) = split_u64(rest)?;
    let (seq, rest) = match version {
        VERSION_1 => (0, rest),
        VERSION => split_u64(rest)?,
        _ => return None,
    };
    let (&kind, payload) = rest.split_first()?;
    let message = match kind {
        TEXT => Message::from(std::str::from_utf8(payload).ok()?.to_string()),
        BINARY => Message::from(Bytes::copy_from_slice(payload)),
        _ => return None,
    };
    Some(Envelope { node, seq, message })
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_at_checked(8)?;
    Some((u64::from_be_bytes(head.try_into().ok()?), rest))
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
            let bytes = encode(42, 7, &message);
            let envelope = Envelope {
                node: 42,
                seq: 7,
                message,
            };
            assert_eq!(decode(&bytes), Some(envelope));
        }
        // version 1, without a sequence number
        let mut v1 = vec![VERSION_1];
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(&[TEXT, b'h', b'i']);
        let expect = Envelope {
            node: 5,
            seq: 0,
            message: Message::from("hi"),
        };
        assert_eq!(decode(&v1), Some(expect));
        assert_eq!(decode(b""), None);
        assert_eq!(decode(&[9; 20]), None); // unknown version
        assert_eq!(decode(&[VERSION, 1, 2, 3]), None); // cut short
        let mut bad_text = encode(1, 1, &Message::from("x")).to_vec();
        bad_text.push(0xff);
        assert_eq!(decode(&bad_text), None);
        assert_eq!(split_id(b"17 \x01rest"), Some((17, &b"\x01rest"[..])));
        assert_eq!(split_id(b"17"), None);
        assert_eq!(split_id(b"-1 x"), None);
        assert_eq!(split_id(b"99999999999999999999999 x"), None);
    }
}
