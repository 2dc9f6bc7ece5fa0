//! # hub-core
//!
//! The runtime-agnostic heart of a real-time hub, ported from Kashvi's `pkg/ws` without its
//! defects: a client registry, broadcast from anywhere, bounded per-client queues with
//! slow-client eviction, a clock-driven keepalive, an origin policy per hub, limits and stats.
//!
//! This crate depends on no async runtime and no web framework. An adapter (`hub-hyper`, ...)
//! validates the upgrade with [`Hub::accept`], answers 101, wraps the upgraded socket in a
//! [`Transport`], and spawns the [`Connection`] future that [`Hub::connect`] returns.
//!
//! ```
//! use hub_core::{Hub, HubConfig, Message, OriginPolicy};
//!
//! // Kashvi: var Chat = ws.NewHub(); go Chat.Run()   — here there is no Run to forget.
//! let chat = Hub::with_config(HubConfig::default().origin(OriginPolicy::SameOrigin))?;
//!
//! // Kashvi: hubs.Chat.OnMessage = func(hub, msg) { hub.Broadcast <- msg.Data }
//! chat.on_message(|hub, msg| {
//!     hub.broadcast(msg.message);
//! });
//!
//! // From anywhere (another task, another thread, plain sync code):
//! chat.broadcast(Message::text(r#"{"type":"update","data":"live score changed"}"#));
//! assert_eq!(chat.client_count(), 0);
//! # Ok::<(), hub_core::ConfigError>(())
//! ```
#![doc(test(attr(deny(warnings))))]

mod backplane;
mod client;
mod config;
mod driver;
mod error;
mod fanout;
mod handshake;
mod history;
mod hub;
mod keepalive;
mod message;
mod notify;
mod options;
mod origin;
mod stats;
mod transport;

pub use backplane::{Backplane, BackplaneState, BackplaneStats, Broadcast, LocalOnly};
pub use client::{Client, ClientId};
pub use config::{ConfigError, HubConfig};
pub use driver::Connection;
pub use error::SendError;
pub use handshake::{host_is_valid, Accept, HttpVersion, Rejection, RequestHead};
pub use history::{HistoryError, Missed, MAX_ID};
pub use hub::{Hub, Inbound, WeakHub};
pub use message::{CloseCode, CloseFrame, Message, Text};
pub use notify::Changed;
pub use options::{ClientKind, ConnectOptions, Liveness};
pub use origin::OriginPolicy;
pub use stats::{DisconnectReason, Stats};
pub use transport::{Incoming, Outgoing, Timer, Transport, TransportError};
