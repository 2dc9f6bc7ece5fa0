//! What an adapter plugs into the connection driver: a framed transport and a timer.

use crate::history::Missed;
use crate::message::{CloseCode, CloseFrame, Message};
use bytes::Bytes;
use std::future::Future;
use std::time::Instant;

/// A frame read from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete data message.
    Message(Message),
    /// A ping; the transport answers it with a pong by itself (the driver flushes promptly).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer started or answered the close handshake.
    Close(Option<CloseFrame>),
}

/// A frame the driver asks the transport to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A data message, with its history id when the hub keeps a history (SSE writes it as
    /// `id:`; a WebSocket has nowhere to put it).
    Message {
        /// The message.
        message: Message,
        /// Its id in the hub's history.
        id: Option<u64>,
        /// The compressed form every recipient of its broadcast shares, for a transport that
        /// negotiated permessage-deflate: computed by the first that needs it
        /// ([`Deflated::get`](crate::codec::Deflated::get)). `None` for a message sent to
        /// one client, or too short to compress.
        deflated: Option<std::sync::Arc<crate::codec::Deflated>>,
    },
    /// A resuming client missed messages the history no longer holds. Written before the
    /// replay; see the README's "Resume" section for each transport's encoding.
    Missed(Missed),
    /// A keepalive ping.
    Ping(Bytes),
    /// A close frame: the last frame the driver writes.
    Close(CloseFrame),
}

/// Why a transport failed. The driver maps each kind to the close code it answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A message or frame exceeded the size limit. Fatal: the driver closes with 1009.
    #[error("message too big")]
    TooBig,
    /// A text message was not valid UTF-8. Fatal: the driver closes with 1007.
    #[error("invalid UTF-8 in a text message")]
    InvalidUtf8,
    /// The peer broke the protocol (unmasked frame, oversized control frame, bad opcode, ...).
    /// Fatal: the driver closes with 1002.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection is gone (reset, EOF without a close frame, write after close). Fatal: the
    /// driver drops the connection without a close frame.
    #[error("connection closed")]
    Closed,
    /// Any other I/O error. Fatal, as [`TransportError::Closed`].
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl TransportError {
    /// The close frame to answer with, or `None` when the connection is beyond answering.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        match self {
            TransportError::TooBig => Some(CloseFrame::from_static(
                CloseCode::TOO_BIG,
                "message too big",
            )),
            TransportError::InvalidUtf8 => Some(CloseFrame::from_static(
                CloseCode::INVALID_PAYLOAD,
                "invalid UTF-8",
            )),
            TransportError::Protocol(_) => Some(CloseFrame::from_static(
                CloseCode::PROTOCOL,
                "protocol error",
            )),
            TransportError::Closed | TransportError::Io(_) => None,
        }
    }
}

/// A framed, full-duplex WebSocket transport: a `Stream` of [`Incoming`] frames and a `Sink` of
/// [`Outgoing`] frames. `poll_flush` must push everything started so far to the socket; the
/// driver starts every queued frame and then flushes once, so frames go out in batches.
///
/// A transport need not be `Send`: a [`Connection`](crate::Connection) over a `!Send`
/// transport (actix-web's request payload) runs on its thread's local executor.
pub trait Transport:
    futures_core::Stream<Item = Result<Incoming, TransportError>>
    + futures_sink::Sink<Outgoing, Error = TransportError>
    + Unpin
    + 'static
{
    /// Bytes the socket has accepted so far, a count that only grows. The driver drops a
    /// connection as stalled only when this has not moved for
    /// [`HubConfig::write_wait`](crate::HubConfig::write_wait) while writes were pending, so a
    /// slow link that keeps moving is left to the queue and eviction. A transport that cannot
    /// tell keeps the default, 0: a stall then runs from the first blocked write until
    /// everything is flushed.
    fn bytes_written(&self) -> u64 {
        0
    }
}

/// The runtime's clock and sleep, supplied by the adapter. The core never reads a clock itself,
/// so tests drive it with a virtual one.
pub trait Timer: Send + Sync + 'static {
    /// A sleep that completes at its deadline.
    type Sleep: Future<Output = ()> + Send + 'static;
    /// The current instant.
    fn now(&self) -> Instant;
    /// A sleep until `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;
}
