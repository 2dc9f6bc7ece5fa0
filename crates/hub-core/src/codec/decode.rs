//! The read side: bytes in, [`Incoming`] frames out.

use super::deflate::inflate;
use crate::message::{CloseFrame, Message, Text};
use crate::transport::{Incoming, TransportError};
use bytes::{Bytes, BytesMut};
use std::io::Cursor;
use tungstenite::protocol::frame::coding::{CloseCode as WsCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Decodes a server's inbound WebSocket stream (RFC 6455 §5, and RFC 7692 when
/// permessage-deflate was negotiated): bytes in, whole messages and control frames out.
///
/// It does no I/O and reads no clock. It holds no buffer between messages: a message's bytes are
/// gathered into one allocation sized from its first frame header and handed over whole, so an
/// idle connection costs the size of this struct and nothing on the heap.
///
/// Every rule the server must enforce is checked, on the header where it can be:
/// masking, reserved bits and opcodes, continuation order, control frames (final, ≤ 125
/// bytes, interleaved between fragments), close codes and close reasons, the 2^63 length, and
/// the message limit (1009) on each header as fragments arrive and on the inflated size. Text
/// is validated as UTF-8 as it arrives, so an invalid byte fails the connection (1007) at once,
/// not at the end of a long message (a compressed message is validated once inflated).
///
/// ```
/// use hub_core::codec::Decoder;
/// use hub_core::{Incoming, Message};
///
/// let mut decoder = Decoder::new(1024, false);
/// // a masked text frame "Hi" (mask 0x01020304), split across two reads
/// let frame = [0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2];
/// let mut input = &frame[..5];
/// assert_eq!(decoder.decode(&mut input)?, None);
/// let mut input = &frame[5..];
/// assert_eq!(decoder.decode(&mut input)?, Some(Incoming::Message(Message::from("Hi"))));
/// # Ok::<(), hub_core::TransportError>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    /// The message limit, in bytes (inflated, for a compressed message).
    limit: usize,
    /// Whether permessage-deflate was negotiated: RSV1 then marks a compressed message.
    deflate: bool,
    /// A frame header split across reads.
    head: [u8; 14],
    head_len: u8,
    /// The frame whose payload is being read.
    frame: Option<FramePayload>,
    /// The data message being gathered, across fragments.
    message: Option<Box<Partial>>,
    /// A control frame's payload (at most 125 bytes).
    control: Vec<u8>,
    /// The peer's close frame has been read: what follows it is ignored.
    closed: bool,
}

#[derive(Debug, Clone, Copy)]
struct FramePayload {
    remaining: u64,
    mask: [u8; 4],
    /// Where in the mask the next payload byte falls.
    phase: usize,
    kind: FrameKind,
    fin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Data,
    Ping,
    Pong,
    Close,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    buf: BytesMut,
    /// Bytes of `buf` known to be valid UTF-8 (text, uncompressed).
    valid: usize,
}

/// The most a message's buffer is given before its bytes arrive.
const INITIAL_CAPACITY: usize = 16 * 1024;

fn protocol(reason: &str) -> TransportError {
    TransportError::Protocol(reason.to_string())
}

impl Decoder {
    /// A decoder that accepts messages up to `max_message_size` bytes and, when `deflate` is
    /// set (permessage-deflate was negotiated, with `client_no_context_takeover`), compressed
    /// messages.
    pub fn new(max_message_size: usize, deflate: bool) -> Self {
        Self {
            limit: max_message_size,
            deflate,
            head: [0; 14],
            head_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            closed: false,
        }
    }

    /// Whether a message is partly read: a frame header, payload or fragment is pending.
    pub fn is_mid_message(&self) -> bool {
        self.head_len > 0 || self.frame.is_some() || self.message.is_some()
    }

    /// Consumes bytes from the front of `input` until one frame or message is complete (then
    /// returned, with the rest of `input` left for the next call) or `input` is used up
    /// (`Ok(None)`: call again with more bytes).
    ///
    /// After the peer's close frame, input is consumed and ignored.
    ///
    /// # Errors
    /// [`TransportError::Protocol`] (1002), [`TransportError::TooBig`] (1009) or
    /// [`TransportError::InvalidUtf8`] (1007); the stream cannot be decoded further.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Incoming>, TransportError> {
        loop {
            if self.closed {
                *input = &[];
                return Ok(None);
            }
            let Some(mut frame) = self.frame else {
                if input.is_empty() {
                    return Ok(None);
                }
                match self.read_header(input)? {
                    Some(frame) if frame.remaining == 0 => {
                        if let Some(event) = self.finish(frame)? {
                            return Ok(Some(event));
                        }
                    }
                    Some(frame) => self.frame = Some(frame),
                    None => return Ok(None),
                }
                continue;
            };
            if input.is_empty() {
                return Ok(None);
            }
            let n = usize::try_from(frame.remaining).map_or(input.len(), |r| r.min(input.len()));
            let (chunk, rest) = input.split_at(n);
            *input = rest;
            let target = match frame.kind {
                FrameKind::Data => match self.message.as_deref_mut() {
                    Some(partial) => &mut partial.buf,
                    None => return Err(protocol("data without a message")),
                },
                _ => {
                    // a control frame: at most 125 bytes, checked on its header
                    let start = self.control.len();
                    self.control.extend_from_slice(chunk);
                    unmask(&mut self.control[start..], frame.mask, frame.phase);
                    frame.phase = (frame.phase + n) % 4;
                    frame.remaining -= n as u64;
                    self.frame = (frame.remaining > 0).then_some(frame);
                    if frame.remaining == 0 {
                        if let Some(event) = self.finish(frame)? {
                            return Ok(Some(event));
                        }
                    }
                    continue;
                }
            };
            let start = target.len();
            target.extend_from_slice(chunk);
            unmask(&mut target[start..], frame.mask, frame.phase);
            frame.phase = (frame.phase + n) % 4;
            frame.remaining -= n as u64;
            self.check_text()?;
            self.frame = (frame.remaining > 0).then_some(frame);
            if frame.remaining == 0 {
                if let Some(event) = self.finish(frame)? {
                    return Ok(Some(event));
                }
            }
        }
    }

    /// Reads a frame header from `input` (possibly completing one split across reads) and
    /// checks it. `None`: more bytes are needed.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<FramePayload>, TransportError> {
        let have = usize::from(self.head_len);
        let (header, length) = if have == 0 && input.len() >= 2 && input.len() >= header_len(input)
        {
            let len = header_len(input);
            let parsed = parse(&input[..len])?;
            *input = &input[len..];
            parsed
        } else {
            // gather the header in `head`: first its two fixed bytes, then the rest
            while usize::from(self.head_len) < 2 && !input.is_empty() {
                self.head[usize::from(self.head_len)] = input[0];
                self.head_len += 1;
                *input = &input[1..];
            }
            if self.head_len < 2 {
                return Ok(None);
            }
            let need = header_len(&self.head);
            let have = usize::from(self.head_len);
            let take = (need - have).min(input.len());
            self.head[have..have + take].copy_from_slice(&input[..take]);
            *input = &input[take..];
            self.head_len += take as u8;
            if usize::from(self.head_len) < need {
                return Ok(None);
            }
            self.head_len = 0;
            parse(&self.head[..need])?
        };
        self.check_header(&header, length).map(Some)
    }

    fn check_header(
        &mut self,
        header: &FrameHeader,
        length: u64,
    ) -> Result<FramePayload, TransportError> {
        if header.rsv2 || header.rsv3 {
            return Err(protocol("reserved bits set"));
        }
        let Some(mask) = header.mask else {
            return Err(protocol("unmasked client frame"));
        };
        if length > i64::MAX as u64 {
            return Err(protocol("frame length over 2^63"));
        }
        let kind = match header.opcode {
            OpCode::Control(control) => {
                if !header.is_final {
                    return Err(protocol("fragmented control frame"));
                }
                if length > 125 {
                    return Err(protocol("control frame over 125 bytes"));
                }
                if header.rsv1 {
                    return Err(protocol("reserved bit on a control frame"));
                }
                match control {
                    Control::Close => FrameKind::Close,
                    Control::Ping => FrameKind::Ping,
                    Control::Pong => FrameKind::Pong,
                    Control::Reserved(_) => return Err(protocol("reserved opcode")),
                }
            }
            OpCode::Data(data) => {
                self.start_data(data, header.rsv1, length)?;
                FrameKind::Data
            }
        };
        if kind != FrameKind::Data {
            self.control = Vec::with_capacity(length as usize);
        }
        Ok(FramePayload {
            remaining: length,
            mask,
            phase: 0,
            kind,
            fin: header.is_final,
        })
    }

    /// Checks a data frame against the message in progress and the limit; starts a message.
    fn start_data(&mut self, data: Data, rsv1: bool, length: u64) -> Result<(), TransportError> {
        let (plain, compressed) = (self.wire_limit(false), self.wire_limit(true));
        match (data, self.message.as_deref()) {
            (Data::Continue, Some(partial)) => {
                if rsv1 {
                    return Err(protocol("reserved bit on a continuation frame"));
                }
                let limit = if partial.compressed {
                    compressed
                } else {
                    plain
                };
                if (partial.buf.len() as u64).saturating_add(length) > limit as u64 {
                    return Err(TransportError::TooBig);
                }
            }
            (Data::Continue, None) => return Err(protocol("continuation without a message")),
            (Data::Text | Data::Binary, Some(_)) => {
                return Err(protocol("new message before the last one ended"))
            }
            (Data::Text | Data::Binary, None) => {
                if rsv1 && !self.deflate {
                    return Err(protocol("compressed frame without permessage-deflate"));
                }
                let limit = if rsv1 { compressed } else { plain };
                if length > limit as u64 {
                    return Err(TransportError::TooBig);
                }
                // Sized from the header, but never more up front than a small read brings:
                // a header alone must not make the server commit the message's whole size.
                self.message = Some(Box::new(Partial {
                    text: data == Data::Text,
                    compressed: rsv1,
                    buf: BytesMut::with_capacity((length as usize).min(INITIAL_CAPACITY)),
                    valid: 0,
                }));
            }
            (Data::Reserved(_), _) => return Err(protocol("reserved opcode")),
        }
        Ok(())
    }

    /// The most bytes a message may take on the wire: the limit, or for a compressed message
    /// the limit plus deflate's worst-case overhead (stored blocks: 5 bytes per 16 KiB).
    fn wire_limit(&self, compressed: bool) -> usize {
        if compressed {
            self.limit
                .saturating_add(self.limit / 1024 * 5)
                .saturating_add(64)
        } else {
            self.limit
        }
    }

    /// Validates the text received so far, leaving an incomplete character at the end for the
    /// next fragment.
    fn check_text(&mut self) -> Result<(), TransportError> {
        let Some(partial) = self.message.as_deref_mut() else {
            return Ok(());
        };
        if !partial.text || partial.compressed {
            return Ok(());
        }
        match std::str::from_utf8(&partial.buf[partial.valid..]) {
            Ok(_) => partial.valid = partial.buf.len(),
            Err(e) if e.error_len().is_some() => return Err(TransportError::InvalidUtf8),
            Err(e) => partial.valid += e.valid_up_to(),
        }
        Ok(())
    }

    /// A frame's payload is complete: returns the event it makes, if any.
    fn finish(&mut self, frame: FramePayload) -> Result<Option<Incoming>, TransportError> {
        self.frame = None;
        match frame.kind {
            FrameKind::Data => {
                if !frame.fin {
                    return Ok(None);
                }
                let Some(partial) = self.message.take() else {
                    return Err(protocol("data without a message"));
                };
                self.message_done(*partial).map(Some)
            }
            FrameKind::Ping => Ok(Some(Incoming::Ping(self.take_control()))),
            FrameKind::Pong => Ok(Some(Incoming::Pong(self.take_control()))),
            FrameKind::Close => {
                let payload = std::mem::take(&mut self.control);
                let close = close_frame(&payload)?;
                self.closed = true;
                self.message = None;
                Ok(Some(Incoming::Close(close)))
            }
        }
    }

    fn take_control(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.control))
    }

    fn message_done(&mut self, partial: Partial) -> Result<Incoming, TransportError> {
        let payload = if partial.compressed {
            inflate(&partial.buf, self.limit)?
        } else {
            partial.buf.freeze()
        };
        let message = if partial.text {
            if partial.compressed {
                Text::from_bytes(payload).map_err(|_| TransportError::InvalidUtf8)?
            } else {
                if partial.valid != payload.len() {
                    return Err(TransportError::InvalidUtf8);
                }
                // SAFETY: `check_text` validated every byte of the payload as UTF-8.
                #[allow(unsafe_code)]
                unsafe {
                    Text::from_bytes_unchecked(payload)
                }
            }
            .into()
        } else {
            Message::Binary(payload)
        };
        Ok(Incoming::Message(message))
    }
}

/// The length of the frame header that starts with `first` (at least 2 bytes).
fn header_len(first: &[u8]) -> usize {
    let extra = match first[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + extra + if first[1] & 0x80 != 0 { 4 } else { 0 }
}

fn parse(bytes: &[u8]) -> Result<(FrameHeader, u64), TransportError> {
    match FrameHeader::parse(&mut Cursor::new(bytes)) {
        Ok(Some(parsed)) => Ok(parsed),
        Ok(None) => Err(protocol("truncated frame header")),
        Err(error) => Err(TransportError::Protocol(error.to_string())),
    }
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, TransportError> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol("close frame with a one-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !WsCode::from(code).is_allowed() {
                return Err(protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| TransportError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code: code.into(),
                reason: Text::from(reason),
            }))
        }
    }
}

/// XORs `bytes` with `mask`, starting at mask byte `phase`.
fn unmask(bytes: &mut [u8], mask: [u8; 4], phase: usize) {
    let mut key = [0u8; 8];
    for (i, k) in key.iter_mut().enumerate() {
        *k = mask[(phase + i) % 4];
    }
    let key = u64::from_ne_bytes(key);
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ key).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[(phase + i) % 4];
    }
}
