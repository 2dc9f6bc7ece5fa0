//! WebSocket upgrade validation (RFC 6455 §4.2.1), shared by every adapter.
//!
//! Adapters wrap their framework's request in a [`RequestHead`], call
//! [`Hub::accept`](crate::Hub::accept), and answer `101 Switching Protocols` with the returned
//! [`Accept`], or the [`Rejection`]'s status, headers and body.

use base64::Engine as _;

/// Read access to an HTTP request's method and headers; implemented by each adapter.
pub trait RequestHead {
    /// The request method, e.g. `"GET"`.
    fn method(&self) -> &str;
    /// Every value of the header `name` (lower-case), in order.
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a [u8]> + 'a>;

    /// The first value of header `name` as UTF-8, if present and valid.
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// What the adapter puts in its `101 Switching Protocols` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The value of `Sec-WebSocket-Accept`.
    pub accept_key: String,
}

impl Accept {
    /// The response headers of the 101, besides the status line.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", self.accept_key.as_str()),
        ]
    }
}

/// Why an upgrade was refused, and the response to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the method is not GET.
    MethodNotGet,
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
    /// 503: the hub is shutting down.
    ShuttingDown,
    /// 406: an event-stream endpoint got a request that is not a `GET` accepting
    /// `text/event-stream`.
    NotAcceptable,
}

impl Rejection {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Rejection::MethodNotGet | Rejection::ConnectionNotUpgrade | Rejection::BadKey => 400,
            Rejection::NotUpgrade | Rejection::UnsupportedVersion => 426,
            Rejection::OriginDenied => 403,
            Rejection::ShuttingDown => 503,
            Rejection::NotAcceptable => 406,
        }
    }

    /// A short plain-text body.
    pub fn body(self) -> &'static str {
        match self {
            Rejection::MethodNotGet => "WebSocket upgrade requires GET\n",
            Rejection::NotUpgrade => "this endpoint only speaks WebSocket (Upgrade: websocket)\n",
            Rejection::ConnectionNotUpgrade => "Connection header must contain 'upgrade'\n",
            Rejection::UnsupportedVersion => "unsupported Sec-WebSocket-Version (only 13)\n",
            Rejection::BadKey => "missing or invalid Sec-WebSocket-Key\n",
            Rejection::OriginDenied => "origin not allowed\n",
            Rejection::ShuttingDown => "server is shutting down\n",
            Rejection::NotAcceptable => "this endpoint serves text/event-stream to GET requests\n",
        }
    }

    /// Extra response headers the status requires.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Rejection::NotUpgrade => &[("upgrade", "websocket"), ("sec-websocket-version", "13")],
            Rejection::UnsupportedVersion => &[("sec-websocket-version", "13")],
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
pub fn accept_key(key: &[u8]) -> String {
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

/// Checks the protocol part of an upgrade request (everything but origin and hub state).
pub(crate) fn validate(head: &dyn RequestHead) -> Result<Accept, Rejection> {
    if !head.method().eq_ignore_ascii_case("GET") {
        return Err(Rejection::MethodNotGet);
    }
    if !has_token(head, "upgrade", "websocket") {
        return Err(Rejection::NotUpgrade);
    }
    if !has_token(head, "connection", "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    if head.header_str("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Rejection::UnsupportedVersion);
    }
    let key = head
        .header_values("sec-websocket-key")
        .next()
        .map(<[u8]>::trim_ascii)
        .ok_or(Rejection::BadKey)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(Accept {
            accept_key: accept_key(key),
        }),
        _ => Err(Rejection::BadKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Head(&'static str, Vec<(&'static str, &'static str)>);
    impl RequestHead for Head {
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

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
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
        assert_eq!(validate(&Head("GET", vec![])), Err(Rejection::NotUpgrade));
        let mut h = good();
        h[1] = ("Connection", "keep-alive");
        assert_eq!(
            validate(&Head("GET", h)),
            Err(Rejection::ConnectionNotUpgrade)
        );
        let mut h = good();
        h[2] = ("Sec-WebSocket-Version", "8");
        assert_eq!(
            validate(&Head("GET", h)),
            Err(Rejection::UnsupportedVersion)
        );
        let mut h = good();
        h[3] = ("Sec-WebSocket-Key", "c2hvcnQ=");
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadKey));
        let mut h = good();
        h.pop();
        assert_eq!(validate(&Head("GET", h)), Err(Rejection::BadKey));
        // a second Connection header carrying the token is fine
        let mut h = good();
        h[1] = ("Connection", "keep-alive");
        h.push(("Connection", "upgrade"));
        assert!(validate(&Head("GET", h)).is_ok());
    }
}
