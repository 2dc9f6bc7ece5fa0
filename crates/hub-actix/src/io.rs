//! actix-web's request payload and a streaming response, joined into one duplex byte stream,
//! so the same transport, codec and hub driver serve actix as every other adapter.

use actix_web::web::Payload;
use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes waiting for actix to take them before writes push back.
const HIGH_WATER: usize = 64 * 1024;

#[derive(Default)]
struct Outbound {
    bytes: BytesMut,
    /// The writer shut down: the response ends after `bytes`.
    shutdown: bool,
    /// actix dropped the response body: the client is gone.
    gone: bool,
    body: Option<Waker>,
    writer: Option<Waker>,
}

type Shared = Arc<Mutex<Outbound>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Outbound> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server's side of an upgraded actix connection.
pub(crate) struct ActixIo {
    payload: Payload,
    leftover: Bytes,
    out: Shared,
}

/// The response body that carries what [`ActixIo`] writes.
pub(crate) struct ResponseStream {
    out: Shared,
}

pub(crate) fn duplex(payload: Payload) -> (ActixIo, ResponseStream) {
    let out = Shared::default();
    (
        ActixIo {
            payload,
            leftover: Bytes::new(),
            out: out.clone(),
        },
        ResponseStream { out },
    )
}

impl AsyncRead for ActixIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // An empty chunk is not the end of the stream (only `None` is): reading 0 bytes
        // would tell the driver the client left.
        while self.leftover.is_empty() {
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())), // EOF
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, error)))
                }
                Poll::Ready(Some(Ok(bytes))) => self.leftover = bytes,
            }
        }
        let n = self.leftover.len().min(buf.remaining());
        buf.put_slice(&self.leftover[..n]);
        self.leftover.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ActixIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut out = lock(&self.out);
        if out.gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if out.bytes.len() >= HIGH_WATER {
            out.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        out.bytes.extend_from_slice(data);
        if let Some(body) = out.body.take() {
            body.wake();
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = lock(&self.out);
        if out.gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if out.bytes.is_empty() {
            Poll::Ready(Ok(()))
        } else {
            // Flushed once actix has taken the bytes for its socket.
            out.writer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut out = lock(&self.out);
            out.shutdown = true;
            if let Some(body) = out.body.take() {
                body.wake();
            }
        }
        self.poll_flush(cx)
    }
}

impl Drop for ActixIo {
    fn drop(&mut self) {
        let mut out = lock(&self.out);
        out.shutdown = true;
        if let Some(body) = out.body.take() {
            body.wake();
        }
    }
}

impl Stream for ResponseStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut out = lock(&self.out);
        if !out.bytes.is_empty() {
            let chunk = out.bytes.split().freeze();
            if let Some(writer) = out.writer.take() {
                writer.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        if out.shutdown {
            return Poll::Ready(None);
        }
        out.body = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        let mut out = lock(&self.out);
        out.gone = true;
        if let Some(writer) = out.writer.take() {
            writer.wake();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::dev::Payload as DevPayload;
    use actix_web::error::PayloadError;
    use actix_web::{test::TestRequest, FromRequest};
    use futures_util::FutureExt;
    use tokio::io::AsyncReadExt;

    /// A payload that yields `chunks`, as actix's request payload would.
    fn payload(chunks: Vec<&'static [u8]>) -> Payload {
        let (req, _) = TestRequest::default().to_http_parts();
        let items: Vec<Result<Bytes, PayloadError>> = chunks
            .into_iter()
            .map(|c| Ok(Bytes::from_static(c)))
            .collect();
        let stream: actix_http::BoxedPayloadStream = Box::pin(futures_util::stream::iter(items));
        let mut dev = DevPayload::from(stream);
        Payload::from_request(&req, &mut dev)
            .now_or_never()
            .unwrap()
            .unwrap()
    }

    #[test]
    fn an_empty_chunk_from_actix_is_not_the_end_of_the_stream() {
        let (mut io, _body) = duplex(payload(vec![b"", b"after", b"", b" the gap"]));
        let mut got = Vec::new();
        actix_web::rt::System::new()
            .block_on(io.read_to_end(&mut got))
            .unwrap();
        assert_eq!(got, b"after the gap");
    }
}
