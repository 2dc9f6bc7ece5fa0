//! tokio-tungstenite as a hub-core [`Transport`](hub_core::Transport).
//!
//! tungstenite reads and validates every inbound frame and answers pings and closes. Outbound
//! data frames, which are nearly all the traffic, skip it: they are encoded straight into one
//! write buffer that this transport owns, in order with tungstenite's own frames (which reach
//! the same buffer through [`Shim`]), and that buffer is freed whenever it has been written
//! out. tungstenite would keep its buffer at the size of the largest message it ever sent, for
//! the life of the connection: one 8 KB broadcast cost every idle client 8 KB more.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use hub_core::{CloseFrame, Incoming, Message, Missed, Outgoing, Text, TransportError};
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode as WsCode};
use tokio_tungstenite::WebSocketStream;

/// The socket as tungstenite sees it: reads go straight through; writes are appended to `out`,
/// the transport's single write buffer, and leave only when it is flushed.
#[derive(Debug)]
pub(crate) struct Shim<S> {
    io: S,
    out: BytesMut,
    /// Bytes the socket has accepted so far.
    written: u64,
}

impl<S> Shim<S> {
    /// Wraps a socket.
    pub(crate) fn new(io: S) -> Self {
        Self {
            io,
            out: BytesMut::new(),
            written: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Shim<S> {
    /// Writes `out` to the socket until it is empty (then frees it) or the socket pushes back.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
            self.written += n as u64;
        }
        // an idle connection holds no write buffer at all
        self.out = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shim<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shim<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Appends one unmasked server frame (FIN set) to `out`.
fn encode_frame(out: &mut BytesMut, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.reserve(len + 10);
    out.put_u8(0x80 | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(n);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out.put_slice(payload);
}

/// A tokio-tungstenite WebSocket seen as a hub-core transport.
///
/// Its write buffer has a hard bound, `high_water` plus one frame: data frames and pings wait
/// in `poll_ready` while it is over the mark, and reading pauses too (tungstenite answers
/// every ping it reads with a pong into the same buffer), so a peer that sends pings and
/// never reads cannot grow it; the write wait then ends the connection.
///
/// Its `poll_close` is a lingering close: it flushes what is buffered (the close frame), shuts
/// down the write side, then reads and discards until the peer closes. Without it, input the
/// server never read (say the rest of an oversized message) makes the kernel answer with a
/// reset, and the peer loses the close frame that says why.
#[derive(Debug)]
pub(crate) struct WsTransport<S> {
    ws: WebSocketStream<Shim<S>>,
    /// `poll_ready` pushes back while this much is buffered and the socket will not take it.
    high_water: usize,
    linger: Linger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linger {
    Flush,
    Shutdown,
    Drain,
    Done,
}

impl<S> WsTransport<S> {
    /// Wraps an upgraded WebSocket stream over a [`Shim`]; frames are buffered up to
    /// `high_water` bytes before writes push back. tungstenite's own `write_buffer_size` must be
    /// 0, so its frames reach the shim at once, in order with ours.
    pub(crate) fn new(ws: WebSocketStream<Shim<S>>, high_water: usize) -> Self {
        Self {
            ws,
            high_water,
            linger: Linger::Flush,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    fn out(&mut self) -> &mut BytesMut {
        &mut self.ws.get_mut().out
    }
}

fn map_error(error: tungstenite::Error) -> TransportError {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => TransportError::TooBig,
        E::Utf8(_) => TransportError::InvalidUtf8,
        E::ConnectionClosed | E::AlreadyClosed => TransportError::Closed,
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => TransportError::Closed,
        E::Protocol(p) => TransportError::Protocol(p.to_string()),
        E::Io(e) => match e.kind() {
            ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionAborted => TransportError::Closed,
            _ => TransportError::Io(e),
        },
        other => TransportError::Protocol(other.to_string()),
    }
}

/// The text message a resuming WebSocket client gets when the history no longer reaches back
/// to its last id: `{"type":"missed","last_event_id":N,"first_available":M|null}`.
pub(crate) fn missed_notice(missed: Missed) -> String {
    let first = missed
        .first_available
        .map_or_else(|| "null".to_string(), |id| id.to_string());
    format!(
        r#"{{"type":"missed","last_event_id":{},"first_available":{first}}}"#,
        missed.last_event_id
    )
}

fn text(t: tungstenite::Utf8Bytes) -> Text {
    // SAFETY: tungstenite validated the text message as UTF-8 when it received it.
    #[allow(unsafe_code)]
    unsafe {
        Text::from_bytes_unchecked(Bytes::from(t))
    }
}

fn utf8(t: Text) -> tungstenite::Utf8Bytes {
    // SAFETY: `Text` holds valid UTF-8 by construction.
    #[allow(unsafe_code)]
    unsafe {
        tungstenite::Utf8Bytes::from_bytes_unchecked(t.into_bytes())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsTransport<S> {
    type Item = Result<Incoming, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        use tungstenite::Message as M;
        if self.ws.get_ref().out.len() >= self.high_water {
            // Over the mark: write what the socket takes; read on only once under it (the
            // socket's write readiness wakes this task).
            match self.ws.get_mut().poll_write_out(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(map_error(e.into())))),
                Poll::Pending if self.ws.get_ref().out.len() >= self.high_water => {
                    return Poll::Pending
                }
                Poll::Ready(Ok(())) | Poll::Pending => {}
            }
        }
        let item = match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => Err(map_error(e)),
            Some(Ok(M::Text(t))) => Ok(Incoming::Message(Message::Text(text(t)))),
            Some(Ok(M::Binary(b))) => Ok(Incoming::Message(Message::Binary(b))),
            Some(Ok(M::Ping(p))) => Ok(Incoming::Ping(p)),
            Some(Ok(M::Pong(p))) => Ok(Incoming::Pong(p)),
            Some(Ok(M::Close(frame))) => Ok(Incoming::Close(frame.map(|f| CloseFrame {
                code: u16::from(f.code).into(),
                reason: text(f.reason),
            }))),
            Some(Ok(M::Frame(_))) => Err(TransportError::Protocol("raw frame".into())),
        };
        Poll::Ready(Some(item))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> hub_core::Transport for WsTransport<S> {
    fn bytes_written(&self) -> u64 {
        self.ws.get_ref().written
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outgoing> for WsTransport<S> {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.ws.get_ref().out.len() >= self.high_water {
            // write what the socket takes now; ready again once under the mark
            match self.ws.get_mut().poll_write_out(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(map_error(e.into()))),
                Poll::Ready(Ok(())) => {}
                Poll::Pending if self.ws.get_ref().out.len() >= self.high_water => {
                    return Poll::Pending
                }
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        match item {
            // A WebSocket frame has no id field; applications that want ids in the payload use
            // Hub::broadcast_with.
            Outgoing::Message {
                message: Message::Text(t),
                ..
            } => encode_frame(self.out(), 0x1, t.as_bytes()),
            Outgoing::Message {
                message: Message::Binary(b),
                ..
            } => encode_frame(self.out(), 0x2, &b),
            Outgoing::Missed(missed) => {
                encode_frame(self.out(), 0x1, missed_notice(missed).as_bytes())
            }
            Outgoing::Ping(p) => encode_frame(self.out(), 0x9, &p),
            // The close goes through tungstenite, which then expects the peer's reply.
            Outgoing::Close(f) => {
                let close = tungstenite::Message::Close(Some(tungstenite::protocol::CloseFrame {
                    code: WsCode::from(f.code.0),
                    reason: utf8(f.reason),
                }));
                return Pin::new(&mut self.ws).start_send(close).map_err(map_error);
            }
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tungstenite first moves its pending frames (a pong, a close reply) into the shim; a
        // server that has answered a close gets "closed" back, without tungstenite flushing the
        // shim, so the shim is flushed here in every case.
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(map_error)?;
        Pin::new(self.ws.get_mut())
            .poll_flush(cx)
            .map_err(|e| map_error(e.into()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match self.linger {
                Linger::Flush => {
                    // An error here means the close frame cannot go out: nothing to linger for.
                    match ready!(self.as_mut().poll_flush(cx)) {
                        Ok(()) => self.linger = Linger::Shutdown,
                        Err(_) => self.linger = Linger::Done,
                    }
                }
                Linger::Shutdown => {
                    let io = self.ws.get_mut();
                    let _ = ready!(Pin::new(io).poll_shutdown(cx));
                    self.linger = Linger::Drain;
                }
                Linger::Drain => {
                    let mut buf = [0u8; 1024];
                    let mut read = ReadBuf::new(&mut buf);
                    let io = self.ws.get_mut();
                    match ready!(Pin::new(io).poll_read(cx, &mut read)) {
                        Ok(()) if !read.filled().is_empty() => {}
                        _ => self.linger = Linger::Done,
                    }
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
