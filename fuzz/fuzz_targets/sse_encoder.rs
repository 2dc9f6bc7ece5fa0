//! The SSE encoder against an independent WHATWG parser (eventsource-stream): for any event
//! name, id, data and comment, the stream parses to exactly the intended event, or the encoder
//! refuses the field. No input forges a field, splits an event or injects a second one.
#![no_main]

use bytes::{Bytes, BytesMut};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use libfuzzer_sys::fuzz_target;
use sse_core::{encode_comment, EncodeError, Event};
use std::convert::Infallible;

fn parse(bytes: Bytes) -> Vec<eventsource_stream::Event> {
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(bytes)]).eventsource();
    futures_executor::block_on(stream.collect::<Vec<_>>())
        .into_iter()
        .map(|r| r.expect("the parser refused the encoder's output"))
        .collect()
}

fuzz_target!(|input: (String, String, String, String)| {
    let (name, id, data, comment) = input;
    let built = Event::new().event(&name).and_then(|e| e.id(&id));
    if [&name, &id].iter().any(|s| s.contains(['\r', '\n', '\0'])) {
        assert!(
            matches!(built, Err(EncodeError::InvalidField { .. })),
            "a field with a line break or NUL was not refused: {built:?}"
        );
        return;
    }
    let event = built.expect("a clean field was refused").data(&data);
    let mut buf = BytesMut::new();
    encode_comment(&mut buf, &comment);
    event.encode(&mut buf);
    let parsed = parse(buf.freeze());
    assert_eq!(parsed.len(), 1, "expected one event, got {parsed:?}");
    let got = &parsed[0];
    let expected_type = if name.is_empty() { "message" } else { &name };
    assert_eq!(got.event, expected_type);
    assert_eq!(got.id, id);
    // SSE cannot carry CR: every line break arrives as LF
    assert_eq!(got.data, data.replace("\r\n", "\n").replace('\r', "\n"));
    assert_eq!(got.retry, None);
});
