//! WebSocket and SSE by hand: just enough of RFC 6455 and of the event-stream format for a
//! load generator and a syscall-floor server, with nothing per message that a real client
//! would not also pay.

/// Bytes of the payload prefix that carries the sequence number and the send timestamp.
pub const STAMP_LEN: usize = 32;

/// A payload of `size` ASCII bytes (at least [`STAMP_LEN`]) starting with `seq` and `ns`.
pub fn payload(seq: u64, ns: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{seq:010} {ns:020} ").into_bytes();
    p.resize(size.max(STAMP_LEN), b'x');
    p
}

/// What follows the stamp in a payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fill {
    /// `x` repeated ([`payload`]).
    #[default]
    Filler,
    /// JSON like a ticker or chat feed's ([`json_payload`]).
    Json,
}

impl Fill {
    /// `filler` or `json`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "filler" => Some(Fill::Filler),
            "json" => Some(Fill::Json),
            _ => None,
        }
    }

    /// A payload of `size` bytes of this fill starting with `seq` and `ns`.
    pub fn payload(self, seq: u64, ns: u64, size: usize) -> Vec<u8> {
        match self {
            Fill::Filler => payload(seq, ns, size),
            Fill::Json => json_payload(seq, ns, size),
        }
    }
}

/// Symbols with their price level, price decimals (tick size) and size decimals (lot size).
const SYMBOLS: [(&str, f64, usize, usize); 8] = [
    ("BTC-USD", 43_125.0, 2, 4),
    ("ETH-USD", 2_291.0, 2, 4),
    ("SOL-USD", 61.3, 3, 2),
    ("EUR-USD", 1.0871, 5, 0),
    ("AAPL", 189.2, 2, 0),
    ("MSFT", 378.9, 2, 0),
    ("TSLA", 242.6, 2, 0),
    ("NVDA", 131.4, 2, 0),
];

const WORDS: [&str; 40] = [
    "buy",
    "sell",
    "the",
    "dip",
    "looks",
    "strong",
    "weak",
    "support",
    "at",
    "resistance",
    "near",
    "high",
    "low",
    "volume",
    "today",
    "again",
    "breakout",
    "fading",
    "long",
    "short",
    "watch",
    "this",
    "level",
    "open",
    "close",
    "gap",
    "fill",
    "trend",
    "up",
    "down",
    "flat",
    "news",
    "earnings",
    "rally",
    "selloff",
    "range",
    "hold",
    "stop",
    "target",
    "ok",
];

/// splitmix64: a small deterministic generator for the payloads.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Appends `n` words, space-separated.
    fn words(&mut self, out: &mut String, n: u64) {
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[(self.next() % WORDS.len() as u64) as usize]);
        }
    }
}

/// A payload of `size` bytes (at least [`STAMP_LEN`] + 2) like a ticker or chat feed's: the
/// stamp, then a JSON array of trades (the same keys in each; a symbol of eight; a price near
/// the symbol's level and a size, to its tick and lot; a side, venue, time, id; a few words of
/// chat), drawn from a generator seeded by `seq` (every message differs; the same `seq` gives
/// the same bytes), and one last `{"text": ..}` of words cut to fill the size exactly.
pub fn json_payload(seq: u64, ns: u64, size: usize) -> Vec<u8> {
    use std::fmt::Write;
    let size = size.max(STAMP_LEN + 2);
    let mut rng = SplitMix(seq ^ 0x005e_ed0f_da7a);
    let mut p = format!("{seq:010} {ns:020} [").into_bytes();
    let mut entry = String::new();
    let mut text = String::new();
    for i in 0.. {
        text.clear();
        let n = 2 + rng.next() % 5;
        rng.words(&mut text, n);
        let r = rng.next();
        let (symbol, level, price_decimals, size_decimals) = SYMBOLS[(r % 8) as usize];
        let price = level * (1.0 + ((r >> 8) % 2001) as f64 / 100_000.0 - 0.01);
        let lots = 1 + (r >> 24) % 50_000;
        let amount = lots as f64 / 10f64.powi(size_decimals as i32);
        entry.clear();
        let _ = write!(
            entry,
            r#"{{"type":"trade","symbol":"{symbol}","price":{price:.price_decimals$},"size":{amount:.size_decimals$},"side":"{}","venue":"{}","ts":{},"id":{},"text":"{text}"}}"#,
            if r >> 40 & 1 == 0 { "buy" } else { "sell" },
            ["XNAS", "XNYS", "BATS", "ARCX"][(r >> 41 & 3) as usize],
            1_764_000_000_000 + seq * 1000 + (r >> 43) % 1000,
            seq * 64 + i,
        );
        let sep = usize::from(i > 0);
        if p.len() + sep + entry.len() + 1 > size {
            break;
        }
        if sep == 1 {
            p.push(b',');
        }
        p.extend_from_slice(entry.as_bytes());
    }
    let sep = usize::from(p.last() != Some(&b'['));
    let room = size - 1 - p.len();
    let shell = sep + r#"{"text":""}"#.len();
    if room >= shell {
        text.clear();
        while text.len() < room - shell {
            rng.words(&mut text, 1);
            text.push(' ');
        }
        text.truncate(room - shell);
        if sep == 1 {
            p.push(b',');
        }
        p.extend_from_slice(format!(r#"{{"text":"{text}"}}"#).as_bytes());
    }
    p.resize(size - 1, b' ');
    p.push(b']');
    p
}

/// The send timestamp (ns) in a payload made by [`payload`].
pub fn stamp(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.get(11..31)?).ok()?.parse().ok()
}

/// A WebSocket upgrade request for `path`.
pub fn upgrade_request(host: &str, path: &str) -> String {
    upgrade_request_offering(host, path, None)
}

/// A WebSocket upgrade request for `path` offering `extensions`
/// (`Sec-WebSocket-Extensions`), if any.
pub fn upgrade_request_offering(host: &str, path: &str, extensions: Option<&str>) -> String {
    let offer = extensions.map_or(String::new(), |e| {
        format!("Sec-WebSocket-Extensions: {e}\r\n")
    });
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n"
    )
}

/// The value of header `name` (any case) in an HTTP head, if present.
pub fn header_value<'h>(head: &'h [u8], name: &str) -> Option<&'h str> {
    std::str::from_utf8(head)
        .ok()?
        .split("\r\n")
        .skip(1)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
}

/// Inflates one permessage-deflate message (RFC 7692: raw deflate, the trailing
/// `00 00 ff ff` left off by the sender) with a fresh window; `None` if it is not valid or
/// inflates past `limit` bytes.
pub fn inflate(payload: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut inflater = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    loop {
        let read = usize::try_from(inflater.total_in()).ok()?;
        let before = (read, out.len());
        inflater
            .decompress_vec(&input[read..], &mut out, flate2::FlushDecompress::Sync)
            .ok()?;
        let read = usize::try_from(inflater.total_in()).ok()?;
        if read == input.len() && out.len() < out.capacity() {
            return (out.len() <= limit).then_some(out);
        }
        if out.len() > limit || (read, out.len()) == before {
            return None;
        }
        out.reserve(out.capacity());
    }
}

/// An event-stream request for `path`.
pub fn sse_request(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n")
}

fn header(out: &mut Vec<u8>, opcode: u8, len: usize, mask_bit: u8) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a client frame. Masked with the all-zero key, which RFC 6455 allows, so the
/// payload goes out as is and the client spends nothing on masking.
pub fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    header(out, opcode, payload.len(), 0x80);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// Appends a server (unmasked) frame.
pub fn server_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    header(out, opcode, payload.len(), 0);
    out.extend_from_slice(payload);
}

/// One frame parsed from the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Final fragment.
    pub fin: bool,
    /// RSV1: with permessage-deflate, the message (this is its first frame) is compressed.
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// Where the (unmasked) payload starts in the buffer.
    pub start: usize,
    /// Where the frame ends.
    pub end: usize,
    /// The masking key, for client frames.
    pub mask: Option<[u8; 4]>,
}

/// Parses the frame at the front of `buf`, if it is complete.
pub fn parse(buf: &[u8]) -> Option<Frame> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let key: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    if buf.len() < end {
        return None;
    }
    Some(Frame {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        start: at,
        end,
        mask,
    })
}

/// Unmasks a client frame's payload in place.
pub fn unmask(payload: &mut [u8], key: [u8; 4]) {
    if key != [0; 4] {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
}

/// The end of the HTTP head at the front of `buf` (after its blank line), if complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses the complete events at the front of `buf`: calls `on_data` with each event's first
/// `data` line; returns how many bytes were consumed.
pub fn sse_events(buf: &[u8], mut on_data: impl FnMut(&[u8])) -> usize {
    let mut consumed = 0;
    while let Some(len) = buf[consumed..].windows(2).position(|w| w == b"\n\n") {
        let event = &buf[consumed..consumed + len];
        if let Some(line) = event
            .split(|b| *b == b'\n')
            .find_map(|l| l.strip_prefix(b"data:"))
        {
            on_data(line.strip_prefix(b" ").unwrap_or(line));
        }
        consumed += len + 2;
    }
    consumed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_payloads_carry_their_stamp() {
        let p = payload(7, 123_456_789, 64);
        assert_eq!(p.len(), 64);
        assert_eq!(stamp(&p), Some(123_456_789));
        for size in [10, 200, 70_000] {
            let mut buf = Vec::new();
            client_frame(&mut buf, 2, &vec![9; size]);
            let f = parse(&buf).expect("complete frame");
            assert_eq!((f.opcode, f.end - f.start, f.end), (2, size, buf.len()));
            assert!(parse(&buf[..buf.len() - 1]).is_none());
        }
    }

    #[test]
    fn json_payloads_fill_their_size_differ_by_seq_and_inflate_back() {
        for size in [34, 64, 100, 1024, 4096] {
            let p = json_payload(42, 7, size);
            assert_eq!(p.len(), size, "size {size}");
            assert_eq!((&p[..11], stamp(&p)), (&b"0000000042 "[..], Some(7)));
            assert_eq!(p, Fill::Json.payload(42, 7, size));
            assert_eq!((p[STAMP_LEN], p[size - 1]), (b'[', b']'));
        }
        let (a, b) = (json_payload(1, 0, 1024), json_payload(2, 0, 1024));
        assert_ne!(a[STAMP_LEN..], b[STAMP_LEN..]);
        let text = std::str::from_utf8(&a[STAMP_LEN..]).expect("ASCII");
        assert!(text.matches(r#""symbol":"#).count() >= 4, "{text}");
        // a raw deflate stream, sync-flushed, with its 00 00 ff ff tail cut as RFC 7692 sends it
        let mut deflater = flate2::Compress::new(flate2::Compression::default(), false);
        let mut out = Vec::with_capacity(2048);
        deflater
            .compress_vec(&a, &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]) && out.len() < a.len() / 2);
        out.truncate(out.len() - 4);
        assert_eq!(inflate(&out, 4096).as_deref(), Some(&a[..]));
        assert_eq!(inflate(&out, 100), None);
        assert_eq!(inflate(b"\xff\xff\xff", 4096), None);
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            sec-websocket-extensions:  permessage-deflate; server_no_context_takeover \r\n\r\n";
        assert_eq!(
            header_value(head, "Sec-WebSocket-Extensions"),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(header_value(head, "Sec-WebSocket-Protocol"), None);
        let offer = upgrade_request_offering("h", "/ws", Some("permessage-deflate"));
        assert_eq!(
            header_value(offer.as_bytes(), "sec-websocket-extensions"),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn sse_events_yield_their_data_lines() {
        let mut got = Vec::new();
        let buf = b"id: 1\ndata: one\n\n: comment\n\ndata:two\n\ndata: par";
        let n = sse_events(buf, |d| got.push(d.to_vec()));
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(&buf[n..], b"data: par");
    }
}
