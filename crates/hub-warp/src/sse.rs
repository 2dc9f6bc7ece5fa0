//! Server-Sent Events replies on warp: the seed's stream and hub subscriptions.
//!
//! warp 0.4 builds streaming bodies only through `warp::sse::reply`, whose encoder writes
//! values raw (a CR in data, or a line break in a comment, forges fields). So our own encoder
//! writes every event, and [`to_warp_event`] hands warp each batch of already-encoded events
//! as one comment that warp writes unchanged: the bytes on the wire are the ones `sse-core`
//! chose, behind one empty comment line.

use crate::{request, Refused, RequestParts};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hub_core::{Authorizer, ConnectOptions, Hub, Rejection};
use hub_tokio::TokioTimer;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use warp::reply::Response;
use warp::{Filter, Reply};

pub use sse_core::{Event, SseConfig, SseError, SseStream};

/// The 406 answer for a request that cannot take an event stream.
pub fn not_acceptable() -> Response {
    crate::rejection_response(Rejection::NotAcceptable)
}

/// Wraps a chunk written by `sse-core` (complete events and comments) in one warp event that
/// warp writes back unchanged, after an empty comment line.
///
/// warp writes a comment as `:` + text + a line break, then ends the event with a blank line,
/// and checks nothing. So the chunk goes in as the comment's text after a line break: on the
/// wire come `:` and a line break (an empty comment, ignored by every parser), then the chunk's
/// events byte for byte. The chunk never holds a CR (`sse-core` writes LF only) and ends every
/// event with a blank line, so warp's closing blank line dispatches nothing. One warp event
/// per chunk, however many events the chunk batches: no re-parsing, no per-event allocation.
pub fn to_warp_event(chunk: &[u8]) -> warp::sse::Event {
    let text = String::from_utf8_lossy(chunk);
    let mut comment = String::with_capacity(text.len() + 1);
    comment.push('\n');
    comment.push_str(text.trim_end_matches('\n'));
    warp::sse::Event::default().comment(comment)
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
    let events = chunks.map(|chunk| Ok::<_, Infallible>(to_warp_event(&chunk)));
    let reply = warp::sse::reply(SyncStream(Mutex::new(events)));
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
    request().map(move |parts: RequestParts| {
        subscribe_parts(&parts, &hub, config, ConnectOptions::default())
    })
}

/// Subscribes a request's parts to `hub`, with the subscriber's options (its metadata, its
/// topics ([`ConnectOptions::topics`]), and a resume point that overrides the request's).
///
/// A stream over topics gets their messages and the broadcasts to everyone, nothing else; it
/// is subscribed before this returns, so nothing published after is missed. Its event ids
/// are the hub's one sequence, so its `Last-Event-ID` resumes every topic at once (see
/// `sse_core::docs`, "Topics").
///
/// ```
/// use hub_core::{ConnectOptions, Hub, HubConfig};
/// use hub_warp::{sse, RequestParts};
/// use std::collections::HashMap;
/// use warp::Filter;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::with_config(HubConfig::default().history(100))?;
/// let events_hub = hub.clone();
/// // GET /events?room=lobby
/// let events = warp::path!("events")
///     .and(warp::query::<HashMap<String, String>>())
///     .and(hub_warp::request())
///     .map(move |query: HashMap<String, String>, parts: RequestParts| {
///         let room = query.get("room").map_or("", String::as_str);
///         match ConnectOptions::sse(None).topics([format!("room:{room}")]) {
///             Ok(options) => sse::subscribe_parts(&parts, &events_hub, Default::default(), options),
///             Err(error) => warp::http::Response::builder()
///                 .status(400)
///                 .body(format!("room: {error}\n").into())
///                 .unwrap_or_default(),
///         }
///     });
/// let response = warp::test::request()
///     .path("/events?room=lobby")
///     .header("accept", "text/event-stream")
///     .header("last-event-id", "41")
///     .filter(&events)
///     .await
///     .map_err(|rejection| format!("{rejection:?}"))?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(hub.subscriber_count("room:lobby"), 1);
/// # Ok(()) }
/// ```
pub fn subscribe_parts(
    parts: &RequestParts,
    hub: &Hub,
    config: SseConfig,
    options: ConnectOptions,
) -> Response {
    hub_tokio::install_spawner(hub);
    let options = options.located_at(parts.peer(), parts.path());
    match sse_core::subscribe_request(hub, parts, TokioTimer, config, options) {
        Ok(member) => event_stream_reply(member),
        Err(rejection) => crate::rejection_response(rejection),
    }
}

/// As [`subscribe`], behind the application's authorization step
/// ([`subscribe_parts_authorized`]): a refusal rejects with [`Refused`], so add
/// [`recover`](crate::recover) to answer it.
pub fn subscribe_authorized(
    hub: Hub,
    config: SseConfig,
    authorizer: Authorizer,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    request().and_then(move |parts: RequestParts| {
        subscribe_parts_authorized(&parts, &hub, &authorizer, config, ConnectOptions::default())
    })
}

/// As [`subscribe_parts`], behind the application's authorization step: once the request is
/// known to take an event stream and the hub admits it (406, 403, 503 otherwise, without
/// running the step), `authorizer` sees its head (a client sends its token as
/// `Authorization: Bearer`, or in the query, since `EventSource` cannot set headers). Its
/// admission's data becomes the subscriber's.
///
/// # Errors
/// [`Refused`] when the step refuses (counted as [`Rejection::Refused`]), or picks a
/// subprotocol (an event stream offers none: a 500, see [`Authorizer::authorize`]).
pub fn subscribe_parts_authorized(
    parts: &RequestParts,
    hub: &Hub,
    authorizer: &Authorizer,
    config: SseConfig,
    options: ConnectOptions,
) -> impl Future<Output = Result<Response, warp::Rejection>> + Send + 'static {
    hub_tokio::install_spawner(hub);
    let admitted = sse_core::admit_request(hub, parts)
        .map(|()| (parts.auth_request(), options.resume_from(parts)));
    let (hub, authorizer) = (hub.clone(), authorizer.clone());
    async move {
        let (request, options) = match admitted {
            Ok(admitted) => admitted,
            Err(rejection) => return Ok(crate::rejection_response(rejection)),
        };
        match authorizer.authorize(&hub, request, None, options).await {
            Ok(options) => Ok(event_stream_reply(sse_core::subscribe(
                &hub, TokioTimer, config, options,
            ))),
            Err(refusal) => Err(warp::reject::custom(Refused(refusal))),
        }
    }
}

/// Kashvi's `sse.New(w, r)` as a filter: extracts `Some((stream, reply))`, or `None` when the
/// request is not a `GET` accepting `text/event-stream` (answer [`not_acceptable`]).
pub fn stream(
    config: SseConfig,
) -> impl Filter<Extract = (Option<(SseStream, Response)>,), Error = Infallible> + Clone {
    request().map(move |parts: RequestParts| {
        sse_core::acceptable(&parts).then(|| {
            let (stream, body) = SseStream::new(config, TokioTimer);
            (stream, event_stream_reply(body))
        })
    })
}
