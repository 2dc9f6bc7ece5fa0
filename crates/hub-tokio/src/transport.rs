//! The hub's own WebSocket codec over a tokio socket, as a hub-core
//! [`Transport`](hub_core::Transport).
//!
//! Reads go through a stack buffer into [`Decoder`], which gathers each message in one
//! allocation of its own; bytes read past a complete frame wait in `stash`, which is freed as
//! soon as it is empty. Frames out are encoded into one write buffer, also freed whenever it
//! has been written out. An idle connection therefore holds no buffer at all.

use bytes::{Buf, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use hub_core::codec::{encode_close, encode_control, encode_message, Decoder, Deflate, PING, PONG};
use hub_core::{CloseFrame, Incoming, Message, Missed, Outgoing, Text, TransportError};
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one read call takes (a stack buffer: it costs an idle connection nothing).
pub(crate) const MAX_READ_CHUNK: usize = 16 * 1024;

/// Reads per `poll_next` that may end without a frame (fragments, a slow header) before the
/// task yields, so a peer streaming empty fragments cannot hold the thread.
const READ_BUDGET: usize = 32;

/// A WebSocket connection seen as a hub-core transport: the socket, the decoder, and the
/// write buffer.
///
/// Its write buffer has a hard bound, `high_water` plus one frame: data frames and pings wait
/// in `poll_ready` while it is over the mark, and reading pauses too (every ping read is
/// answered with a pong into the same buffer), so a peer that sends pings and never reads
/// cannot grow it; the write wait then ends the connection.
///
/// Its `poll_close` is a lingering close: it flushes what is buffered (the close frame), shuts
/// down the write side, then reads and discards until the peer closes. Without it, input the
/// server never read (say the rest of an oversized message) makes the kernel answer with a
/// reset, and the peer loses the close frame that says why.
#[derive(Debug)]
pub(crate) struct WsTransport<S> {
    io: S,
    decoder: Decoder,
    /// Bytes read past the last complete frame; empty (and unallocated) almost always.
    stash: BytesMut,
    /// Frames waiting for the socket; freed whenever written out.
    out: BytesMut,
    /// Bytes the socket has accepted so far.
    written: u64,
    /// `poll_ready` pushes back while this much is buffered and the socket will not take it.
    high_water: usize,
    read_chunk: usize,
    deflate: Option<Deflate>,
    /// A close frame is in `out` or gone: nothing else may follow it.
    close_sent: bool,
    linger: Linger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linger {
    Flush,
    Shutdown,
    Drain,
    Done,
}

/// How a [`WsTransport`] is set up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub(crate) max_message_size: usize,
    pub(crate) read_chunk: usize,
    pub(crate) high_water: usize,
    pub(crate) deflate: Option<Deflate>,
}

impl<S> WsTransport<S> {
    /// Wraps an upgraded socket; `already_read` holds bytes the server read past the request
    /// head (the start of the WebSocket stream).
    pub(crate) fn new(io: S, already_read: Vec<u8>, setup: Setup) -> Self {
        Self {
            io,
            decoder: Decoder::new(setup.max_message_size, setup.deflate.is_some()),
            stash: BytesMut::from(&already_read[..]),
            out: BytesMut::new(),
            written: 0,
            high_water: setup.high_water,
            read_chunk: setup.read_chunk.clamp(1, MAX_READ_CHUNK),
            deflate: setup.deflate,
            close_sent: false,
            linger: Linger::Flush,
        }
    }
}

fn map_io(error: std::io::Error) -> TransportError {
    match error.kind() {
        ErrorKind::ConnectionReset
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionAborted => TransportError::Closed,
        _ => TransportError::Io(error),
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

impl<S: AsyncRead + AsyncWrite + Unpin> WsTransport<S> {
    /// Writes `out` to the socket until it is empty (then frees it) or the socket pushes back.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out)).map_err(map_io)?;
            if n == 0 {
                return Poll::Ready(Err(TransportError::Closed));
            }
            self.out.advance(n);
            self.written += n as u64;
        }
        // an idle connection holds no write buffer at all
        self.out = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    /// Over the high-water mark: writes what the socket takes now. `true` while still over.
    fn over_high_water(&mut self, cx: &mut Context<'_>) -> Result<bool, TransportError> {
        if self.out.len() < self.high_water {
            return Ok(false);
        }
        if let Poll::Ready(Err(error)) = self.poll_write_out(cx) {
            return Err(error);
        }
        Ok(self.out.len() >= self.high_water)
    }

    /// What the transport does by itself for a frame read: a pong for a ping, the reply to a
    /// close.
    fn answer(&mut self, frame: Incoming) -> Incoming {
        match &frame {
            Incoming::Ping(payload) if !self.close_sent => {
                encode_control(&mut self.out, PONG, payload);
            }
            Incoming::Close(close) if !self.close_sent => {
                // echo the code (RFC 6455 §5.5.1); no reason
                let reply = close.as_ref().map(|c| CloseFrame::new(c.code, ""));
                encode_close(&mut self.out, reply.as_ref());
                self.close_sent = true;
            }
            _ => {}
        }
        frame
    }

    /// Decodes what `stash` holds; keeps the rest of it.
    fn decode_stash(&mut self) -> Result<Option<Incoming>, TransportError> {
        let mut input = &self.stash[..];
        let result = self.decoder.decode(&mut input);
        let used = self.stash.len() - input.len();
        self.stash.advance(used);
        if self.stash.is_empty() {
            self.stash = BytesMut::new();
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsTransport<S> {
    type Item = Result<Incoming, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.over_high_water(cx) {
            // read on only once under the mark (the socket's write readiness wakes this task)
            Ok(true) => return Poll::Pending,
            Ok(false) => {}
            Err(error) => return Poll::Ready(Some(Err(error))),
        }
        for _ in 0..READ_BUDGET {
            if !this.stash.is_empty() {
                match this.decode_stash() {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(this.answer(frame)))),
                    Ok(None) => {}
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            }
            // not zeroed: most polls find nothing to read, and 16 KiB of memset per wake of
            // every connection task would cost more than the read
            let mut buf = [MaybeUninit::<u8>::uninit(); MAX_READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut buf[..this.read_chunk]);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Some(Err(map_io(error)))),
                Poll::Ready(Ok(())) => {}
            }
            let mut input = read.filled();
            if input.is_empty() {
                // end of stream without a close frame
                return Poll::Ready(Some(Err(TransportError::Closed)));
            }
            let result = this.decoder.decode(&mut input);
            if matches!(result, Ok(Some(_))) && !input.is_empty() {
                // the next frame's first bytes (after an error, nothing more is decoded)
                this.stash.extend_from_slice(input);
            }
            match result {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(this.answer(frame)))),
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> hub_core::Transport for WsTransport<S> {
    fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outgoing> for WsTransport<S> {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.over_high_water(cx) {
            // ready again once under the mark
            Ok(true) => Poll::Pending,
            Ok(false) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outgoing) -> Result<(), Self::Error> {
        let this = &mut *self;
        if this.close_sent {
            // nothing may follow a close frame (RFC 6455 §5.5.1)
            return Ok(());
        }
        match item {
            // A WebSocket frame has no id field; applications that want ids in the payload use
            // Hub::broadcast_with.
            Outgoing::Message {
                message, deflated, ..
            } => {
                let compressed = match (&this.deflate, deflated) {
                    (Some(deflate), Some(shared)) if deflate.shares_broadcasts() => {
                        shared.get(message.payload(), deflate).cloned()
                    }
                    (Some(deflate), _) => deflate.compress(message.payload()),
                    (None, _) => None,
                };
                encode_message(&mut this.out, &message, compressed.as_deref());
            }
            Outgoing::Missed(missed) => {
                let notice = Message::Text(Text::from(missed_notice(missed)));
                encode_message(&mut this.out, &notice, None);
            }
            Outgoing::Ping(payload) => encode_control(&mut this.out, PING, &payload),
            Outgoing::Close(frame) => {
                encode_close(&mut this.out, Some(&frame));
                this.close_sent = true;
            }
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx).map_err(map_io)
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
                    let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    self.linger = Linger::Drain;
                }
                Linger::Drain => {
                    let mut buf = [0u8; 1024];
                    let mut read = ReadBuf::new(&mut buf);
                    match ready!(Pin::new(&mut self.io).poll_read(cx, &mut read)) {
                        Ok(()) if !read.filled().is_empty() => {}
                        _ => self.linger = Linger::Done,
                    }
                }
                Linger::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}
