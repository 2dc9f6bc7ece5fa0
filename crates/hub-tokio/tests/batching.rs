//! Every frame already queued for a client goes out in one flush, not one write per message.
#![allow(clippy::unwrap_used, missing_docs)]

use futures_util::StreamExt;
use hub_core::Hub;
use hub_tokio::WsConfig;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// The server's socket, counting write calls.
struct Counting {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_100_messages_is_written_in_one_write() {
    let hub = Hub::new();
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let io = Counting {
        inner: server_io,
        writes: writes.clone(),
    };
    tokio::spawn(hub_tokio::serve(
        hub.clone(),
        io,
        hub_core::ConnectOptions::websocket(),
        WsConfig::default(),
    ));
    let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    loop {
        let changed = hub.changed();
        if hub.client_count() > 0 {
            break;
        }
        changed.await;
    }
    // On a current-thread runtime the driver cannot run between these calls: all 100 are
    // queued before it wakes.
    for i in 0..100 {
        hub.broadcast(format!("message {i:03}"));
    }
    for i in 0..100 {
        let m = client.next().await.unwrap().unwrap();
        assert_eq!(m.into_text().unwrap().as_str(), format!("message {i:03}"));
    }
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "100 queued frames, one write"
    );
}
