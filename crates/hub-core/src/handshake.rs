//! WebSocket upgrade validation (RFC 6455 §4.2.1), shared by every adapter.
//!
//! Adapters wrap their framework's request in a [`RequestHead`], call
//! [`Hub::accept`](crate::Hub::accept), and answer `101 Switching Protocols` with the returned
//! [`Accept`], or the [`Rejection`]'s status, headers and body.

use base64::Engine as _;

/// The HTTP version of a request, as its adapter parsed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/0.9.
    Http09,
    /// HTTP/1.0: no WebSocket upgrade (RFC 6455 requires HTTP/1.1), no `Host` required.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2.
    H2,
    /// HTTP/3.
    H3,
}

/// Read access to an HTTP request's version, method and headers; implemented by each adapter.
pub trait RequestHead {
    /// The request's HTTP version.
    fn version(&self) -> HttpVersion;
    /// The request method, e.g. `"GET"`.
    fn method(&self) -> &str;
    /// Every value of the header `name` (lower-case), in order.
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a>;

    /// The request's query string (what follows `?`), if it has one. The default is `None`;
    /// adapters implement it so that [`RequestHead::last_event_id`] sees the query parameter.
    fn query(&self) -> Option<&str> {
        None
    }

    /// The first value of header `name` as UTF-8, if present and valid.
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether the request asks for a WebSocket upgrade at all (an `Upgrade` header naming
    /// `websocket`), valid or not. A router may give a request that does not to another route.
    fn is_websocket_upgrade(&self) -> bool
    where
        Self: Sized,
    {
        has_token(self, "upgrade", "websocket")
    }

    /// The client's resume point: the `Last-Event-ID` header (what `EventSource` sends when it
    /// reconnects), else the `last_event_id` query parameter (for WebSocket clients, which
    /// cannot set headers). A value that is not a message id means "no resume point".
    fn last_event_id(&self) -> Option<u64> {
        if let Some(id) = self.header_str("last-event-id").and_then(parse_id) {
            return Some(id);
        }
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == "last_event_id").then(|| parse_id(value)).flatten()
        })
    }
}

/// A `Last-Event-ID` value (header or query parameter) as a message id; anything else (empty,
/// not a number) is no id.
fn parse_id(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// What the adapter puts in its `101 Switching Protocols` response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accept {
    /// The value of `Sec-WebSocket-Accept`.
    pub accept_key: String,
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in order.
    pub offered: Vec<String>,
    /// The subprotocol the 101 answers with, chosen by [`Accept::select_protocol`].
    pub protocol: Option<String>,
    /// permessage-deflate, when the client offered it and the hub enables it
    /// ([`HubConfig::deflate`](crate::HubConfig::deflate)); the 101 then names it and the
    /// connection must use it ([`ConnectOptions::accepted`](crate::ConnectOptions::accepted)).
    pub deflate: Option<crate::codec::Deflate>,
    /// The `Sec-WebSocket-Extensions` value of the 101.
    extensions: Option<String>,
}

/// [`Accept::select_protocol`] was given a subprotocol the client did not offer: a mistake in
/// the application, never sent on the wire (RFC 6455 §4.1: the client fails such a
/// connection).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("subprotocol {0:?} was not offered by the client")]
pub struct ProtocolNotOffered(pub String);

impl Accept {
    /// Answers with `protocol`, which must be one the client offered.
    ///
    /// # Errors
    /// [`ProtocolNotOffered`]; nothing changed.
    pub fn select_protocol(&mut self, protocol: &str) -> Result<(), ProtocolNotOffered> {
        if !self.offered.iter().any(|p| p == protocol) {
            return Err(ProtocolNotOffered(protocol.to_string()));
        }
        self.protocol = Some(protocol.to_string());
        Ok(())
    }

    /// The response headers of the 101, besides the status line.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", self.accept_key.as_str()),
        ];
        if let Some(protocol) = &self.protocol {
            headers.push(("sec-websocket-protocol", protocol.as_str()));
        }
        if let Some(extensions) = &self.extensions {
            headers.push(("sec-websocket-extensions", extensions.as_str()));
        }
        headers
    }

    /// Agrees permessage-deflate from the request's offers (`Sec-WebSocket-Extensions`) under
    /// `config`; the hub calls it while accepting.
    pub(crate) fn negotiate(
        &mut self,
        head: &dyn RequestHead,
        config: &crate::codec::DeflateConfig,
    ) {
        self.deflate =
            crate::codec::negotiate(head.header_values("sec-websocket-extensions"), config);
        self.extensions = self.deflate.map(|d| d.response_header());
    }

    /// The `Sec-WebSocket-Extensions` value of the 101, when an extension was agreed.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }
}

/// Why an upgrade was refused, and the response to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 400: the method is not GET.
    MethodNotGet,
    /// 400: the request is older than HTTP/1.1 (RFC 6455 §4.1). 400 rather than 505: the
    /// server does speak HTTP/1.0 (pages, event streams); only this upgrade needs HTTP/1.1.
    HttpVersion,
    /// 400: an HTTP/1.1 request without a `Host` header, or any request with more than one
    /// (RFC 7230 §5.4).
    BadHost,
    /// 400: `Upgrade` names `websocket` only inside a list (`h2c, websocket`). A WebSocket
    /// upgrade must carry `Upgrade: websocket` alone on a header line: that is the form every
    /// adapter's server (actix-http's in particular) hands over as a WebSocket connection.
    UpgradeNotAlone,
    /// 400: the upgrade request has a body (`Transfer-Encoding`, or a non-zero
    /// `Content-Length`); the bytes after the head belong to the WebSocket.
    BodyNotAllowed,
    /// 426: no `Upgrade: websocket` (e.g. a plain GET); answer with `Upgrade: websocket`.
    NotUpgrade,
    /// 400: `Connection` lacks the `upgrade` token.
    ConnectionNotUpgrade,
    /// 426: `Sec-WebSocket-Version` is not 13; answer with `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// 400: `Sec-WebSocket-Key` is missing or not 16 base64-encoded bytes.
    BadKey,
    /// 403: the hub's [`OriginPolicy`](crate::OriginPolicy) refused the `Origin`.
    OriginDenied,
    /// 503: the hub is shutting down; answered with `Retry-After`.
    ShuttingDown,
    /// 503: the hub has [`HubConfig::max_connections`](crate::HubConfig::max_connections)
    /// clients; answered with `Retry-After`.
    TooManyConnections,
    /// 406: an event-stream endpoint got a request that is not a `GET` accepting
    /// `text/event-stream`.
    NotAcceptable,
    /// 431: more than [`MAX_PROTOCOLS`](crate::MAX_PROTOCOLS) subprotocols, or more than
    /// [`MAX_PROTOCOL_BYTES`](crate::MAX_PROTOCOL_BYTES) of them.
    ProtocolsTooLarge,
    /// The application's authorization step refused it with a [`Refusal`](crate::Refusal)
    /// (whose status, headers and body are the answer; 403 here is only a default).
    Refused,
    /// 500: the application's authorization step picked a subprotocol the client did not
    /// offer ([`ProtocolNotOffered`]); logged as the application's error, never sent on the
    /// wire.
    UnofferedProtocol,
    /// 500: the application's authorization step panicked (logged; the request is answered,
    /// never dropped).
    AuthorizationPanicked,
}

impl Rejection {
    /// Every rejection (for metrics: one label per reason, with
    /// [`Stats::rejected`](crate::Stats::rejected)). A slice, so a new one is not a breaking
    /// change.
    pub const ALL: &'static [Rejection] = &[
        Rejection::MethodNotGet,
        Rejection::HttpVersion,
        Rejection::BadHost,
        Rejection::UpgradeNotAlone,
        Rejection::BodyNotAllowed,
        Rejection::NotUpgrade,
        Rejection::ConnectionNotUpgrade,
        Rejection::UnsupportedVersion,
        Rejection::BadKey,
        Rejection::OriginDenied,
        Rejection::ShuttingDown,
        Rejection::TooManyConnections,
        Rejection::NotAcceptable,
        Rejection::ProtocolsTooLarge,
        Rejection::Refused,
        Rejection::UnofferedProtocol,
        Rejection::AuthorizationPanicked,
    ];

    /// A stable snake_case name, for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MethodNotGet => "method_not_get",
            Rejection::HttpVersion => "http_version",
            Rejection::BadHost => "bad_host",
            Rejection::UpgradeNotAlone => "upgrade_not_alone",
            Rejection::BodyNotAllowed => "body_not_allowed",
            Rejection::NotUpgrade => "not_upgrade",
            Rejection::ConnectionNotUpgrade => "connection_not_upgrade",
            Rejection::UnsupportedVersion => "unsupported_version",
            Rejection::BadKey => "bad_key",
            Rejection::OriginDenied => "origin_denied",
            Rejection::ShuttingDown => "shutting_down",
            Rejection::TooManyConnections => "too_many_connections",
            Rejection::NotAcceptable => "not_acceptable",
            Rejection::ProtocolsTooLarge => "protocols_too_large",
            Rejection::Refused => "refused",
            Rejection::UnofferedProtocol => "unoffered_protocol",
            Rejection::AuthorizationPanicked => "authorization_panicked",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Rejection::MethodNotGet
            | Rejection::HttpVersion
            | Rejection::BadHost
            | Rejection::UpgradeNotAlone
            | Rejection::BodyNotAllowed
            | Rejection::ConnectionNotUpgrade
            | Rejection::BadKey => 400,
            Rejection::NotUpgrade | Rejection::UnsupportedVersion => 426,
            Rejection::OriginDenied | Rejection::Refused => 403,
            Rejection::ProtocolsTooLarge => 431,
            Rejection::ShuttingDown | Rejection::TooManyConnections => 503,
            Rejection::NotAcceptable => 406,
            Rejection::UnofferedProtocol | Rejection::AuthorizationPanicked => 500,
        }
    }

    /// A short plain-text body.
    pub fn body(self) -> &'static str {
        match self {
            Rejection::MethodNotGet => "WebSocket upgrade requires GET\n",
            Rejection::HttpVersion => "WebSocket upgrade requires HTTP/1.1\n",
            Rejection::BadHost => "a request needs exactly one Host header\n",
            Rejection::UpgradeNotAlone => "Upgrade must be 'websocket' alone, not a list\n",
            Rejection::BodyNotAllowed => "a WebSocket upgrade request cannot have a body\n",
            Rejection::NotUpgrade => "this endpoint only speaks WebSocket (Upgrade: websocket)\n",
            Rejection::ConnectionNotUpgrade => "Connection header must contain 'upgrade'\n",
            Rejection::UnsupportedVersion => "unsupported Sec-WebSocket-Version (only 13)\n",
            Rejection::BadKey => "missing or invalid Sec-WebSocket-Key\n",
            Rejection::OriginDenied => "origin not allowed\n",
            Rejection::ShuttingDown => "server is shutting down\n",
            Rejection::TooManyConnections => "too many connections, try again later\n",
            Rejection::NotAcceptable => "this endpoint serves text/event-stream to GET requests\n",
            Rejection::ProtocolsTooLarge => "too many or too long Sec-WebSocket-Protocol values\n",
            Rejection::Refused => "forbidden\n",
            Rejection::UnofferedProtocol | Rejection::AuthorizationPanicked => {
                "internal server error\n"
            }
        }
    }

    /// Extra response headers the status requires.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Rejection::NotUpgrade => &[("upgrade", "websocket"), ("sec-websocket-version", "13")],
            Rejection::UnsupportedVersion => &[("sec-websocket-version", "13")],
            // a client (or a load balancer) waits that long before it tries again
            Rejection::ShuttingDown | Rejection::TooManyConnections => &[("retry-after", "5")],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.body().trim_end())
    }
}

impl std::error::Error for Rejection {}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key ++ GUID)).
pub(crate) fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

fn has_token(head: &dyn RequestHead, name: &str, token: &str) -> bool {
    head.header_values(name).any(|value| {
        value
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether the request's `Host` headers are what RFC 7230 §5.4 requires of its version:
/// exactly one in HTTP/1.1, at most one in HTTP/1.0. Adapters whose server does not check it
/// use this so every framework answers the same (actix-http checks it while parsing).
pub fn host_is_valid(head: &dyn RequestHead) -> bool {
    let count = head.header_values("host").take(2).count();
    match head.version() {
        HttpVersion::Http09 | HttpVersion::Http10 => count <= 1,
        HttpVersion::Http11 => count == 1,
        // HTTP/2 and 3 carry the authority in a pseudo-header instead
        HttpVersion::H2 | HttpVersion::H3 => count <= 1,
    }
}

fn has_body(head: &dyn RequestHead) -> bool {
    head.header_values("transfer-encoding").next().is_some()
        || head
            .header_values("content-length")
            .any(|v| v.trim_ascii() != b"0")
}

/// Checks the protocol part of an upgrade request (everything but origin and hub state).
pub(crate) fn validate(head: &dyn RequestHead) -> Result<Accept, Rejection> {
    if !head.method().eq_ignore_ascii_case("GET") {
        return Err(Rejection::MethodNotGet);
    }
    if head.version() < HttpVersion::Http11 {
        return Err(Rejection::HttpVersion);
    }
    if !host_is_valid(head) {
        return Err(Rejection::BadHost);
    }
    let alone = head
        .header_values("upgrade")
        .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"));
    if !alone {
        return Err(if has_token(head, "upgrade", "websocket") {
            Rejection::UpgradeNotAlone
        } else {
            Rejection::NotUpgrade
        });
    }
    if !has_token(head, "connection", "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    if has_body(head) {
        return Err(Rejection::BodyNotAllowed);
    }
    if head.header_str("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Rejection::UnsupportedVersion);
    }
    let key = head
        .header_values("sec-websocket-key")
        .next()
        .map(<[u8]>::trim_ascii)
        .ok_or(Rejection::BadKey)?;
    let offered = crate::auth::offered_protocols(head).ok_or(Rejection::ProtocolsTooLarge)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(Accept {
            accept_key: accept_key(key),
            offered,
            protocol: None,
            deflate: None,
            extensions: None,
        }),
        _ => Err(Rejection::BadKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Head(&'static str, Vec<(&'static str, &'static str)>);
    impl RequestHead for Head {
        fn version(&self) -> HttpVersion {
            HttpVersion::Http11
        }
        fn method(&self) -> &str {
            self.0
        }
        fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
            let name = name.to_string();
            Box::new(
                self.1
                    .iter()
                    .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v.as_bytes()),
            )
        }
    }

    #[test]
    fn last_event_id_from_the_header_else_the_query() {
        struct WithQuery(Head, Option<&'static str>);
        impl RequestHead for WithQuery {
            fn version(&self) -> HttpVersion {
                self.0.version()
            }
            fn method(&self) -> &str {
                self.0.method()
            }
            fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a> {
                self.0.header_values(name)
            }
            fn query(&self) -> Option<&str> {
                self.1
            }
        }
        let head = |headers, query| WithQuery(Head("GET", headers), query);
        assert_eq!(
            head(vec![("Last-Event-ID", " 42 ")], None).last_event_id(),
            Some(42)
        );
        let both = head(vec![("Last-Event-ID", "7")], Some("last_event_id=9"));
        assert_eq!(both.last_event_id(), Some(7));
        let bad_header = head(vec![("Last-Event-ID", "abc")], Some("a=1&last_event_id=9"));
        assert_eq!(bad_header.last_event_id(), Some(9));
        assert_eq!(head(vec![], Some("last_event_id=-1")).last_event_id(), None);
        assert_eq!(head(vec![], Some("last_event_id=")).last_event_id(), None);
        assert_eq!(head(vec![], None).last_event_id(), None);
        // without a query() of its own, a head only reads the header
        assert_eq!(Head("GET", vec![]).last_event_id(), None);
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Host", "example.com"),
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
    }

    #[test]
    fn rfc_example_key() {
        let accept = validate(&Head("GET", good())).map(|a| a.accept_key);
        assert_eq!(accept.as_deref(), Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn rejections() {
        assert_eq!(
            validate(&Head("POST", good())),
            Err(Rejection::MethodNotGet)
        );
        assert_eq!(
            validate(&Head("GET", vec![("Host", "example.com")])),
            Err(Rejection::NotUpgrade)
        );
        let mut h = good();
        h[2] = ("Connection", "keep-alive");
        assert_eq!(
            validate(&Head("GET", h)),
            Err(Rejection::ConnectionNotUpgrade)
        );
        let mut h = good();
        h[3] = ("Sec-WebSocket-Version", "8");
        assert_eq!(
            validate(&Head("GET", h)),
            Err(Rejection::UnsupportedVersion)
        );
        let mut h = good();
        h[4] = ("Sec-WebSocket-Key", "c2hvcnQ=");
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadKey));
        let mut h = good();
        h.pop();
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadKey));
        // a second Connection header carrying the token is fine
        let mut h = good();
        h[2] = ("Connection", "keep-alive");
        h.push(("Connection", "upgrade"));
        assert!(validate(&Head("GET", h)).is_ok());
    }

    #[test]
    fn forms_not_every_adapter_serves() {
        let mut h = good();
        h.remove(0);
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadHost));
        let mut h = good();
        h.push(("Host", "example.com"));
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadHost));
        let mut h = good();
        h[1] = ("Upgrade", "h2c, websocket");
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::UpgradeNotAlone));
        let mut h = good();
        h.push(("Transfer-Encoding", "chunked"));
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BodyNotAllowed));
        let mut h = good();
        h.push(("Content-Length", "5"));
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BodyNotAllowed));
        // an empty body and a second Upgrade line are fine
        let mut h = good();
        h.push(("Content-Length", "0"));
        h.push(("Upgrade", "foo/1"));
        assert!(validate(&Head("GET", h)).is_ok());
    }
}
