#![doc = include_str!("../README.md")]
//!
//! The parts:
//!
//! - [`Event`] and [`encode_comment`]: an encoder that cannot be tricked into writing a field
//!   the caller did not ask for (CR, LF, CRLF and NUL handled; see [`encode`](crate::Event)).
//! - [`SseStream`]: Kashvi's `sse.New(w, r)` stream — `send(event, json)`, `send_raw`,
//!   `comment`, `is_closed` — safe from several tasks, bounded, with heartbeats.
//! - [`subscribe`]: an SSE subscriber as a member of a [`Hub`](hub_core::Hub): the hub's
//!   broadcasts reach it like a WebSocket client, with the same queue, eviction, stats and
//!   `Last-Event-ID` resume.
//!
//! Adapters hand the request to [`subscribe_request`] (or check it with [`acceptable`] for a
//! bare [`SseStream`]) and answer with [`RESPONSE_HEADERS`] and the body.
#![doc(test(attr(deny(warnings))))]

mod cache;
mod encode;
mod member;
mod negotiate;
mod stream;

pub use encode::{encode_comment, encode_retry, EncodeError, Event};
pub use member::{
    acceptable, admit_request, encode_message, encode_missed, subscribe, subscribe_request,
    SseMember,
};
pub use negotiate::{accepts_event_stream, RESPONSE_HEADERS};
pub use stream::{Closed, SseBody, SseConfig, SseError, SseStream};

/// How a stream behaves on every adapter: negotiation, headers, heartbeats, buffering,
/// errors and how messages are encoded. The root README points here.
#[doc = include_str!("../docs/reference.md")]
pub mod docs {}
