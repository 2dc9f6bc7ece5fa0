//! Random strings → encode → parse with an independent WHATWG parser (eventsource-stream) →
//! exactly the intended event, or an encoding error. No input may forge a field.
#![allow(clippy::unwrap_used, missing_docs)]

use bytes::{Bytes, BytesMut};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use proptest::prelude::*;
use sse_core::{encode_comment, EncodeError, Event};
use std::convert::Infallible;

/// Cases per property; 3 properties, so well over 100,000 cases in all.
const CASES: u32 = 40_000;

/// Strings rich in what breaks naive encoders.
fn nasty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => Just("\r".to_string()),
        4 => Just("\n".to_string()),
        4 => Just("\r\n".to_string()),
        2 => Just("\0".to_string()),
        3 => Just(" ".to_string()),
        3 => Just(":".to_string()),
        2 => Just("data: forged".to_string()),
        2 => Just("event: forged".to_string()),
        2 => Just("id: 666".to_string()),
        1 => Just("retry: 1".to_string()),
        1 => Just("\u{feff}".to_string()),
        8 => prop::collection::vec(prop::char::range('a', 'z'), 1..6)
            .prop_map(|v| v.into_iter().collect::<String>()),
        4 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn parse(bytes: Bytes) -> Vec<eventsource_stream::Event> {
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(bytes)]).eventsource();
    futures_executor::block_on(stream.collect::<Vec<_>>())
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn has_forbidden(s: &str) -> bool {
    s.contains(['\r', '\n', '\0'])
}

/// What the browser must see for `data`: line breaks become LF.
fn normalized(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn event_round_trips_or_is_refused(name in nasty(), id in nasty(), data in nasty()) {
        let built = Event::new().event(&name).and_then(|e| e.id(&id));
        if has_forbidden(&name) || has_forbidden(&id) {
            let refused = matches!(built, Err(EncodeError::InvalidField { .. }));
            prop_assert!(refused, "not refused: {:?}", built);
            return Ok(());
        }
        let event = built.unwrap().data(&data);
        let parsed = parse(event.to_bytes());
        prop_assert_eq!(parsed.len(), 1, "{:?}", parsed);
        let got = &parsed[0];
        let expected_type = if name.is_empty() { "message" } else { name.as_str() };
        prop_assert_eq!(&got.event, expected_type);
        prop_assert_eq!(&got.id, &id);
        prop_assert_eq!(&got.data, &normalized(&data));
        prop_assert_eq!(got.retry, None);
    }

    #[test]
    fn comments_never_produce_anything(comment in nasty(), data in nasty()) {
        let mut buf = BytesMut::new();
        encode_comment(&mut buf, &comment);
        Event::new().data(&data).encode(&mut buf);
        let parsed = parse(buf.freeze());
        prop_assert_eq!(parsed.len(), 1, "{:?}", parsed);
        prop_assert_eq!(&parsed[0].event, "message");
        prop_assert_eq!(&parsed[0].id, "");
        prop_assert_eq!(&parsed[0].data, &normalized(&data));
    }

    #[test]
    fn hub_messages_stay_data(text in nasty(), id in any::<u64>()) {
        let mut buf = BytesMut::new();
        sse_core::encode_message(&mut buf, Some(id), &hub_core::Message::text(text.clone()));
        let parsed = parse(buf.freeze());
        prop_assert_eq!(parsed.len(), 1);
        prop_assert_eq!(&parsed[0].event, "message");
        prop_assert_eq!(&parsed[0].id, &id.to_string());
        prop_assert_eq!(&parsed[0].data, &normalized(&text));
    }
}
