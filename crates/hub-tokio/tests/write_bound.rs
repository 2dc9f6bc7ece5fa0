//! The write buffer's bound covers every frame: a peer that floods pings and never reads
//! cannot make the server buffer pongs without limit (issue 18, item 4).
#![allow(clippy::unwrap_used, missing_docs)]

use hub_core::{ConnectOptions, DisconnectReason, Hub};
use hub_tokio::WsConfig;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// The server's socket, counting the bytes it reads.
struct CountingReads {
    inner: DuplexStream,
    read: Arc<AtomicUsize>,
}

impl AsyncRead for CountingReads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read
            .fetch_add(buf.filled().len() - before, Ordering::SeqCst);
        r
    }
}

impl AsyncWrite for CountingReads {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A masked client ping with a 125-byte payload (the largest a control frame may carry).
fn ping_frame() -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x89, 0x80 | 125];
    frame.extend_from_slice(&mask);
    frame.extend((0..125).map(|i| b'p' ^ mask[i % 4]));
    frame
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_from_a_peer_that_never_reads_stays_within_the_write_bound() {
    let hub = Hub::new();
    // a 4 KiB pipe: the server's pongs fill it at once, since the peer never reads
    let (server_io, client_io) = tokio::io::duplex(4096);
    let read = Arc::new(AtomicUsize::new(0));
    let io = CountingReads {
        inner: server_io,
        read: read.clone(),
    };
    let config = WsConfig::default();
    let server = tokio::spawn(hub_tokio::serve(
        hub.clone(),
        io,
        ConnectOptions::websocket(),
        config,
    ));
    const PINGS: usize = 5_000;
    let (_client_read, mut client_write) = tokio::io::split(client_io);
    let flood = tokio::spawn(async move {
        let frame = ping_frame();
        for _ in 0..PINGS {
            if client_write.write_all(&frame).await.is_err() {
                break;
            }
        }
        client_write // kept open
    });
    // On the paused clock this returns once nothing can move any more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let taken = read.load(Ordering::SeqCst);
    let pong = 2 + 125;
    // the server read what fills its buffer to the mark (plus the pipe, and one read whose
    // undecoded rest waits in the transport), then stopped reading: the flood waits in the
    // pipe, not in the server's memory
    let bound = config.write_buffer_size + 4096 + config.read_buffer_size + 131;
    assert!(
        taken / 131 * pong <= bound + pong,
        "the server read {taken} bytes of pings ({} pongs owed) against a {} byte mark",
        taken / 131,
        config.write_buffer_size
    );
    assert!(
        !flood.is_finished(),
        "the flood was not held back: all {} bytes were read",
        PINGS * 131
    );
    // nothing moves for the write wait: the connection is dropped as stalled
    assert_eq!(server.await.unwrap(), DisconnectReason::WriteStalled);
    assert_eq!(hub.client_count(), 0);
}
