//! The WebSocket codec on its own, byte by byte: every rule of RFC 6455's read side and
//! RFC 7692's permessage-deflate, with tungstenite's frame layer as the independent encoder.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use hub_core::codec::{
    encode_close, encode_control, encode_message, negotiate, Decoder, DeflateConfig, Deflated, PING,
};
use hub_core::{CloseCode, CloseFrame, Incoming, Message, TransportError};
use proptest::prelude::*;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};

const LIMIT: usize = 64 * 1024;

/// A client frame as tungstenite writes it (masked), with the RSV1 bit as given.
fn frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        is_final: fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some([0x37, 0xfa, 0x21, 0x3d]),
    };
    let frame = Frame::from_payload(header, Bytes::copy_from_slice(payload));
    let mut out = Vec::new();
    frame.format(&mut out).unwrap();
    out
}

fn text(payload: &[u8], fin: bool) -> Vec<u8> {
    frame(OpCode::Data(Data::Text), fin, false, payload)
}

fn cont(payload: &[u8], fin: bool) -> Vec<u8> {
    frame(OpCode::Data(Data::Continue), fin, false, payload)
}

fn control(kind: Control, payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Control(kind), true, false, payload)
}

/// Everything `bytes` decodes to, fed in one piece.
fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Incoming>, TransportError> {
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(event) = decoder.decode(&mut input)? {
        out.push(event);
    }
    assert!(input.is_empty());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<Incoming>, TransportError> {
    decode_all(&mut Decoder::new(LIMIT, true), bytes)
}

fn msg(s: &str) -> Incoming {
    Incoming::Message(Message::text(s.to_string()))
}

fn is_protocol(r: Result<Vec<Incoming>, TransportError>) -> bool {
    matches!(r, Err(TransportError::Protocol(_)))
}

/// Raw deflate of `payload` as an RFC 7692 sender makes it (sync flush, tail removed).
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    c.compress_vec(payload, &mut out, FlushCompress::Sync)
        .unwrap();
    while c.total_in() < payload.len() as u64 || out.capacity() == out.len() {
        out.reserve(4096);
        let done = c.total_in() as usize;
        c.compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
            .unwrap();
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn a_masked_text_frame_is_a_message_at_every_split_point() {
    let bytes = text("héllo, wörld".as_bytes(), true);
    for split in 0..=bytes.len() {
        let mut decoder = Decoder::new(LIMIT, false);
        let mut first = &bytes[..split];
        let early = decoder.decode(&mut first).unwrap();
        assert_eq!(early.is_some(), split == bytes.len(), "split {split}");
        let mut rest = &bytes[split..];
        let got = early.or_else(|| decoder.decode(&mut rest).unwrap());
        assert_eq!(got, Some(msg("héllo, wörld")), "split {split}");
        assert!(!decoder.is_mid_message());
    }
}

#[test]
fn two_frames_in_one_read_come_out_one_at_a_time() {
    let mut bytes = text(b"one", true);
    bytes.extend(frame(OpCode::Data(Data::Binary), true, false, &[1, 2, 3]));
    let mut decoder = Decoder::new(LIMIT, false);
    let mut input = &bytes[..];
    assert_eq!(decoder.decode(&mut input).unwrap(), Some(msg("one")));
    assert!(
        !input.is_empty(),
        "the second frame is left for the next call"
    );
    assert_eq!(
        decoder.decode(&mut input).unwrap(),
        Some(Incoming::Message(Message::binary(vec![1, 2, 3])))
    );
}

#[test]
fn lengths_of_every_header_form_decode() {
    for len in [0, 125, 126, 65535, 65536] {
        let payload = vec![b'x'; len];
        let got = decode(&frame(OpCode::Data(Data::Binary), true, false, &payload)).unwrap();
        assert_eq!(got, vec![Incoming::Message(Message::binary(payload))]);
    }
}

#[test]
fn an_unmasked_frame_is_a_protocol_error() {
    let mut bytes = text(b"hi", true);
    bytes[1] &= 0x7f; // clear MASK: the mask key now reads as payload, which does not matter
    assert!(is_protocol(decode(&bytes)));
}

#[test]
fn reserved_bits_and_opcodes_are_protocol_errors() {
    let mut rsv2 = text(b"hi", true);
    rsv2[0] |= 0x20;
    assert!(is_protocol(decode(&rsv2)));
    let mut rsv3 = text(b"hi", true);
    rsv3[0] |= 0x10;
    assert!(is_protocol(decode(&rsv3)));
    // RSV1 without permessage-deflate
    let rsv1 = frame(OpCode::Data(Data::Text), true, true, b"hi");
    assert!(is_protocol(decode_all(
        &mut Decoder::new(LIMIT, false),
        &rsv1
    )));
    for opcode in [3u8, 7, 0xb, 0xf] {
        let mut bytes = text(b"hi", true);
        bytes[0] = 0x80 | opcode;
        assert!(is_protocol(decode(&bytes)), "opcode {opcode}");
    }
}

#[test]
fn control_frames_must_be_final_and_short() {
    let mut unfinished = control(Control::Ping, b"p");
    unfinished[0] &= 0x7f;
    assert!(is_protocol(decode(&unfinished)));
    assert!(is_protocol(decode(&control(Control::Ping, &[0; 126]))));
    assert_eq!(
        decode(&control(Control::Ping, &[7; 125])).unwrap(),
        vec![Incoming::Ping(Bytes::from(vec![7; 125]))]
    );
    let mut compressed_ping = control(Control::Ping, b"p");
    compressed_ping[0] |= 0x40;
    assert!(is_protocol(decode(&compressed_ping)));
}

#[test]
fn continuation_rules() {
    assert!(is_protocol(decode(&cont(b"orphan", true))));
    let mut two_starts = text(b"a", false);
    two_starts.extend(text(b"b", true));
    assert!(is_protocol(decode(&two_starts)));
    let mut rsv1_on_continuation = text(b"a", false);
    rsv1_on_continuation.extend(frame(OpCode::Data(Data::Continue), true, true, b"b"));
    assert!(is_protocol(decode(&rsv1_on_continuation)));
}

#[test]
fn control_frames_interleave_with_fragments() {
    let mut bytes = text(b"frag", false);
    bytes.extend(control(Control::Ping, b"ping"));
    bytes.extend(cont(b"men", false));
    bytes.extend(control(Control::Pong, b""));
    bytes.extend(cont(b"ted", true));
    assert_eq!(
        decode(&bytes).unwrap(),
        vec![
            Incoming::Ping(Bytes::from_static(b"ping")),
            Incoming::Pong(Bytes::new()),
            msg("fragmented"),
        ]
    );
}

#[test]
fn the_limit_is_checked_on_each_header_before_its_payload() {
    // the header alone (no payload yet) is enough to refuse
    let bytes = frame(OpCode::Data(Data::Binary), true, false, &vec![0; LIMIT + 1]);
    let mut decoder = Decoder::new(LIMIT, false);
    let mut header = &bytes[..14];
    assert!(matches!(
        decoder.decode(&mut header),
        Err(TransportError::TooBig)
    ));
    // fragments that add up past the limit: refused on the header of the one that does
    let mut bytes = frame(OpCode::Data(Data::Binary), false, false, &vec![0; LIMIT]);
    let over = cont(&[0; 1], true);
    bytes.extend(&over[..6]);
    let mut decoder = Decoder::new(LIMIT, false);
    assert!(matches!(
        decode_all(&mut decoder, &bytes),
        Err(TransportError::TooBig)
    ));
    // exactly the limit passes
    let at = frame(OpCode::Data(Data::Binary), true, false, &vec![0; LIMIT]);
    assert_eq!(decode(&at).unwrap().len(), 1);
}

#[test]
fn a_length_over_2_63_is_a_protocol_error() {
    let bytes = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    assert!(is_protocol(decode(&bytes)));
}

#[test]
fn invalid_utf8_fails_at_the_first_bad_fragment() {
    // the first fragment holds an invalid byte: refused before the message ends
    let bytes = text(&[b'o', b'k', 0xff, b'x'], false);
    assert!(matches!(decode(&bytes), Err(TransportError::InvalidUtf8)));
    // a character split across fragments is fine
    let euro = "€".as_bytes();
    let mut bytes = text(&euro[..1], false);
    bytes.extend(cont(&euro[1..], true));
    assert_eq!(decode(&bytes).unwrap(), vec![msg("€")]);
    // a message that ends inside a character is not
    let bytes = text(&euro[..2], true);
    assert!(matches!(decode(&bytes), Err(TransportError::InvalidUtf8)));
}

#[test]
fn close_frames_are_checked() {
    assert_eq!(
        decode(&control(Control::Close, b"")).unwrap(),
        vec![Incoming::Close(None)]
    );
    assert!(is_protocol(decode(&control(Control::Close, &[3]))));
    for bad in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let payload = bad.to_be_bytes();
        assert!(
            is_protocol(decode(&control(Control::Close, &payload))),
            "{bad}"
        );
    }
    for good in [1000u16, 1001, 1011, 3000, 4999] {
        let mut payload = good.to_be_bytes().to_vec();
        payload.extend(b"bye");
        assert_eq!(
            decode(&control(Control::Close, &payload)).unwrap(),
            vec![Incoming::Close(Some(CloseFrame::new(good, "bye")))]
        );
    }
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend([0xce, 0xba, 0xe1, 0xbd]);
    assert!(matches!(
        decode(&control(Control::Close, &bad_reason)),
        Err(TransportError::InvalidUtf8)
    ));
}

#[test]
fn input_after_the_close_frame_is_ignored() {
    let mut bytes = control(Control::Close, &1000u16.to_be_bytes());
    bytes.extend(text(b"late", true));
    bytes.extend([0xff; 10]); // garbage
    let got = decode(&bytes).unwrap();
    assert_eq!(got.len(), 1);
}

#[test]
fn a_compressed_message_inflates() {
    let payload = r#"{"type":"chat","text":"hello hello hello hello hello"}"#.repeat(20);
    let compressed = deflate(payload.as_bytes());
    assert!(compressed.len() < payload.len() / 4);
    let bytes = frame(OpCode::Data(Data::Text), true, true, &compressed);
    assert_eq!(decode(&bytes).unwrap(), vec![msg(&payload)]);
    // fragmented: RSV1 on the first frame only
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let mut bytes = frame(OpCode::Data(Data::Text), false, true, a);
    bytes.extend(control(Control::Ping, b""));
    bytes.extend(cont(b, true));
    assert_eq!(
        decode(&bytes).unwrap(),
        vec![Incoming::Ping(Bytes::new()), msg(&payload)]
    );
}

#[test]
fn a_compressed_message_is_checked_as_utf8_once_inflated() {
    let compressed = deflate(&[b'a', 0xff, b'b']);
    let bytes = frame(OpCode::Data(Data::Text), true, true, &compressed);
    assert!(matches!(decode(&bytes), Err(TransportError::InvalidUtf8)));
}

#[test]
fn corrupt_compressed_data_is_a_protocol_error() {
    let bytes = frame(OpCode::Data(Data::Binary), true, true, &[0xff; 32]);
    assert!(is_protocol(decode(&bytes)));
}

#[test]
fn a_deflate_bomb_stops_at_the_limit() {
    // 100 MB of zeros compress to about 100 KB; the limit is 64 KiB inflated
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(200 * 1024);
    for _ in 0..100 {
        let start = c.total_in();
        while c.total_in() - start < zeros.len() as u64 {
            let done = (c.total_in() - start) as usize;
            c.compress_vec(&zeros[done..], &mut out, FlushCompress::None)
                .unwrap();
            if out.capacity() - out.len() < 1024 {
                out.reserve(64 * 1024);
            }
        }
    }
    c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    // the hub's default limit, 512 KiB
    let limit = 512 * 1024;
    assert!(
        out.len() < limit / 4,
        "the bomb is small on the wire: {}",
        out.len()
    );
    let bytes = frame(OpCode::Data(Data::Binary), true, true, &out);
    let mut decoder = Decoder::new(limit, true);
    assert!(matches!(
        decode_all(&mut decoder, &bytes),
        Err(TransportError::TooBig)
    ));
    // exactly the limit inflated is fine, one byte more is not
    let exact = deflate(&vec![b'z'; LIMIT]);
    let bytes = frame(OpCode::Data(Data::Binary), true, true, &exact);
    assert_eq!(decode(&bytes).unwrap().len(), 1);
    let over = deflate(&vec![b'z'; LIMIT + 1]);
    let bytes = frame(OpCode::Data(Data::Binary), true, true, &over);
    assert!(matches!(decode(&bytes), Err(TransportError::TooBig)));
}

#[test]
fn a_client_that_keeps_its_context_is_refused() {
    // the second message refers back into the first: the hub asked for
    // client_no_context_takeover, so it inflates each message on its own and fails
    let mut c = Compress::new(Compression::default(), false);
    let first = b"the quick brown fox jumps over the lazy dog".repeat(4);
    let mut a = Vec::with_capacity(1024);
    c.compress_vec(&first, &mut a, FlushCompress::Sync).unwrap();
    let mut b = Vec::with_capacity(1024);
    c.compress_vec(&first, &mut b, FlushCompress::Sync).unwrap();
    a.truncate(a.len() - 4);
    b.truncate(b.len() - 4);
    let mut bytes = frame(OpCode::Data(Data::Binary), true, true, &a);
    bytes.extend(frame(OpCode::Data(Data::Binary), true, true, &b));
    assert!(is_protocol(decode(&bytes)));
}

#[test]
fn encoded_frames_parse_back_with_tungstenite() {
    for len in [0usize, 1, 125, 126, 65535, 65536, 70000] {
        let message = Message::binary(vec![9u8; len]);
        let mut out = BytesMut::new();
        encode_message(&mut out, &message, None);
        let mut cursor = std::io::Cursor::new(&out[..]);
        let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(length as usize, len);
        assert!(header.is_final && !header.rsv1 && header.mask.is_none());
        assert_eq!(header.opcode, OpCode::Data(Data::Binary));
        assert_eq!(out.len() - cursor.position() as usize, len);
    }
    let mut out = BytesMut::new();
    encode_message(&mut out, &Message::from("x"), Some(&[1, 2]));
    let (header, length) = FrameHeader::parse(&mut std::io::Cursor::new(&out[..]))
        .unwrap()
        .unwrap();
    assert!(header.rsv1);
    assert_eq!((header.opcode, length), (OpCode::Data(Data::Text), 2));

    let mut out = BytesMut::new();
    encode_close(&mut out, Some(&CloseFrame::new(CloseCode::TOO_BIG, "big")));
    assert_eq!(&out[..], &[0x88, 5, 0x03, 0xf1, b'b', b'i', b'g']);
    let mut out = BytesMut::new();
    encode_control(&mut out, PING, &[1; 200]);
    assert_eq!(out.len(), 2 + 125, "a control payload is cut to 125 bytes");
}

#[test]
fn offers_are_negotiated_as_rfc_7692_says() {
    let config = DeflateConfig::default();
    let answer = |offer: &str| {
        negotiate([offer.as_bytes()].into_iter(), &config).map(|d| d.response_header())
    };
    let plain = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    assert_eq!(answer("permessage-deflate").as_deref(), Some(plain));
    // what Chromium sends
    assert_eq!(
        answer("permessage-deflate; client_max_window_bits").as_deref(),
        Some(plain)
    );
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=10").as_deref(),
        Some(&*format!("{plain}; server_max_window_bits=10"))
    );
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=\"12\"").as_deref(),
        Some(&*format!("{plain}; server_max_window_bits=12"))
    );
    // declined: a window zlib cannot keep, bad values, unknown or repeated parameters
    for bad in [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; foo",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "x-webkit-deflate-frame",
    ] {
        assert_eq!(answer(bad), None, "{bad}");
    }
    // the first acceptable offer wins
    assert_eq!(
        answer("permessage-deflate; server_max_window_bits=8, permessage-deflate").as_deref(),
        Some(plain)
    );
    assert_eq!(
        negotiate(
            [&b"permessage-deflate"[..]].into_iter(),
            &DeflateConfig::disabled()
        ),
        None
    );
}

#[test]
fn a_broadcast_is_compressed_once() {
    let config = DeflateConfig::default();
    let deflate = negotiate([&b"permessage-deflate"[..]].into_iter(), &config).unwrap();
    let payload = r#"{"price":101.25,"symbol":"ACME"}"#.repeat(10);
    let shared = Deflated::new();
    let first = shared.get(payload.as_bytes(), &deflate).unwrap().clone();
    let second = shared.get(payload.as_bytes(), &deflate).unwrap().clone();
    assert_eq!(
        first.as_ptr(),
        second.as_ptr(),
        "the second recipient reuses the bytes"
    );
    // and they inflate back to the message
    let bytes = frame(OpCode::Data(Data::Text), true, true, &first);
    assert_eq!(decode(&bytes).unwrap(), vec![msg(&payload)]);
    // by default every message is compressed, even one deflate cannot shrink
    assert!(deflate.compress(b"short").is_some());
    let config = DeflateConfig::default().threshold(128);
    let deflate = negotiate([&b"permessage-deflate"[..]].into_iter(), &config).unwrap();
    assert!(
        deflate.compress(&[b'x'; 127]).is_none(),
        "under the threshold"
    );
    assert!(deflate.compress(&[b'x'; 128]).is_some());
}

/// One step of a client's stream: a message (text or binary, in fragments, maybe compressed)
/// or a control frame.
#[derive(Debug, Clone)]
enum Step {
    Message {
        text: bool,
        payload: Vec<u8>,
        cuts: Vec<usize>,
        compressed: bool,
        ping_between: bool,
    },
    Ping(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            any::<bool>(),
            "[a-zé€ {}\":,0-9]{0,300}",
            prop::collection::vec(0usize..400, 0..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(text, s, cuts, compressed, ping_between)| Step::Message {
                text,
                payload: s.into_bytes(),
                cuts,
                compressed,
                ping_between,
            }),
        prop::collection::vec(any::<u8>(), 0..125).prop_map(Step::Ping),
    ]
}

fn encode_steps(steps: &[Step]) -> (Vec<u8>, Vec<Incoming>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for step in steps {
        match step {
            Step::Ping(p) => {
                wire.extend(control(Control::Ping, p));
                expected.push(Incoming::Ping(Bytes::from(p.clone())));
            }
            Step::Message {
                text,
                payload,
                cuts,
                compressed,
                ping_between,
            } => {
                let body = if *compressed {
                    deflate(payload)
                } else {
                    payload.clone()
                };
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut pieces = Vec::new();
                let mut start = 0;
                for cut in cuts {
                    pieces.push(&body[start..cut]);
                    start = cut;
                }
                pieces.push(&body[start..]);
                let last = pieces.len() - 1;
                for (i, piece) in pieces.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => OpCode::Data(Data::Text),
                        (0, false) => OpCode::Data(Data::Binary),
                        _ => OpCode::Data(Data::Continue),
                    };
                    wire.extend(frame(opcode, i == last, i == 0 && *compressed, piece));
                    if *ping_between && i != last {
                        wire.extend(control(Control::Ping, b"x"));
                        expected.push(Incoming::Ping(Bytes::from_static(b"x")));
                    }
                }
                let message = if *text {
                    Message::text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::binary(payload.clone())
                };
                expected.push(Incoming::Message(message));
            }
        }
    }
    (wire, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// Any stream of messages, fragments and pings, cut into reads anywhere, decodes to the same
    /// events as the sender meant.
    #[test]
    fn any_stream_cut_anywhere_decodes_as_sent(
        steps in prop::collection::vec(step(), 1..8),
        reads in prop::collection::vec(1usize..64, 1..20),
    ) {
        let (wire, expected) = encode_steps(&steps);
        let mut decoder = Decoder::new(LIMIT, true);
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < wire.len() {
            let n = reads[i % reads.len()].min(wire.len() - pos);
            i += 1;
            let mut input = &wire[pos..pos + n];
            while let Some(event) = decoder.decode(&mut input).unwrap() {
                got.push(event);
            }
            prop_assert!(input.is_empty());
            pos += n;
        }
        prop_assert_eq!(got, expected);
        prop_assert!(!decoder.is_mid_message());
    }
}
