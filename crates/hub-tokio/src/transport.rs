//! tokio-tungstenite as a hub-core [`Transport`](hub_core::Transport).

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use hub_core::{CloseFrame, Incoming, Message, Missed, Outgoing, Text, TransportError};
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{self, protocol::frame::coding::CloseCode as WsCode};
use tokio_tungstenite::WebSocketStream;

/// A tokio-tungstenite WebSocket seen as a hub-core transport.
///
/// Its `poll_close` is a lingering close: it flushes what is buffered (the close frame), shuts
/// down the write side, then reads and discards until the peer closes. Without it, input the
/// server never read (say the rest of an oversized message) makes the kernel answer with a
/// reset, and the peer loses the close frame that says why.
#[derive(Debug)]
pub struct WsTransport<S> {
    ws: WebSocketStream<S>,
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
    /// Wraps an upgraded WebSocket stream.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        Self {
            ws,
            linger: Linger::Flush,
        }
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
pub fn missed_notice(missed: Missed) -> String {
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

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outgoing> for WsTransport<S> {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.ws).poll_ready(cx).map_err(map_error)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        use tungstenite::Message as M;
        let message = match item {
            // A WebSocket frame has no id field; applications that want ids in the payload use
            // Hub::broadcast_with.
            Outgoing::Message {
                message: Message::Text(t),
                ..
            } => M::Text(utf8(t)),
            Outgoing::Message {
                message: Message::Binary(b),
                ..
            } => M::Binary(b),
            Outgoing::Missed(missed) => M::text(missed_notice(missed)),
            Outgoing::Ping(p) => M::Ping(p),
            Outgoing::Close(f) => M::Close(Some(tungstenite::protocol::CloseFrame {
                code: WsCode::from(f.code.0),
                reason: utf8(f.reason),
            })),
        };
        Pin::new(&mut self.ws)
            .start_send(message)
            .map_err(map_error)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(map_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match self.linger {
                Linger::Flush => {
                    // An error here means the close frame cannot go out: nothing to linger for.
                    match ready!(Pin::new(&mut self.ws).poll_flush(cx)) {
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
