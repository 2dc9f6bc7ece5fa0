//! Request negotiation and response headers.

/// The headers of every event-stream response. There is deliberately no `Connection` header:
/// HTTP/2 forbids it, and HTTP/1.1 keeps the connection open anyway.
pub const RESPONSE_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    // Tells nginx (and proxies that copy it) not to buffer the stream.
    ("x-accel-buffering", "no"),
];

/// Whether a request can take an event stream: a `GET` whose `Accept`, if present, admits
/// `text/event-stream`. The most specific range that matches decides (`text/event-stream`,
/// then `text/*`, then `*/*`, RFC 9110 §12.5.1), and a quality of 0 means "not acceptable",
/// so `text/event-stream;q=0, */*` refuses the stream.
///
/// ```
/// use sse_core::accepts_event_stream;
///
/// assert!(accepts_event_stream("GET", Some("text/event-stream")));
/// assert!(accepts_event_stream("GET", None));
/// assert!(accepts_event_stream("GET", Some("text/html, */*;q=0.1")));
/// assert!(accepts_event_stream("GET", Some("text/*;q=0, text/event-stream")));
/// assert!(!accepts_event_stream("GET", Some("application/json")));
/// assert!(!accepts_event_stream("GET", Some("text/event-stream;q=0")));
/// assert!(!accepts_event_stream("GET", Some("text/event-stream;q=0, */*")));
/// assert!(!accepts_event_stream("POST", Some("text/event-stream")));
/// ```
pub fn accepts_event_stream(method: &str, accept: Option<&str>) -> bool {
    if !method.eq_ignore_ascii_case("GET") {
        return false;
    }
    let Some(accept) = accept else { return true };
    // (specificity, quality) of the most specific matching range; among equally specific
    // ranges, the highest quality
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let specificity = if media.eq_ignore_ascii_case("text/event-stream") {
            3
        } else if media.eq_ignore_ascii_case("text/*") {
            2
        } else if media == "*/*" {
            1
        } else {
            continue;
        };
        let quality = parts
            .find_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().unwrap_or(1.0))
            })
            .unwrap_or(1.0);
        best = match best {
            Some((s, q)) if s > specificity || (s == specificity && q >= quality) => Some((s, q)),
            _ => Some((specificity, quality)),
        };
    }
    // NaN compares false: not acceptable
    best.is_some_and(|(_, quality)| quality > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_range_decides() {
        let ok = |accept| accepts_event_stream("GET", Some(accept));
        assert!(!ok("text/event-stream;q=0, */*"));
        assert!(!ok("*/*, text/event-stream; Q=0.000"));
        assert!(!ok("text/event-stream;charset=utf-8;q=0, text/*"));
        assert!(!ok("text/*;q=0, */*"));
        assert!(ok("*/*;q=0, text/event-stream;q=0.5"));
        assert!(ok("text/*;q=0, TEXT/EVENT-STREAM"));
        assert!(!ok(""));
        assert!(!ok("text/event-stream;q=NaN"));
    }
}
