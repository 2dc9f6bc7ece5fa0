//! Per-hub origin policy for WebSocket upgrades.

use crate::handshake::RequestHead;
use std::fmt;
use std::sync::Arc;

type CustomCheck = dyn Fn(&dyn RequestHead) -> bool + Send + Sync;

/// Which browser origins may open a connection to a hub. A denied upgrade gets HTTP 403 before
/// any WebSocket handshake happens.
///
/// Requests without an `Origin` header come from non-browser clients (which can forge any
/// origin anyway) and are allowed by every built-in policy; a [`OriginPolicy::custom`] check
/// decides for itself.
///
/// ```
/// use hub_core::OriginPolicy;
///
/// let policy = OriginPolicy::allow_list(["https://myapp.com", "http://localhost:8080"]);
/// assert!(policy.allows(Some("https://myapp.com"), Some("api.myapp.com")));
/// assert!(!policy.allows(Some("https://myapp.com.evil.com"), Some("api.myapp.com")));
/// assert!(!policy.allows(Some("null"), Some("api.myapp.com")));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Kashvi's default: every origin is accepted. The first cross-origin upgrade a hub accepts
    /// under this default logs one warning that names the fix.
    #[default]
    AllowAll,
    /// Allow every origin and never warn: the explicit choice of an open endpoint.
    AllowAllExplicit,
    /// gorilla/websocket's default: the `Origin`'s host and port must equal the `Host` header.
    SameOrigin,
    /// Only these serialized origins (`scheme://host[:port]`), compared case-insensitively and
    /// without the scheme's default port (`https://example.com:443` is `https://example.com`).
    /// Build it with [`OriginPolicy::allow_list`], which normalises the entries.
    AllowList(Arc<[String]>),
    /// A function of the request head (Kashvi's `SetCheckOrigin`, scoped to one hub).
    Custom(Arc<CustomCheck>),
}

impl OriginPolicy {
    /// An allow-list of serialized origins such as `https://myapp.com`. An entry written with
    /// its scheme's default port (`https://myapp.com:443`) matches the origin browsers send
    /// (`https://myapp.com`), as [`OriginPolicy::SameOrigin`] already does.
    pub fn allow_list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = origins
            .into_iter()
            .map(|o| normalize_origin(o.into().trim().trim_end_matches('/')))
            .filter(|o| !o.is_empty())
            .collect();
        OriginPolicy::AllowList(list.into())
    }

    /// A custom check on the request head; return `true` to allow.
    pub fn custom(check: impl Fn(&dyn RequestHead) -> bool + Send + Sync + 'static) -> Self {
        OriginPolicy::Custom(Arc::new(check))
    }

    /// Whether an upgrade with this `Origin` and `Host` is allowed by a built-in policy.
    /// A [`OriginPolicy::Custom`] policy needs the whole request: see [`Self::check`].
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        match self {
            OriginPolicy::AllowAll | OriginPolicy::AllowAllExplicit => true,
            OriginPolicy::SameOrigin => match origin {
                None => true,
                Some(origin) => is_same_origin(origin, host),
            },
            OriginPolicy::AllowList(list) => match origin {
                None => true,
                Some(origin) => {
                    let origin = normalize_origin(origin.trim());
                    list.iter()
                        .any(|allowed| normalize_origin(allowed) == origin)
                }
            },
            OriginPolicy::Custom(_) => false,
        }
    }

    /// Runs the policy against a request head.
    pub fn check(&self, head: &dyn RequestHead) -> bool {
        match self {
            OriginPolicy::Custom(check) => check(head),
            other => other.allows(head.header_str("origin"), head.header_str("host")),
        }
    }
}

/// The default port of a scheme whose origins carry one.
fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    }
}

/// A serialized origin in lower case, without its scheme's default port.
fn normalize_origin(origin: &str) -> String {
    let lower = origin.to_ascii_lowercase();
    let Some((scheme, authority)) = lower.split_once("://") else {
        return lower;
    };
    match default_port(scheme).and_then(|port| authority.strip_suffix(port)) {
        Some(host) if host.ends_with(':') => {
            format!("{scheme}://{}", &host[..host.len() - 1])
        }
        _ => lower,
    }
}

/// Whether `origin`'s authority (host and port) equals the `Host` header, ignoring ASCII case.
pub(crate) fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false; // "null" and garbage
    };
    let authority = authority.trim_end_matches('/');
    if authority.contains('/') || authority.contains('@') {
        return false;
    }
    let host = host.trim();
    if authority.eq_ignore_ascii_case(host) {
        return true;
    }
    // `Host: example.com` matches `https://example.com:443` and vice versa.
    let Some(default_port) = default_port(scheme) else {
        return false;
    };
    let suffix = format!(":{default_port}");
    let strip = |a: &str| -> String {
        let lower = a.to_ascii_lowercase();
        match lower.strip_suffix(&suffix) {
            Some(h) => h.to_string(),
            None => lower,
        }
    };
    strip(authority) == strip(host)
}

impl fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPolicy::AllowAll => f.write_str("AllowAll"),
            OriginPolicy::AllowAllExplicit => f.write_str("AllowAllExplicit"),
            OriginPolicy::SameOrigin => f.write_str("SameOrigin"),
            OriginPolicy::AllowList(list) => f.debug_tuple("AllowList").field(list).finish(),
            OriginPolicy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin() {
        let p = OriginPolicy::SameOrigin;
        assert!(p.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(p.allows(Some("https://Example.com"), Some("example.com")));
        assert!(p.allows(Some("https://example.com:443"), Some("example.com")));
        assert!(p.allows(None, Some("example.com")));
        assert!(!p.allows(Some("http://localhost:8080"), Some("127.0.0.1:8080")));
        assert!(!p.allows(Some("null"), Some("example.com")));
        assert!(!p.allows(Some("https://example.com.evil.com"), Some("example.com")));
        assert!(!p.allows(Some("https://evil-example.com"), Some("example.com")));
        assert!(!p.allows(Some("https://example.com@evil.com"), Some("example.com")));
        assert!(!p.allows(Some("http://example.com:8080"), Some("example.com")));
    }

    #[test]
    fn allow_list_is_exact() {
        let p = OriginPolicy::allow_list(["https://example.com/", " http://localhost:3000 "]);
        assert!(p.allows(Some("https://EXAMPLE.com"), None));
        assert!(p.allows(Some("http://localhost:3000"), None));
        assert!(!p.allows(Some("http://localhost:3001"), None));
        assert!(!p.allows(Some("null"), None));
        assert!(!p.allows(Some("https://example.com.evil.com"), None));
        assert!(!p.allows(Some("https://evil-example.com"), None));
        assert!(!p.allows(Some("http://example.com"), None));
    }

    #[test]
    fn allow_list_ignores_default_ports() {
        let p = OriginPolicy::allow_list(["https://example.com:443", "http://LOCALHOST:80/"]);
        assert!(p.allows(Some("https://example.com"), None));
        assert!(p.allows(Some("https://example.com:443"), None));
        assert!(p.allows(Some("http://localhost"), None));
        assert!(!p.allows(Some("https://example.com:8443"), None));
        assert!(!p.allows(Some("http://example.com"), None));
        assert!(!p.allows(Some("https://localhost"), None));
        assert!(!p.allows(Some("https://example.com:4430"), None));
        let p = OriginPolicy::allow_list(["https://example.com"]);
        assert!(p.allows(Some("https://example.com:443"), None));
        assert!(!p.allows(Some("https://example.com:44"), None));
    }
}
