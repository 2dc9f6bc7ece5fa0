//! Server-Sent Events on hyper (and axum): the seed's stream, and hub subscriptions.
//!
//! ```no_run
//! use hub_hyper::sse::{self, SseConfig};
//! use hyper::{body::Incoming, Request, Response};
//!
//! // Kashvi: stream := sse.New(w, r); if stream == nil { return }
//! # #[allow(dead_code)]
//! fn feed(req: Request<Incoming>) -> Response<hub_hyper::Body> {
//!     let Some((stream, response)) = sse::stream(&req, SseConfig::default()) else {
//!         return sse::not_acceptable(); // or let the router try another route
//!     };
//!     tokio::spawn(async move {
//!         let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
//!         loop {
//!             tokio::select! {
//!                 _ = tick.tick() => {
//!                     if stream.send("tick", &serde_json::json!({"ok": true})).is_err() {
//!                         break; // the client left (or could not keep up)
//!                     }
//!                 }
//!                 () = stream.closed() => break,
//!             }
//!         }
//!     });
//!     response
//! }
//! ```

use crate::{peer, refusal_response, rejection_response, response, Body, HttpHead};
use futures_util::StreamExt;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hub_core::{Authorizer, ConnectOptions, Hub, Rejection};
use hub_tokio::TokioTimer;
use hyper::body::Frame;
use std::convert::Infallible;
use std::future::Future;

pub use sse_core::{Event, SseConfig, SseError, SseStream};

fn event_stream_response<S>(stream: S) -> Response<Body>
where
    S: futures_util::Stream<Item = bytes::Bytes> + Send + 'static,
{
    let body = StreamBody::new(stream.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
    let mut response = Response::new(body.boxed_unsync());
    for (name, value) in sse_core::RESPONSE_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The 406 answer for a request that cannot take an event stream.
pub fn not_acceptable() -> Response<Body> {
    rejection_response(Rejection::NotAcceptable)
}

/// Kashvi's `sse.New(w, r)`: an event stream for this request, or `None` when the request is
/// not a `GET` or its `Accept` excludes `text/event-stream` (answer [`not_acceptable`], or let
/// the route fall through). Return the response; write with the [`SseStream`] from any task.
pub fn stream<B>(req: &Request<B>, config: SseConfig) -> Option<(SseStream, Response<Body>)> {
    if !sse_core::acceptable(&HttpHead(req)) {
        return None;
    }
    let (stream, body) = SseStream::new(config, TokioTimer);
    Some((stream, event_stream_response(body)))
}

/// Subscribes the request to `hub` as an SSE client: the hub's broadcasts reach it like a
/// WebSocket client's, with the same queue, eviction and stats. A `Last-Event-ID` header
/// resumes from the hub's history (see [`HubConfig::history`](hub_core::HubConfig::history)).
///
/// Answers 406 if the request cannot take an event stream, 403 if the hub's origin policy
/// refuses its `Origin`, 503 if the hub is shutting down.
pub fn subscribe<B>(req: &Request<B>, hub: &Hub, config: SseConfig) -> Response<Body> {
    subscribe_with(req, hub, config, ConnectOptions::default())
}

/// As [`subscribe`], with the subscriber's options: its metadata
/// ([`ConnectOptions::data`], read with [`Client::data`](hub_core::Client::data)), its
/// topics ([`ConnectOptions::topics`]) and, when set, a resume point that overrides the
/// request's.
///
/// A stream over topics gets their messages and the broadcasts to everyone, nothing else; it
/// is subscribed before this returns, so nothing published after is missed. Its event ids
/// are the hub's one sequence, so its `Last-Event-ID` resumes every topic at once (see
/// `sse_core::docs`, "Topics").
///
/// ```
/// use hub_core::{ConnectOptions, Hub, HubConfig};
/// use hub_hyper::sse::{self, SseConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::with_config(HubConfig::default().history(100))?;
/// // GET /events?room=lobby, reconnecting after event 41
/// let req = http::Request::get("/events?room=lobby")
///     .header("accept", "text/event-stream")
///     .header("last-event-id", "41")
///     .body(())?;
/// // a name from the request is checked here: an invalid one is the caller's 400
/// let options = ConnectOptions::sse(None).topics(["room:lobby"])?;
/// let response = sse::subscribe_with(&req, &hub, SseConfig::default(), options);
/// assert_eq!(response.status(), 200);
/// assert_eq!(hub.subscriber_count("room:lobby"), 1);
/// assert_eq!(hub.publish("room:lobby", "hello"), 1);
/// # Ok(()) }
/// ```
pub fn subscribe_with<B>(
    req: &Request<B>,
    hub: &Hub,
    config: SseConfig,
    options: ConnectOptions,
) -> Response<Body> {
    hub_tokio::install_spawner(hub);
    let options = options.located_at(peer(req), req.uri().path());
    match sse_core::subscribe_request(hub, &HttpHead(req), TokioTimer, config, options) {
        Ok(member) => event_stream_response(member),
        Err(rejection) => rejection_response(rejection),
    }
}

/// As [`subscribe_with`], behind the application's authorization step: once the request is
/// known to take an event stream and the hub admits it (406, 403, 503 otherwise, without
/// running the step), `authorizer` sees its head (a client sends its token as
/// `Authorization: Bearer`, or in the query, since `EventSource` cannot set headers). Its
/// admission's data becomes the subscriber's; its refusal is the answer, counted as
/// [`Rejection::Refused`]. An event stream offers no subprotocol: an admission that picks one
/// is answered 500 (see [`Authorizer::authorize`]).
pub fn subscribe_authorized<B>(
    req: &Request<B>,
    hub: &Hub,
    authorizer: &Authorizer,
    config: SseConfig,
    options: ConnectOptions,
) -> impl Future<Output = Response<Body>> + Send + 'static {
    hub_tokio::install_spawner(hub);
    let head = HttpHead(req);
    let admitted = sse_core::admit_request(hub, &head).map(|()| {
        let request = response::auth_request(
            req.method(),
            req.uri().path(),
            req.uri().query(),
            req.headers(),
            peer(req),
        );
        (request, options.resume_from(&head))
    });
    let (hub, authorizer) = (hub.clone(), authorizer.clone());
    async move {
        let (request, options) = match admitted {
            Ok(admitted) => admitted,
            Err(rejection) => return rejection_response(rejection),
        };
        match authorizer.authorize(&hub, request, None, options).await {
            Ok(options) => {
                event_stream_response(sse_core::subscribe(&hub, TokioTimer, config, options))
            }
            Err(refusal) => refusal_response(&refusal),
        }
    }
}
