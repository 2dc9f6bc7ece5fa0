//! Server-Sent Events responses on actix-web: the seed's stream and hub subscriptions.

use crate::authorized::auth_request;
use crate::{refusal_response, rejection_response, ActixHead};
use actix_web::http::Version;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use hub_core::{Authorizer, ConnectOptions, Hub, Rejection};
use hub_tokio::TokioTimer;
use std::convert::Infallible;
use std::future::Future;

pub use sse_core::{Event, SseConfig, SseError, SseStream};

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
    if !sse_core::acceptable(&ActixHead(req)) {
        return None;
    }
    let (stream, body) = SseStream::new(config, TokioTimer);
    Some((stream, event_stream_response(req, body)))
}

/// Subscribes the request to `hub` as an SSE client; 406, 403 or 503 when it must.
pub fn subscribe(req: &HttpRequest, hub: &Hub, config: SseConfig) -> HttpResponse {
    subscribe_with(req, hub, config, ConnectOptions::default())
}

/// As [`subscribe`], with the subscriber's options: its metadata
/// ([`ConnectOptions::data`]), its topics ([`ConnectOptions::topics`]) and, when set, a
/// resume point that overrides the request's.
///
/// A stream over topics gets their messages and the broadcasts to everyone, nothing else; it
/// is subscribed before this returns, so nothing published after is missed. Its event ids
/// are the hub's one sequence, so its `Last-Event-ID` resumes every topic at once (see
/// `sse_core::docs`, "Topics").
///
/// ```
/// use actix_web::{test::TestRequest, web, HttpRequest, HttpResponse};
/// use hub_core::{ConnectOptions, Hub, HubConfig};
/// use hub_actix::sse::{self, SseConfig};
/// use std::collections::HashMap;
///
/// type Query = web::Query<HashMap<String, String>>;
///
/// // GET /events?room=lobby
/// async fn events(req: HttpRequest, query: Query, hub: web::Data<Hub>) -> HttpResponse {
///     let room = query.get("room").map_or("", String::as_str);
///     match ConnectOptions::sse(None).topics([format!("room:{room}")]) {
///         Ok(options) => sse::subscribe_with(&req, &hub, SseConfig::default(), options),
///         Err(error) => HttpResponse::BadRequest().body(format!("room: {error}\n")),
///     }
/// }
///
/// # #[actix_web::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::with_config(HubConfig::default().history(100))?;
/// let req = TestRequest::get()
///     .uri("/events?room=lobby")
///     .insert_header(("accept", "text/event-stream"))
///     .insert_header(("last-event-id", "41"))
///     .to_http_request();
/// let query = Query::from_query(req.query_string())?;
/// let response = events(req, query, web::Data::new(hub.clone())).await;
/// assert_eq!(response.status(), 200);
/// assert_eq!(hub.subscriber_count("room:lobby"), 1);
/// # Ok(()) }
/// ```
pub fn subscribe_with(
    req: &HttpRequest,
    hub: &Hub,
    config: SseConfig,
    options: ConnectOptions,
) -> HttpResponse {
    hub_tokio::install_spawner(hub);
    let options = options.located_at(req.peer_addr(), req.path());
    match sse_core::subscribe_request(hub, &ActixHead(req), TokioTimer, config, options) {
        Ok(member) => event_stream_response(req, member),
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
pub fn subscribe_authorized(
    req: &HttpRequest,
    hub: &Hub,
    authorizer: &Authorizer,
    config: SseConfig,
    options: ConnectOptions,
) -> impl Future<Output = HttpResponse> + 'static {
    hub_tokio::install_spawner(hub);
    let head = ActixHead(req);
    let admitted = sse_core::admit_request(hub, &head).map(|()| {
        let request = auth_request(req.method(), req.uri(), req.headers(), req.peer_addr());
        (request, options.resume_from(&head))
    });
    let (req, hub, authorizer) = (req.clone(), hub.clone(), authorizer.clone());
    async move {
        let (request, options) = match admitted {
            Ok(admitted) => admitted,
            Err(rejection) => return rejection_response(rejection),
        };
        match authorizer.authorize(&hub, request, None, options).await {
            Ok(options) => {
                let member = sse_core::subscribe(&hub, TokioTimer, config, options);
                event_stream_response(&req, member)
            }
            Err(refusal) => refusal_response(&refusal),
        }
    }
}
