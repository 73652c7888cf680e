//! Registry errors: what failed (method and URL, query strings stripped), the registry's own
//! explanation parsed from its error body and bounded in size, and whether trying again may help.
//! No variant ever holds a credential or token.

use std::time::Duration;

use reqwest::StatusCode;

/// Longest registry explanation shown to the user; a hostile or broken registry can send more.
const MAX_DETAIL_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("TLS with {host} failed: {reason} (use --ca-cert FILE for a private CA, or --insecure to skip verification)")]
    Tls { host: String, reason: String },
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
    #[error(
        "the registry answered {status} to {method} {url}{}",
        detail_suffix(detail)
    )]
    Status {
        method: String,
        url: String,
        status: StatusCode,
        detail: String,
        /// The wait the registry asked for (`Retry-After`), if any.
        retry_after: Option<Duration>,
    },
    /// A 401 to a request whose body was a stream (it cannot be sent again as it is): the token
    /// was renewed, and the whole upload may be tried again with it.
    #[error("the registry refused the token for {method} {url} (expired?); a new one was fetched")]
    TokenRenewed { method: String, url: String },
    #[error("registry {host} denied access{}: {reason}", user.as_ref().map(|u| format!(" for user {u:?}")).unwrap_or_default())]
    Denied {
        host: String,
        user: Option<String>,
        reason: String,
    },
    #[error("registry {host} gave an unusable answer: {what}")]
    Protocol { host: String, what: String },
    /// Nothing moved for the stall timeout: no byte of the body taken, no byte of the answer.
    #[error("{method} {url}: nothing came from the registry for {} s (--stall-timeout)", after.as_secs_f64())]
    Stalled {
        method: String,
        url: String,
        after: Duration,
    },
    /// The registry no longer knows an upload session whose commit failed, and does not hold
    /// the blob: the upload starts again.
    #[error("the registry lost the upload session at {url}")]
    SessionLost { url: String },
    /// A request already retried as long as the policy allows (a token fetch inside an upload
    /// step): final, so the step that needed it is not retried around it.
    #[error(transparent)]
    GaveUp(Box<RegistryError>),
    /// The host refused this way of sending a blob (a streamed body without a length, a body
    /// over its cap); what it takes instead is now a host fact, and the upload goes that way.
    #[error(transparent)]
    WayRefused(Box<RegistryError>),
    /// An OCI manifest or index refused as such (400 `MANIFEST_INVALID`, 415): the host may take
    /// the same image in Docker schema 2 media types.
    #[error(transparent)]
    FormatRefused(Box<RegistryError>),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl RegistryError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_temporary(&self) -> bool {
        match self {
            RegistryError::Connect { .. }
            | RegistryError::Transport { .. }
            | RegistryError::Stalled { .. }
            | RegistryError::SessionLost { .. } => true,
            RegistryError::Status { status, .. } => is_temporary_status(*status),
            RegistryError::TokenRenewed { .. } => true,
            _ => false,
        }
    }

    /// The error of a request whose retries are spent: a temporary one becomes [`GaveUp`],
    /// which nothing retries again; a final one stays as it is.
    ///
    /// [`GaveUp`]: RegistryError::GaveUp
    pub fn given_up(self) -> RegistryError {
        if self.is_temporary() {
            RegistryError::GaveUp(Box::new(self))
        } else {
            self
        }
    }

    /// How long the registry asked to wait before trying again (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// 408, 429 and the 5xx answers that mean "not now" rather than "never".
pub fn is_temporary_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `scheme://host/path` of a URL: query strings can carry upload state or signed tokens.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// The registry's explanation from an error body: `{"errors":[{"code","message"}]}` as the
/// distribution spec has it, else the first line of the text, bounded either way.
pub fn explain_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned(),
    };
    bound(&text)
}

fn bound(text: &str) -> String {
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
        " (the registry wants a client certificate: put NAME.cert and NAME.key in certs.d/HOST:PORT/)"
    } else if reason.contains("CaUsedAsEndEntity") {
        " (a self-signed certificate: trust exactly it with --ca-cert FILE or certs.d/HOST:PORT/ca.crt)"
    } else {
        ""
    };
    bound(&format!("{reason}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_distribution_error_bodies() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(explain_body(body), "UNAUTHORIZED: authentication required");
        assert_eq!(explain_body(b"\n  upstream down\nmore"), "upstream down");
    }

    #[test]
    fn bounds_hostile_bodies() {
        let huge = "x".repeat(10_000);
        let shown = explain_body(huge.as_bytes());
        assert!(shown.chars().count() <= MAX_DETAIL_CHARS + 1);
        assert_eq!(explain_body(b"a\x1b[31mb"), "a [31mb");
    }

    #[test]
    fn urls_lose_query_and_userinfo() {
        let u: reqwest::Url = "https://user:pw@r.io/v2/x/blobs/uploads/1?_state=abc&digest=d"
            .parse()
            .unwrap();
        assert_eq!(display_url(&u), "https://r.io/v2/x/blobs/uploads/1");
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
}
