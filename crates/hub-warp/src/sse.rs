//! Server-Sent Events replies on warp: the seed's stream and hub subscriptions.
//!
//! warp 0.4 builds streaming bodies only through `warp::sse::reply`, whose encoder writes
//! values raw (a CR in data, or a line break in a comment, forges fields). So our own encoder
//! writes every event first, and [`to_warp_events`] hands warp only single-line values that
//! are already safe: the bytes on the wire are the ones `sse-core` chose.

use crate::{request, RequestParts};
use bytes::Bytes;
use futures_util::{stream, Stream, StreamExt};
use hub_core::{Hub, Rejection};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use warp::reply::Response;
use warp::{Filter, Reply};

pub use sse_core::{Event, SseConfig, SseError, SseStream};

/// The 406 answer for a request that cannot take an event stream.
pub fn not_acceptable() -> Response {
    crate::rejection_response(Rejection::NotAcceptable)
}

/// Translates chunks written by `sse-core` (complete events and comments) into warp events
/// that warp writes back byte for byte equivalent: every value warp sees is one line, and a
/// space is put back after each colon (warp writes `name:value`).
pub fn to_warp_events(chunk: &[u8]) -> Vec<warp::sse::Event> {
    let text = String::from_utf8_lossy(chunk);
    let mut events = Vec::new();
    let mut current = warp::sse::Event::default();
    let mut fields = false;
    let mut data: Option<String> = None;
    let mut flush =
        |current: &mut warp::sse::Event, data: &mut Option<String>, fields: &mut bool| {
            if std::mem::take(fields) {
                let mut event = std::mem::take(current);
                if let Some(d) = data.take() {
                    event = event.data(d);
                }
                events.push(event);
            }
        };
    for line in text.split('\n') {
        if line.is_empty() {
            flush(&mut current, &mut data, &mut fields);
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            flush(&mut current, &mut data, &mut fields);
            current = warp::sse::Event::default().comment(comment);
            fields = true;
            flush(&mut current, &mut data, &mut fields);
            continue;
        }
        let (name, value) = line.split_once(": ").unwrap_or((line, ""));
        fields = true;
        current = match name {
            "event" => current.event(format!(" {value}")),
            "id" => current.id(format!(" {value}")),
            "retry" => current.retry(Duration::from_millis(value.parse().unwrap_or(0))),
            "data" => {
                let d = data.get_or_insert_with(String::new);
                if !d.is_empty() {
                    d.push('\n');
                }
                d.push(' ');
                d.push_str(value);
                current
            }
            _ => current,
        };
    }
    flush(&mut current, &mut data, &mut fields);
    events
}

/// warp wants a `Sync` stream; ours are only `Send`.
struct SyncStream<S>(Mutex<S>);

impl<S: Stream + Unpin> Stream for SyncStream<S> {
    type Item = S::Item;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *inner).poll_next(cx)
    }
}

fn event_stream_reply<S>(chunks: S) -> Response
where
    S: Stream<Item = Bytes> + Send + Unpin + 'static,
{
    let events = SyncStream(Mutex::new(chunks))
        .flat_map(|chunk| stream::iter(to_warp_events(&chunk)))
        .map(Ok::<_, Infallible>);
    let reply = warp::sse::reply(SyncStream(Mutex::new(Box::pin(events))));
    let mut response = reply.into_response();
    for (name, value) in sse_core::RESPONSE_HEADERS {
        response
            .headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
    }
    response
}

/// A filter that subscribes the request to `hub` as an SSE client (see
/// `hub_hyper::sse::subscribe`); it answers 406, 403 or 503 when it must, and never rejects.
pub fn subscribe(
    hub: Hub,
    config: SseConfig,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    request().map(move |parts: RequestParts| subscribe_parts(parts, &hub, config, None))
}

/// Subscribes a request's parts to `hub`, attaching `data` to the subscriber.
pub fn subscribe_parts(
    parts: RequestParts,
    hub: &Hub,
    config: SseConfig,
    data: Option<Box<dyn std::any::Any + Send + Sync>>,
) -> Response {
    let req = parts.into_request();
    match hub_hyper::sse::member(&req, hub, config, data) {
        Ok(member) => event_stream_reply(member),
        Err(rejection) => crate::rejection_response(rejection),
    }
}

/// Kashvi's `sse.New(w, r)` as a filter: extracts `Some((stream, reply))`, or `None` when the
/// request is not a `GET` accepting `text/event-stream` (answer [`not_acceptable`]).
pub fn stream(
    config: SseConfig,
) -> impl Filter<Extract = (Option<(SseStream, Response)>,), Error = Infallible> + Clone {
    request().map(move |parts: RequestParts| {
        let req = parts.into_request();
        hub_hyper::sse::acceptable(&req).then(|| {
            let (stream, body) = SseStream::new(config, hub_tokio::TokioTimer);
            (stream, event_stream_reply(body))
        })
    })
}
