//! Upgrades behind the application's authorization step ([`Authorizer`]).

use crate::{rejection_response, switching_protocols, ActixHead, WsConfig};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::{web, HttpRequest, HttpResponse};
use hub_core::{AuthRequest, Authorizer, ConnectOptions, Hub, Refusal};
use std::future::Future;
use std::net::SocketAddr;

/// The request head as an authorization step sees it (header values that are not UTF-8 are
/// left out; the caller adds the offered subprotocols).
pub(crate) fn auth_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> AuthRequest {
    let mut request = AuthRequest::new(method.as_str(), uri.path()).with_peer(peer);
    if let Some(query) = uri.query() {
        request = request.with_query(query);
    }
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            request = request.with_header(name.as_str(), value);
        }
    }
    request
}

/// A refusal's headers that are valid HTTP and frame nothing ([`Refusal::answer_headers`]; the
/// others are left out, with a warning).
pub(crate) fn refusal_headers(refusal: &Refusal) -> Vec<(HeaderName, HeaderValue)> {
    let mut valid = Vec::with_capacity(refusal.headers.len());
    for (name, value) in refusal.answer_headers() {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => valid.push((name, value)),
            _ => tracing::warn!(name, "a refusal's header is not valid HTTP: left out"),
        }
    }
    valid
}

/// The response for a request the authorization step refused: its status, headers and body.
pub fn refusal_response(refusal: &Refusal) -> HttpResponse {
    let status = StatusCode::from_u16(refusal.answer_status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut builder = HttpResponse::build(status);
    if refusal.content_type().is_none() {
        builder.insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"));
    }
    for pair in refusal_headers(refusal) {
        builder.append_header(pair);
    }
    builder.body(refusal.body.clone())
}

/// As [`upgrade_with`](crate::upgrade_with), behind the application's authorization step.
///
/// The request is validated first ([`Hub::accept`]: 400, 403, 426, 431, 503 as on every
/// adapter, without running the step); then `authorizer` sees its head
/// ([`AuthRequest`]: path, query, headers, cookies, peer address, offered subprotocols). Its
/// [`Admission`](hub_core::Admission) gives the client's data and the subprotocol the 101
/// answers with; its [`Refusal`] is the answer (counted as
/// [`Rejection::Refused`](hub_core::Rejection::Refused)). A subprotocol the client did not
/// offer is answered 500, never sent (see [`Authorizer::authorize`]).
///
/// ```no_run
/// use actix_web::{web, HttpRequest, HttpResponse};
/// use hub_core::{Admission, Authorizer, AuthRequest, Hub, Refusal};
///
/// async fn chat(
///     req: HttpRequest,
///     body: web::Payload,
///     hub: web::Data<Hub>,
///     auth: web::Data<Authorizer>,
/// ) -> HttpResponse {
///     hub_actix::upgrade_authorized(&req, body, &hub, &auth, Default::default(), Default::default())
///         .await
/// }
///
/// let auth = Authorizer::new(|req: AuthRequest| async move {
///     match req.bearer_token() {
///         Some("s3cret") => Ok(Admission::new().protocol("bearer")),
///         _ => Err(Refusal::new(401).header("www-authenticate", "Bearer")),
///     }
/// });
/// # let _ = (chat, auth);
/// ```
pub fn upgrade_authorized(
    req: &HttpRequest,
    payload: web::Payload,
    hub: &Hub,
    authorizer: &Authorizer,
    options: ConnectOptions,
    config: WsConfig,
) -> impl Future<Output = HttpResponse> + 'static {
    let head = ActixHead(req);
    let accepted = hub.accept(&head).map(|accept| {
        let request = auth_request(req.method(), req.uri(), req.headers(), req.peer_addr());
        (accept, request, options.resume_from(&head))
    });
    let (hub, authorizer) = (hub.clone(), authorizer.clone());
    async move {
        let (mut accept, request, options) = match accepted {
            Ok(accepted) => accepted,
            Err(rejection) => return rejection_response(rejection),
        };
        let request = request.with_protocols(accept.offered.clone());
        match authorizer
            .authorize(&hub, request, Some(&mut accept), options)
            .await
        {
            Ok(options) => switching_protocols(&accept, payload, &hub, options, config),
            Err(refusal) => refusal_response(&refusal),
        }
    }
}
