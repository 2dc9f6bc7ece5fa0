//! Authorization at the upgrade: what an application's check sees (an owned copy of the
//! request head, so the check may be async) and what it answers. Every adapter runs the check
//! the same way, before the 101 or the event stream.

use std::any::Any;
use std::net::SocketAddr;

/// Most `Sec-WebSocket-Protocol` values an upgrade may offer; more are refused
/// ([`Rejection::ProtocolsTooLarge`](crate::Rejection::ProtocolsTooLarge)).
pub const MAX_PROTOCOLS: usize = 32;
/// Most bytes across an upgrade's `Sec-WebSocket-Protocol` headers.
pub const MAX_PROTOCOL_BYTES: usize = 4096;

/// A request to upgrade (or to subscribe to an event stream) as an authorization step sees it.
///
/// ```
/// use hub_core::AuthRequest;
///
/// let request = AuthRequest::new("GET", "/ws/chat")
///     .with_query("room=lobby&token=t0k")
///     .with_header("cookie", "theme=dark; session=abc123")
///     .with_protocols(["bearer", "s3cret"]);
/// assert_eq!(request.query_param("token"), Some("t0k"));
/// assert_eq!(request.cookie("session"), Some("abc123"));
/// assert_eq!(request.bearer_token(), Some("s3cret"));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The method (`GET`).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Every header, names in lower case, in order (bounded by the server's header limits).
    pub headers: Vec<(String, String)>,
    /// The peer's address, when the server knows it.
    pub peer: Option<SocketAddr>,
    /// The subprotocols a WebSocket client offers (`Sec-WebSocket-Protocol`), in order.
    pub protocols: Vec<String>,
}

impl AuthRequest {
    /// A request for `path`.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            ..Self::default()
        }
    }

    /// Set [`Self::query`].
    pub fn with_query(mut self, query: &str) -> Self {
        self.query = Some(query.to_string());
        self
    }

    /// Adds a header (its name is lower-cased); values that are not UTF-8 are left out.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Set [`Self::peer`].
    pub fn with_peer(mut self, peer: Option<SocketAddr>) -> Self {
        self.peer = peer;
        self
    }

    /// Set [`Self::protocols`].
    pub fn with_protocols<S: Into<String>>(
        mut self,
        protocols: impl IntoIterator<Item = S>,
    ) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's raw value (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// A cookie's value, from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then_some(value)
            })
    }

    /// The bearer token, wherever a client can put it: `Authorization: Bearer <token>` (any
    /// HTTP client, an `EventSource` polyfill), or the subprotocols `bearer, <token>` (a
    /// browser's `new WebSocket(url, ["bearer", token])`, which cannot set headers).
    ///
    /// An `Authorization` header of another scheme (the `Basic` credentials a browser sends
    /// by itself to a site behind HTTP authentication) does not hide the subprotocols' token.
    pub fn bearer_token(&self) -> Option<&str> {
        if let Some(value) = self.header("authorization") {
            if let Some((scheme, token)) = value.trim().split_once(' ') {
                if scheme.eq_ignore_ascii_case("bearer") {
                    return Some(token.trim()).filter(|t| !t.is_empty());
                }
            }
        }
        let at = self
            .protocols
            .iter()
            .position(|p| p.eq_ignore_ascii_case("bearer"))?;
        self.protocols.get(at + 1).map(String::as_str)
    }
}

/// What an authorization step grants: the client's metadata (read back with
/// [`Client::data`](crate::Client::data)) and, for a WebSocket, the subprotocol the 101
/// answers with (one the client offered).
///
/// ```
/// use hub_core::Admission;
///
/// struct User(String);
/// let admission = Admission::new().data(User("ada".into())).protocol("bearer");
/// assert_eq!(admission.protocol.as_deref(), Some("bearer"));
/// let user = admission.data.as_ref().and_then(|d| d.downcast_ref::<User>());
/// assert_eq!(user.map(|u| u.0.as_str()), Some("ada"));
/// ```
#[derive(Default)]
#[non_exhaustive]
pub struct Admission {
    /// The client's metadata.
    pub data: Option<Box<dyn Any + Send + Sync>>,
    /// The subprotocol to answer with; it must be one of [`AuthRequest::protocols`] (else the
    /// adapter refuses the upgrade with 500 and logs the application's mistake; nothing
    /// invalid goes on the wire).
    pub protocol: Option<String>,
}

impl Admission {
    /// Admitted, with nothing attached.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`Self::data`].
    pub fn data<T: Any + Send + Sync>(mut self, data: T) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// Set [`Self::protocol`].
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = Some(protocol.to_string());
        self
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("data", &self.data.is_some())
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// What an authorization step refuses with: a status (401, 403, 429 …), headers (say
/// `WWW-Authenticate`) and a body. Counted in
/// [`Stats::rejected`](crate::Stats::rejected) under
/// [`Rejection::Refused`](crate::Rejection::Refused).
///
/// ```
/// use hub_core::Refusal;
///
/// let refusal = Refusal::new(401).header("www-authenticate", "Bearer").body("bad token\n");
/// assert_eq!(refusal.status, 401);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The status: 4xx or 5xx (anything else is answered as 403: see
    /// [`Refusal::answer_status`]).
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// The body (plain text).
    pub body: String,
}

impl Refusal {
    /// A refusal with `status` and a short body naming it.
    pub fn new(status: u16) -> Self {
        let status = if (400..600).contains(&status) {
            status
        } else {
            403
        };
        let body = match status {
            401 => "unauthorized\n",
            403 => "forbidden\n",
            429 => "too many requests\n",
            _ => "refused\n",
        };
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set [`Self::body`].
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    /// The headers to answer with: [`Self::headers`] less those that frame the response or
    /// the connection (`Content-Length`, `Transfer-Encoding`, `Connection` and the other
    /// hop-by-hop ones), which the server sets for the body it sends: a step's own could
    /// desynchronise the connection. A `Content-Type` among them replaces the default
    /// `text/plain` ([`Self::content_type`]).
    ///
    /// ```
    /// use hub_core::Refusal;
    ///
    /// let refusal = Refusal::new(401)
    ///     .header("Content-Type", "application/json")
    ///     .header("content-length", "0")
    ///     .header("www-authenticate", "Bearer")
    ///     .body(r#"{"error":"bad token"}"#);
    /// let names: Vec<&str> = refusal.answer_headers().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["Content-Type", "www-authenticate"]);
    /// assert_eq!(refusal.content_type(), Some("application/json"));
    /// ```
    pub fn answer_headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .filter(|(name, _)| {
                let framing = FRAMING_HEADERS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(name.trim()));
                if framing {
                    tracing::warn!(name, "a refusal's framing header is the server's: left out");
                }
                !framing
            })
    }

    /// The `Content-Type` among [`Self::headers`], if the step set one (the body is then
    /// answered as that type instead of `text/plain; charset=utf-8`).
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.as_str())
    }

    /// The status to answer with: [`Self::status`] when it is 4xx or 5xx, else 403 (the field
    /// is public, so a step may have set anything, a 101 or a 200 included; adapters answer
    /// this).
    ///
    /// ```
    /// use hub_core::Refusal;
    ///
    /// let mut refusal = Refusal::new(429);
    /// assert_eq!(refusal.answer_status(), 429);
    /// refusal.status = 101;
    /// assert_eq!(refusal.answer_status(), 403);
    /// ```
    pub fn answer_status(&self) -> u16 {
        if (400..600).contains(&self.status) {
            self.status
        } else {
            403
        }
    }
}

/// Headers that frame a response or its connection: the server's, never a refusal's.
const FRAMING_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The offered subprotocols of a request head, bounded: `None` when there are more than
/// [`MAX_PROTOCOLS`] or they take more than [`MAX_PROTOCOL_BYTES`] (checked before anything is
/// allocated for them).
pub(crate) fn offered_protocols(head: &dyn crate::RequestHead) -> Option<Vec<String>> {
    let mut bytes = 0;
    let mut count = 0;
    for value in head.header_values("sec-websocket-protocol") {
        bytes += value.len();
        count += value.split(|&b| b == b',').count();
        if bytes > MAX_PROTOCOL_BYTES || count > MAX_PROTOCOLS {
            return None;
        }
    }
    let mut out = Vec::with_capacity(count);
    for value in head.header_values("sec-websocket-protocol") {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if !token.is_empty() {
                out.push(String::from_utf8_lossy(token).into_owned());
            }
        }
    }
    Some(out)
}
