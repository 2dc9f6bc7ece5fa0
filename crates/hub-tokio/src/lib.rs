#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

mod signal;
mod transport;

pub use signal::shutdown_signal;

use transport::WsTransport;

use hub_core::{ConnectOptions, DisconnectReason, Hub, Timer};
use std::pin::Pin;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

/// tokio's clock and sleep. Under `tokio::time::pause()` the hub runs on virtual time.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTimer;

impl Timer for TokioTimer {
    type Sleep = Pin<Box<tokio::time::Sleep>>;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// Socket buffer tuning. These are memory/throughput trade-offs, not policy: limits come
/// from the hub's [`HubConfig`](hub_core::HubConfig).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct WsConfig {
    /// Bytes taken from the socket per read call, at most 16 KiB. They land in a buffer on the
    /// stack, so this costs an idle connection nothing; larger reads take large messages in
    /// fewer syscalls. Default: 8 KiB.
    pub read_buffer_size: usize,
    /// Outgoing frames collect in the transport's own buffer and leave in one write per flush;
    /// past this many bytes the transport pushes back until the socket takes them, and stops
    /// reading (so pongs to a flood of pings cannot pile up either): the buffer never holds
    /// more than this plus one frame. It is freed whenever it has been written out, so it
    /// costs nothing while idle. Default: 64 KiB.
    pub write_buffer_size: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            read_buffer_size: 8 * 1024,
            write_buffer_size: 64 * 1024,
        }
    }
}

impl WsConfig {
    /// Set [`Self::read_buffer_size`] (clamped to 1 byte..16 KiB).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.clamp(1, transport::MAX_READ_CHUNK);
        self
    }

    /// Set [`Self::write_buffer_size`].
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }
}

/// Serves an already-upgraded socket (the 101 has been sent) as a client of `hub`, until the
/// connection ends. Adapters spawn it.
///
/// `options` carries the client's metadata (read with
/// [`Client::data`](hub_core::Client::data)), its resume point, and the extensions the 101
/// agreed ([`ConnectOptions::accepted`]).
pub async fn serve<S>(
    hub: Hub,
    io: S,
    options: ConnectOptions,
    config: WsConfig,
) -> DisconnectReason
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    serve_partially_read(hub, io, Vec::new(), options, config).await
}

/// [`serve`] for a socket the server already read past the request head: `already_read` holds
/// those bytes, the start of the WebSocket stream.
pub async fn serve_partially_read<S>(
    hub: Hub,
    io: S,
    already_read: Vec<u8>,
    options: ConnectOptions,
    config: WsConfig,
) -> DisconnectReason
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    install_spawner(&hub);
    let setup = transport::Setup {
        max_message_size: hub.config().max_message_size,
        read_chunk: config.read_buffer_size,
        high_water: config.write_buffer_size,
        deflate: options.deflate,
    };
    let transport = WsTransport::new(io, already_read, setup);
    hub.connect(transport, TokioTimer, options).await
}

/// Makes the current tokio runtime the hub's spawner unless the application set one
/// ([`Hub::set_default_spawner`]): an async disconnect hook of a connection that is dropped
/// (an SSE body the server discards) then still runs. Adapters call it for every client; after
/// the first it costs a read lock. Outside a runtime it does nothing.
pub fn install_spawner(hub: &Hub) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        hub.set_default_spawner(move |future| {
            runtime.spawn(future);
        });
    }
}
