//! What can go wrong below any protocol: reaching a host, TLS, a request cut or stalled, a
//! redirect loop. Each failure says whether the same request may succeed later
//! ([`HttpError::is_temporary`]); a status is "not now" or "never" by [`is_temporary_status`].
//! URLs are shown without their query or user information, and no variant holds a secret.

use std::time::Duration;

use reqwest::StatusCode;

/// Longest explanation taken from a server (an error body, a transport reason); a hostile or
/// broken server can send more.
const MAX_DETAIL_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("TLS with {host} failed: {reason} (use --ca-cert FILE for a private CA, or --insecure to skip verification)")]
    Tls { host: String, reason: String },
    /// HTTPS was required (a CA configured for the host, or a host off loopback) and the server
    /// answered in plain HTTP.
    #[error("{host} does not speak TLS, and a CA (--ca-cert or certs.d) or a host off loopback means HTTPS only (--insecure allows plain HTTP)")]
    NotTls { host: String },
    #[error("cannot use the CA certificates in {}: {reason}", path.display())]
    CaCert {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot use the client certificate {}: {reason}", path.display())]
    ClientCert {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{method} {url} failed: {reason}")]
    Transport {
        method: String,
        url: String,
        reason: String,
    },
    /// Nothing moved for the stall timeout: no byte of the body taken, no byte of the answer.
    #[error("{method} {url}: nothing came from {host} for {} s (--stall-timeout)", after.as_secs_f64())]
    Stalled {
        method: String,
        url: String,
        host: String,
        after: Duration,
    },
    /// A redirect loop: trying again would loop again.
    #[error("{method} {url} was redirected more than {max} times")]
    TooManyRedirects {
        method: String,
        url: String,
        max: usize,
    },
}

impl HttpError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::Transport { .. } | HttpError::Stalled { .. }
        )
    }
}

/// 408, 429 and the 5xx answers that mean "not now" rather than "never".
pub fn is_temporary_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `scheme://host/path` of a URL: query strings can carry upload state or signed tokens, and
/// user information a password.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// `host[:port]` of a URL, for messages.
pub fn host_of(url: &reqwest::Url) -> String {
    url[url::Position::BeforeHost..url::Position::AfterPort].to_owned()
}

/// A server's text made safe to show: control characters blanked, at most
/// [`MAX_DETAIL_CHARS`] characters.
pub fn bounded_text(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > MAX_DETAIL_CHARS {
        let cut: String = clean.chars().take(MAX_DETAIL_CHARS).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

/// The most specific reason in a transport error's source chain (e.g. "Connection refused").
pub fn transport_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut reason = None;
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(s) = source {
        reason = Some(s.to_string());
        source = s.source();
    }
    let reason = reason.unwrap_or_else(|| "request failed".to_owned());
    // A server that refuses the handshake this way usually wants a client certificate.
    let hint = if ["BadCertificate", "CertificateRequired"]
        .iter()
        .any(|alert| reason.contains(&format!("fatal alert: {alert}")))
    {
        " (the server wants a client certificate: put NAME.cert and NAME.key in certs.d/HOST:PORT/)"
    } else if reason.contains("CaUsedAsEndEntity") {
        " (a self-signed certificate: trust exactly it with --ca-cert FILE or certs.d/HOST:PORT/ca.crt)"
    } else {
        ""
    };
    bounded_text(&format!("{reason}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_query_and_userinfo() {
        let u: reqwest::Url = "https://user:pw@r.io/v2/x/blobs/uploads/1?_state=abc&digest=d"
            .parse()
            .unwrap();
        assert_eq!(display_url(&u), "https://r.io/v2/x/blobs/uploads/1");
        assert_eq!(host_of(&u), "r.io");
        let u: reqwest::Url = "http://[::1]:5000/v2/".parse().unwrap();
        assert_eq!(host_of(&u), "[::1]:5000");
    }

    #[test]
    fn temporary_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_temporary_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 501] {
            assert!(
                !is_temporary_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn bounds_hostile_text() {
        let huge = "x".repeat(10_000);
        assert!(bounded_text(&huge).chars().count() <= MAX_DETAIL_CHARS + 1);
        assert_eq!(bounded_text("a\x1b[31mb"), "a [31mb");
    }
}
