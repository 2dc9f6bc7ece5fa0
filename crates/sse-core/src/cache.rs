//! Encode once per broadcast, not once per subscriber.
//!
//! Every SSE subscriber of a broadcast writes the same event (same data, same history id), so
//! each thread keeps the events it encoded last in a small direct-mapped table and copies a hit
//! instead of encoding again. An entry holds a reference to the message it encoded, so its
//! payload cannot be freed and its address reused by another message while it is cached: equal
//! address, length, kind and id mean the same message. Only small messages are cached, so a
//! thread holds at most `SLOTS` × `MAX_CACHED` bytes of them.

use crate::member::encode_message;
use bytes::{Bytes, BytesMut};
use hub_core::Message;
use std::cell::RefCell;

/// Entries per thread.
const SLOTS: usize = 64;
/// Larger messages are encoded every time (the scan is then small next to the copy).
const MAX_CACHED: usize = 4096;

struct Entry {
    message: Message,
    id: Option<u64>,
    encoded: Bytes,
}

thread_local! {
    static CACHE: RefCell<Vec<Option<Entry>>> = RefCell::new((0..SLOTS).map(|_| None).collect());
}

fn payload(message: &Message) -> (&[u8], bool) {
    match message {
        Message::Text(t) => (t.as_bytes(), true),
        Message::Binary(b) => (b, false),
    }
}

fn same(a: &Message, b: &Message) -> bool {
    let ((pa, ta), (pb, tb)) = (payload(a), payload(b));
    ta == tb && pa.len() == pb.len() && std::ptr::eq(pa.as_ptr(), pb.as_ptr())
}

/// Appends `message` encoded as an event (see [`encode_message`]), from the cache when this
/// thread encoded it lately.
pub(crate) fn encode_message_cached(buf: &mut BytesMut, id: Option<u64>, message: &Message) {
    let (data, _) = payload(message);
    if data.len() > MAX_CACHED {
        return encode_message(buf, id, message);
    }
    let hash = (data.as_ptr() as usize >> 3) ^ (id.unwrap_or(0) as usize).wrapping_mul(0x9e37_79b9);
    let slot = hash % SLOTS;
    CACHE.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return encode_message(buf, id, message);
        };
        if let Some(entry) = &cache[slot] {
            if entry.id == id && same(&entry.message, message) {
                buf.extend_from_slice(&entry.encoded);
                return;
            }
        }
        let mut encoded = BytesMut::new();
        encode_message(&mut encoded, id, message);
        let encoded = encoded.freeze();
        buf.extend_from_slice(&encoded);
        cache[slot] = Some(Entry {
            message: message.clone(),
            id,
            encoded,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(id: Option<u64>, message: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_message_cached(&mut buf, id, message);
        buf.to_vec()
    }

    fn plain(id: Option<u64>, message: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_message(&mut buf, id, message);
        buf.to_vec()
    }

    #[test]
    fn hits_and_misses_encode_exactly_as_the_encoder() {
        let a = Message::from("one\ntwo");
        let b = Message::from(Bytes::from_static(b"\x00\x01binary"));
        for _ in 0..3 {
            for id in [None, Some(1), Some(2)] {
                assert_eq!(encode(id, &a), plain(id, &a));
                assert_eq!(encode(id, &b), plain(id, &b));
                // a clone shares the payload: a hit
                assert_eq!(encode(id, &a.clone()), plain(id, &a));
            }
        }
    }

    #[test]
    fn equal_content_at_another_address_or_with_another_id_is_not_confused() {
        let first = Message::from("same text");
        let _ = encode(Some(7), &first);
        let second = Message::from(String::from("same text"));
        assert_eq!(encode(Some(8), &second), plain(Some(8), &second));
        let other = Message::from(String::from("different"));
        assert_eq!(encode(Some(7), &other), plain(Some(7), &other));
    }
}
