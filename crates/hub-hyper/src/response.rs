//! The hub's answers as `http` responses, in any body type: the one place they are built for
//! hyper, axum and warp alike (each adapter only picks its body).

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use hub_core::{Accept, AuthRequest, Refusal, Rejection};
use std::net::SocketAddr;

/// The response for a refused upgrade or subscription: the rejection's status, its required
/// headers, `content-type: text/plain; charset=utf-8` and its short body.
pub fn rejection<B: From<&'static str>>(rejection: Rejection) -> Response<B> {
    let mut response = Response::new(B::from(rejection.body()));
    *response.status_mut() =
        StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in rejection.headers() {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// The response for a request the application's authorization step refused: the refusal's
/// status, headers (one that is not valid HTTP, or frames the response, is left out, with a
/// warning: [`Refusal::answer_headers`]) and body, plain text unless the refusal sets its
/// `Content-Type`.
pub fn refusal<B: From<String>>(refusal: &Refusal) -> Response<B> {
    let mut response = Response::new(B::from(refusal.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(refusal.answer_status()).unwrap_or(StatusCode::FORBIDDEN);
    let headers = response.headers_mut();
    if refusal.content_type().is_none() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    for (name, value) in refusal.answer_headers() {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => tracing::warn!(name, "a refusal's header is not valid HTTP: left out"),
        }
    }
    response
}

/// The request head as an authorization step sees it (header values that are not UTF-8 are
/// left out; the caller adds the offered subprotocols).
pub fn auth_request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> AuthRequest {
    let mut request = AuthRequest::new(method.as_str(), path).with_peer(peer);
    if let Some(query) = query {
        request = request.with_query(query);
    }
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            request = request.with_header(name.as_str(), value);
        }
    }
    request
}

/// The `101 Switching Protocols` answer to an accepted upgrade, with an empty body.
pub fn switching_protocols<B: From<&'static str>>(accept: &Accept) -> Response<B> {
    let mut response = Response::new(B::from(""));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    for (name, value) in accept.headers() {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// Every value of header `name` in an `http` header map, as a
/// [`RequestHead::header_values`](hub_core::RequestHead::header_values) answers.
pub fn header_values<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
    Box::new(headers.get_all(name).into_iter().map(HeaderValue::as_bytes))
}
