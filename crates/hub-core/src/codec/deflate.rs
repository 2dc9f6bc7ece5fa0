//! permessage-deflate (RFC 7692): negotiation, compression once per message, and inflation
//! within the message limit.
//!
//! The hub always answers `server_no_context_takeover` and `client_no_context_takeover`: every
//! message is compressed on its own, so one broadcast is compressed once and the same bytes go
//! to every client that negotiated the extension, and no idle connection holds a compression
//! window (each thread keeps one compressor and one decompressor, reset for every message).

use crate::transport::TransportError;
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;
use std::sync::OnceLock;

/// The hub's permessage-deflate policy ([`HubConfig::deflate`](crate::HubConfig::deflate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Whether the extension is negotiated with clients that offer it. Default: `true`.
    pub enabled: bool,
    /// Messages shorter than this go uncompressed. Default: 0, every message is compressed,
    /// as browsers do: a broadcast is compressed once whatever its audience, and JSON of a
    /// few dozen bytes still shrinks. A threshold (say 128) saves CPU where short messages
    /// go to one client at a time. A message at or over it is always sent compressed, even
    /// when deflate gains nothing (a few bytes at most), so the receiver never has to tell.
    pub threshold: usize,
    /// The zlib compression level, 1 (fastest) to 9 (smallest). Default: 6, zlib's own
    /// default (and that of Node's `ws` and Python's `websockets`): 1 KiB of ticker JSON goes
    /// out at 39 % of its size (47 % at level 1), and a broadcast pays for it once, not once
    /// per client. Lower it where many messages go to one client each.
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 0,
            level: 6,
        }
    }
}

impl DeflateConfig {
    /// permessage-deflate switched off: the 101 never names it.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Set [`Self::threshold`].
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Set [`Self::level`] (clamped to 1..=9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.clamp(1, 9);
        self
    }
}

/// permessage-deflate as agreed with one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deflate {
    /// The LZ77 window the server compresses with, as log2 (9..=15): 15 unless the client
    /// asked for less (`server_max_window_bits`).
    pub window_bits: u8,
    /// Whether the client asked for `server_max_window_bits`: the response then names it.
    pub(crate) window_requested: bool,
    /// Compression level.
    pub level: u32,
    /// Messages shorter than this go uncompressed.
    pub threshold: usize,
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response_header(&self) -> String {
        let mut header = String::from(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        );
        if self.window_requested {
            header.push_str(&format!("; server_max_window_bits={}", self.window_bits));
        }
        header
    }

    /// Whether this connection can use the one compressed form a broadcast shares
    /// ([`Deflated`]): it compresses with the full window.
    pub fn shares_broadcasts(&self) -> bool {
        self.window_bits == 15
    }

    /// `payload` compressed for this client, or `None` when it goes uncompressed (under the
    /// threshold).
    pub fn compress(&self, payload: &[u8]) -> Option<Bytes> {
        if payload.len() < self.threshold {
            return None;
        }
        compress(payload, self.level, self.window_bits)
    }
}

/// Picks the first acceptable permessage-deflate offer among the request's
/// `Sec-WebSocket-Extensions` header values (RFC 7692 §5), or `None`.
///
/// An offer is declined when a parameter is unknown, repeated or out of range, or when it asks
/// for a window under 512 bytes (`server_max_window_bits=8`, which zlib cannot honour).
///
/// ```
/// use hub_core::codec::{negotiate, DeflateConfig};
///
/// let offer: &[u8] = b"permessage-deflate; client_max_window_bits";
/// let agreed = negotiate([offer].into_iter(), &DeflateConfig::default()).unwrap();
/// assert_eq!(
///     agreed.response_header(),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
/// );
/// ```
pub fn negotiate<'a>(
    headers: impl Iterator<Item = &'a [u8]>,
    config: &DeflateConfig,
) -> Option<Deflate> {
    if !config.enabled {
        return None;
    }
    for value in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        for offer in split_outside_quotes(value, ',') {
            let mut parts = split_outside_quotes(offer, ';').into_iter();
            let name = parts.next().unwrap_or("").trim();
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                continue;
            }
            if let Some(agreed) = accept_offer(parts, config) {
                return Some(agreed);
            }
        }
    }
    None
}

fn accept_offer<'a>(
    params: impl Iterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<Deflate> {
    let mut seen = [false; 4];
    let mut agreed = Deflate {
        window_bits: 15,
        window_requested: false,
        level: config.level.clamp(1, 9),
        threshold: config.threshold,
    };
    for param in params {
        let (key, value) = match param.split_once('=') {
            Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        let slot = match key {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match (slot, value) {
            (0 | 1, None) => {}
            (2, Some(bits)) => {
                let bits = window_bits(bits)?;
                if bits < 9 {
                    return None;
                }
                agreed.window_bits = bits;
                agreed.window_requested = true;
            }
            (3, None) => {}
            (3, Some(bits)) => {
                window_bits(bits)?;
            }
            _ => return None,
        }
    }
    Some(agreed)
}

/// A window size parameter: 8..=15, digits only.
fn window_bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(value),
    }
}

fn split_outside_quotes(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    parts
}

/// One message's compressed form, computed at most once and shared by every recipient that
/// negotiated permessage-deflate with the full window: a broadcast to ten thousand such clients
/// is compressed once.
#[derive(Debug, Default)]
pub struct Deflated(OnceLock<Option<Bytes>>);

/// A cache is derived from its message and is no part of its identity: any two are equal, so
/// an [`Outgoing`](crate::Outgoing) compares by its message and id.
impl PartialEq for Deflated {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Deflated {}

impl Deflated {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The compressed form of `payload` (which must be the message this cache was made for),
    /// computing it on the first call; `None` when it goes uncompressed.
    pub fn get(&self, payload: &[u8], deflate: &Deflate) -> Option<&Bytes> {
        self.0.get_or_init(|| deflate.compress(payload)).as_ref()
    }
}

/// The 4 bytes every flushed deflate block ends with, which RFC 7692 leaves off the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    /// One compressor per (level, window) a thread has used, reset after every message.
    static COMPRESSORS: RefCell<Vec<(u32, u8, Compress)>> = const { RefCell::new(Vec::new()) };
    /// One decompressor, reset for every message (the client resets its context too).
    static DECOMPRESSOR: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Compresses one message on its own (no context before or after it), without the trailing
/// `00 00 ff ff` (RFC 7692 §7.2.1). `None` only if the compressor fails.
pub fn compress(payload: &[u8], level: u32, window_bits: u8) -> Option<Bytes> {
    COMPRESSORS.with(|cell| {
        let mut compressors = cell.borrow_mut();
        let index = match compressors
            .iter()
            .position(|(l, w, _)| *l == level && *w == window_bits)
        {
            Some(index) => index,
            None => {
                let bits = window_bits.clamp(9, 15);
                let compress = Compress::new_with_window_bits(Compression::new(level), false, bits);
                compressors.push((level, window_bits, compress));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].2;
        let result = compress_with(compressor, payload);
        compressor.reset();
        result
    })
}

fn compress_with(compressor: &mut Compress, payload: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let start = compressor.total_in();
    loop {
        let consumed = (compressor.total_in() - start) as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        compressor
            .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
        let consumed = (compressor.total_in() - start) as usize;
        // done when everything went in and the flush did not run out of room
        if consumed == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&TAIL) {
        return None;
    }
    out.truncate(out.len() - TAIL.len());
    Some(Bytes::from(out))
}

/// Inflates one compressed message (RFC 7692 §7.2.2), failing as soon as it would exceed
/// `limit` bytes: a small frame that inflates to gigabytes costs at most `limit` bytes.
pub(crate) fn inflate(data: &[u8], limit: usize) -> Result<Bytes, TransportError> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let decompressor = slot.get_or_insert_with(|| Decompress::new(false));
        decompressor.reset(false);
        let result = inflate_with(decompressor, data, limit);
        decompressor.reset(false);
        result
    })
}

fn inflate_with(d: &mut Decompress, data: &[u8], limit: usize) -> Result<Bytes, TransportError> {
    let invalid = || TransportError::Protocol("invalid compressed data".to_string());
    let mut out: Vec<u8> = Vec::with_capacity(data.len().saturating_mul(3).clamp(64, limit + 1));
    'inputs: for input in [data, &TAIL[..]] {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                let room = (limit + 1).saturating_sub(out.len());
                if room == 0 {
                    return Err(TransportError::TooBig);
                }
                out.reserve_exact(out.len().max(4096).min(room));
            }
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|_| invalid())?;
            let consumed = (d.total_in() - in_before) as usize;
            let produced = d.total_out() - out_before;
            pos += consumed;
            if out.len() > limit {
                return Err(TransportError::TooBig);
            }
            if status == Status::StreamEnd {
                break 'inputs;
            }
            let room_left = out.len() < out.capacity();
            if pos == input.len() && room_left {
                break; // all in, and the output did not run out of room
            }
            if consumed == 0 && produced == 0 && room_left {
                return Err(invalid()); // stuck with room to spare
            }
        }
    }
    Ok(Bytes::from(out))
}
