//! The hub's answers as `http` responses, in any body type: the one place they are built for
//! hyper, axum and warp alike (each adapter only picks its body).

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use hub_core::{Accept, Rejection};

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
