//! The WebSocket codec: RFC 6455 framing and RFC 7692 permessage-deflate, sans I/O.
//!
//! The [`Decoder`] takes the bytes a server reads and returns whole messages and control
//! frames ([`Incoming`](crate::Incoming)); the `encode_*` functions append the frames a server
//! writes to a buffer the caller owns. Neither does I/O nor reads a clock, so adapters on any
//! runtime share them, and tests drive them byte by byte.
//!
//! tungstenite stays the protocol's vocabulary (frame headers, opcodes, close codes) and the
//! independent peer in the tests; the per-connection state, the buffers and the extension are
//! the hub's.
//!
//! ```
//! use bytes::BytesMut;
//! use hub_core::codec::encode_message;
//! use hub_core::Message;
//!
//! let mut out = BytesMut::new();
//! encode_message(&mut out, &Message::from("Hi"), None);
//! assert_eq!(&out[..], &[0x81, 2, b'H', b'i']);
//! ```

mod decode;
mod deflate;

pub use decode::Decoder;
pub use deflate::{compress, negotiate, Deflate, DeflateConfig, Deflated};

use crate::message::{CloseFrame, Message};
use bytes::{BufMut, BytesMut};

/// The opcode of a text frame.
const TEXT: u8 = 0x1;
/// The opcode of a binary frame.
const BINARY: u8 = 0x2;
/// The opcode of a close frame.
const CLOSE: u8 = 0x8;
/// The opcode of a ping frame.
pub const PING: u8 = 0x9;
/// The opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// Appends a frame header: FIN set, RSV1 as given, unmasked (a server's frames are never
/// masked).
fn encode_header(out: &mut BytesMut, opcode: u8, rsv1: bool, len: usize) {
    out.reserve(len + 10);
    out.put_u8(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(n);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends `message` as one frame: its `compressed` form with RSV1 set (permessage-deflate),
/// or its payload as it is.
pub fn encode_message(out: &mut BytesMut, message: &Message, compressed: Option<&[u8]>) {
    let opcode = if message.is_text() { TEXT } else { BINARY };
    let payload = compressed.unwrap_or(message.payload());
    encode_header(out, opcode, compressed.is_some(), payload.len());
    out.put_slice(payload);
}

/// Appends a ping ([`PING`]) or pong ([`PONG`]) frame; a payload over 125 bytes is cut to 125.
pub fn encode_control(out: &mut BytesMut, opcode: u8, payload: &[u8]) {
    let payload = &payload[..payload.len().min(125)];
    encode_header(out, opcode & 0x0f, false, payload.len());
    out.put_slice(payload);
}

/// Appends a close frame: `None` is a close without a code (the reply to one without a code).
pub fn encode_close(out: &mut BytesMut, frame: Option<&CloseFrame>) {
    match frame {
        None => encode_header(out, CLOSE, false, 0),
        Some(frame) => {
            let reason = frame.reason.as_bytes();
            let reason = &reason[..reason.len().min(123)];
            encode_header(out, CLOSE, false, 2 + reason.len());
            out.put_u16(frame.code.0);
            out.put_slice(reason);
        }
    }
}
