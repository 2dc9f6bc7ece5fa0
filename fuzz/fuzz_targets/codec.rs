//! The WebSocket codec's read side on arbitrary bytes, permessage-deflate on and off: it never
//! panics, never returns more than the limit, and decodes the same stream to the same events
//! however it is cut into reads. Compressed frames (RSV1) are built from the input too, so
//! inflation errors, bombs and truncated deflate streams are reached, not only rejected headers.
#![no_main]

use hub_core::codec::{negotiate, Decoder, DeflateConfig};
use hub_core::{Incoming, TransportError};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

/// Every event of `bytes` fed in reads of `chunk` bytes (0: all at once), until an error.
fn run(bytes: &[u8], chunk: usize, deflate: bool) -> (Vec<Incoming>, Option<String>) {
    let mut decoder = Decoder::new(LIMIT, deflate);
    let mut events = Vec::new();
    let step = if chunk == 0 { bytes.len().max(1) } else { chunk };
    for piece in bytes.chunks(step) {
        let mut input = piece;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(event)) => {
                    if let Incoming::Message(m) = &event {
                        assert!(m.len() <= LIMIT, "a message over the limit got through");
                    }
                    events.push(event);
                }
                Ok(None) => {
                    assert!(input.is_empty(), "input left unconsumed");
                    break;
                }
                Err(error) => return (events, Some(kind(&error))),
            }
        }
    }
    (events, None)
}

fn kind(error: &TransportError) -> String {
    match error {
        TransportError::Protocol(_) => "protocol".into(),
        other => other.to_string(),
    }
}

/// A masked frame around `payload`, with RSV1 set when `compressed`.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    let key = [0xa1, 0x5e, 0x07, 0xc3];
    out.extend(key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fuzz_target!(|input: (u8, u8, Vec<u8>)| {
    let (mode, chunk, data) = input;
    let deflate = mode & 1 == 1;
    // half the time the input is a compressed message's payload rather than raw frames
    let bytes = if mode & 2 == 2 {
        let first = 0x80 | 0x40 | if mode & 4 == 4 { 0x1 } else { 0x2 };
        frame(first, &data)
    } else {
        data.clone()
    };
    let whole = run(&bytes, 0, deflate);
    let cut = run(&bytes, usize::from(chunk % 17) + 1, deflate);
    assert_eq!(whole, cut, "the same stream decoded differently when cut into reads");
    // the offer parser on the same bytes, as a header value
    let _ = negotiate([&data[..]].into_iter(), &DeflateConfig::default());
});
