//! Request negotiation and response headers.

/// The headers of every event-stream response. There is deliberately no `Connection` header:
/// HTTP/2 forbids it, and HTTP/1.1 keeps the connection open anyway.
pub const RESPONSE_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    // Tells nginx (and proxies that copy it) not to buffer the stream.
    ("x-accel-buffering", "no"),
];

/// Whether a request can take an event stream: a `GET` whose
/// `Accept`, if present, admits `text/event-stream` (directly or through `text/*` or `*/*`,
/// with a non-zero quality).
///
/// ```
/// use sse_core::accepts_event_stream;
///
/// assert!(accepts_event_stream("GET", Some("text/event-stream")));
/// assert!(accepts_event_stream("GET", None));
/// assert!(accepts_event_stream("GET", Some("text/html, */*;q=0.1")));
/// assert!(!accepts_event_stream("GET", Some("application/json")));
/// assert!(!accepts_event_stream("GET", Some("text/event-stream;q=0")));
/// assert!(!accepts_event_stream("POST", Some("text/event-stream")));
/// ```
pub fn accepts_event_stream(method: &str, accept: Option<&str>) -> bool {
    if !method.eq_ignore_ascii_case("GET") {
        return false;
    }
    let Some(accept) = accept else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let zero_quality = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !zero_quality && matches!(media.as_str(), "text/event-stream" | "text/*" | "*/*")
    })
}

/// Parses a `Last-Event-ID` header (or query parameter) value as a hub message id.
/// Anything else (empty, not a number) means "no resume point".
pub fn parse_last_event_id(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id() {
        assert_eq!(parse_last_event_id(" 42 "), Some(42));
        assert_eq!(parse_last_event_id(""), None);
        assert_eq!(parse_last_event_id("abc"), None);
        assert_eq!(parse_last_event_id("-1"), None);
    }
}
