//! Server-Sent Events responses on actix-web: the seed's stream and hub subscriptions.

use crate::{rejection_response, ActixHead};
use actix_web::http::Version;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use hub_core::{Hub, Rejection};
use hub_tokio::TokioTimer;
use std::convert::Infallible;

pub use sse_core::{Event, SseConfig, SseError, SseStream};

/// Whether a request can take an event stream (a `GET` whose `Accept` admits it).
pub fn acceptable(req: &HttpRequest) -> bool {
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok());
    sse_core::accepts_event_stream(req.method().as_str(), accept)
}

/// The 406 answer for a request that cannot take an event stream.
pub fn not_acceptable() -> HttpResponse {
    rejection_response(Rejection::NotAcceptable)
}

/// The event-stream response to `req`. An HTTP/1.0 client cannot decode chunked transfer
/// coding (which actix picks for every stream): its stream is delimited by closing the
/// connection, as hyper does.
fn event_stream_response<S>(req: &HttpRequest, chunks: S) -> HttpResponse
where
    S: futures_util::Stream<Item = bytes::Bytes> + 'static,
{
    let mut builder = HttpResponse::Ok();
    for (name, value) in sse_core::RESPONSE_HEADERS {
        builder.insert_header((name, value));
    }
    let http_1_0 = req.version() < Version::HTTP_11;
    if http_1_0 {
        builder.force_close();
    }
    let mut response = builder.streaming(chunks.map(Ok::<_, Infallible>));
    if http_1_0 {
        response.head_mut().no_chunking(true);
    }
    response
}

/// Kashvi's `sse.New(w, r)`: `None` when the request is not a `GET` accepting
/// `text/event-stream` (answer [`not_acceptable`]).
pub fn stream(req: &HttpRequest, config: SseConfig) -> Option<(SseStream, HttpResponse)> {
    if !acceptable(req) {
        return None;
    }
    let (stream, body) = SseStream::new(config, TokioTimer);
    Some((stream, event_stream_response(req, body)))
}

/// Subscribes the request to `hub` as an SSE client; 406, 403 or 503 when it must.
pub fn subscribe(req: &HttpRequest, hub: &Hub, config: SseConfig) -> HttpResponse {
    subscribe_with(req, hub, config, None)
}

/// As [`subscribe`], attaching `data` to the subscriber.
pub fn subscribe_with(
    req: &HttpRequest,
    hub: &Hub,
    config: SseConfig,
    data: Option<Box<dyn std::any::Any + Send + Sync>>,
) -> HttpResponse {
    if !acceptable(req) {
        return not_acceptable();
    }
    if let Err(rejection) = hub.admit(&ActixHead(req)) {
        return rejection_response(rejection);
    }
    let member = sse_core::subscribe(hub, TokioTimer, config, crate::last_event_id(req), data);
    event_stream_response(req, member)
}
