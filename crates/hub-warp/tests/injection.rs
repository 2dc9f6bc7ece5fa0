//! The warp path hands our encoded events to warp inside a `warp::sse::Event` comment: random strings must still
//! arrive as exactly the intended event (checked with eventsource-stream, a WHATWG parser).
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::{Bytes, BytesMut};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use proptest::prelude::*;
use sse_core::Event;
use std::convert::Infallible;

fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => Just("\r".to_string()),
        4 => Just("\n".to_string()),
        4 => Just("\r\n".to_string()),
        3 => Just(" ".to_string()),
        3 => Just(":".to_string()),
        2 => Just("data: forged".to_string()),
        2 => Just("event: forged".to_string()),
        1 => Just("retry: 1".to_string()),
        8 => prop::collection::vec(prop::char::range('a', 'z'), 1..6)
            .prop_map(|v| v.into_iter().collect::<String>()),
        4 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// What warp writes for our chunk.
fn through_warp(chunk: Bytes) -> Bytes {
    Bytes::from(hub_warp::sse::to_warp_event(&chunk).to_string())
}

fn parse(bytes: Bytes) -> Vec<eventsource_stream::Event> {
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(bytes)]).eventsource();
    futures_executor::block_on(stream.collect::<Vec<_>>())
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn normalized(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn events_survive_warps_encoder(name in nasty(), id in nasty(), data in nasty()) {
        let Ok(event) = Event::new().event(&name).and_then(|e| e.id(&id)) else {
            return Ok(()); // refused by our encoder; covered in sse-core
        };
        let mut buf = BytesMut::new();
        sse_core::encode_comment(&mut buf, &data); // a comment first: must vanish
        event.data(&data).encode(&mut buf);
        let parsed = parse(through_warp(buf.freeze()));
        prop_assert_eq!(parsed.len(), 1, "{:?}", parsed);
        let expected_type = if name.is_empty() { "message" } else { name.as_str() };
        prop_assert_eq!(&parsed[0].event, expected_type);
        prop_assert_eq!(&parsed[0].id, &id);
        prop_assert_eq!(&parsed[0].data, &normalized(&data));
    }
}

#[test]
fn retry_and_heartbeat_pass_through() {
    let mut buf = BytesMut::new();
    sse_core::encode_retry(&mut buf, std::time::Duration::from_millis(2500));
    buf.extend_from_slice(b":\n\n");
    let out = through_warp(buf.clone().freeze());
    // our bytes exactly, behind one empty comment line
    assert_eq!(&out[..], &[&b":\n"[..], &buf[..]].concat()[..]);
    assert_eq!(&out[..], b":\nretry: 2500\n\n:\n\n");
}

#[test]
fn a_batch_of_events_crosses_warp_as_one_chunk_unchanged() {
    let mut buf = BytesMut::new();
    for i in 0..5 {
        Event::new()
            .id(&i.to_string())
            .unwrap()
            .data(&format!("line {i}\nsecond"))
            .encode(&mut buf);
    }
    let out = through_warp(buf.clone().freeze());
    assert_eq!(&out[..], &[&b":\n"[..], &buf[..]].concat()[..]);
    let parsed = parse(out);
    assert_eq!(parsed.len(), 5);
    for (i, e) in parsed.iter().enumerate() {
        assert_eq!(
            (e.id.as_str(), e.data.as_str()),
            (i.to_string().as_str(), format!("line {i}\nsecond").as_str())
        );
    }
}
