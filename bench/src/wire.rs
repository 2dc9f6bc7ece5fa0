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

/// The send timestamp (ns) in a payload made by [`payload`].
pub fn stamp(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.get(11..31)?).ok()?.parse().ok()
}

/// A WebSocket upgrade request for `path`.
pub fn upgrade_request(host: &str, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
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
    fn sse_events_yield_their_data_lines() {
        let mut got = Vec::new();
        let buf = b"id: 1\ndata: one\n\n: comment\n\ndata:two\n\ndata: par";
        let n = sse_events(buf, |d| got.push(d.to_vec()));
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(&buf[n..], b"data: par");
    }
}
