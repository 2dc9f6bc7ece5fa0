//! Keeping the Redis password out of logs.

use std::fmt;

/// `url` with its password (and a `pass`/`password` query parameter, as in
/// `redis+unix:///run/redis.sock?pass=...`) replaced by `***`, for logging. Anything that
/// does not look like a URL is shown as `<redis url>`: it might be a secret.
///
/// ```
/// assert_eq!(
///     hub_redis::redact_url("redis://user:secret@example.com:6380/0"),
///     "redis://user:***@example.com:6380/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redis url>".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if matches!(key, "pass" | "password") => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The password of a connection, to scrub from error messages before they are logged.
#[derive(Clone, Default)]
pub(crate) struct Secret(Option<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub(crate) fn new(password: Option<&str>) -> Self {
        Self(password.filter(|p| !p.is_empty()).map(str::to_string))
    }

    /// `error` as text, without the password.
    pub(crate) fn scrub(&self, error: &dyn fmt::Display) -> String {
        let text = error.to_string();
        match &self.0 {
            Some(secret) => text.replace(secret.as_str(), "***"),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            ("redis://user:secret@host/0", "redis://user:***@host/0"),
            ("redis://:secret@host:6379", "redis://:***@host:6379"),
            (
                "rediss://u:s%40cret@h:1/2?protocol=resp3",
                "rediss://u:***@h:1/2?protocol=resp3",
            ),
            ("redis://user@host/", "redis://user@host/"),
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            ("redis://u:p@ss@host/", "redis://u:***@host/"),
            (
                "redis+unix:///tmp/r.sock?db=1&pass=secret",
                "redis+unix:///tmp/r.sock?db=1&pass=***",
            ),
            ("secret", "<redis url>"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let secret = Secret::new(Some("hunter2"));
        assert_eq!(secret.scrub(&"auth hunter2 failed"), "auth *** failed");
        assert_eq!(Secret::new(None).scrub(&"x"), "x");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
