#![doc = include_str!("../README.md")]
//!
//! This crate depends on no async runtime and no web framework. An adapter (`hub-hyper`, ...)
//! validates the upgrade with [`Hub::accept`], answers 101, wraps the upgraded socket in a
//! [`Transport`], and spawns the [`Connection`] future that [`Hub::connect`] returns.
#![doc(test(attr(deny(warnings))))]

mod auth;
mod authorize;
mod backplane;
mod broadcast;
mod catch_up;
mod client;
pub mod codec;
mod config;
mod delivery;
mod driver;
mod error;
mod fanout;
mod handshake;
mod history;
mod hooks;
mod hub;
mod keepalive;
mod local;
mod message;
mod notify;
mod options;
mod origin;
mod rate;
mod state;
mod stats;
mod topic_history;
mod topic_name;
mod topics;
mod transport;

pub use auth::{Admission, AuthRequest, Refusal, MAX_PROTOCOLS, MAX_PROTOCOL_BYTES};
pub use authorize::{AuthFuture, Authorizer};
pub use backplane::{Backplane, BackplaneState, BackplaneStats, Broadcast, LocalOnly};
pub use config::{ConfigError, HubConfig};
pub use driver::Connection;
pub use error::SendError;
pub use handshake::{
    host_is_valid, Accept, HttpVersion, ProtocolNotOffered, Rejection, RequestHead,
};
pub use history::{HistoryError, Missed, MAX_ID};
pub use local::Local;
pub use message::{CloseCode, CloseFrame, Message, Text};
pub use notify::Changed;
pub use options::{ClientKind, ConnectOptions, Liveness};
pub use origin::OriginPolicy;
pub use rate::{RateLimit, RateLimitPolicy};
pub use state::{Client, ClientId, Hub, Inbound, WeakHub};
pub use stats::{DisconnectReason, Stats};
pub use topic_name::{validate_topic, Subscribed, TopicError, MAX_TOPIC_LEN};
pub use topics::Resumed;
pub use transport::{Incoming, Outgoing, Timer, Transport, TransportError};

/// The reference the root README points to, kept here so that there is one copy: defaults,
/// the answer to every upgrade request, close codes, the concurrency contract, slow clients
/// and stats.
#[doc = include_str!("../docs/reference.md")]
pub mod docs {}
