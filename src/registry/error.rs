//! Registry errors: what failed (method and URL, query strings stripped), the registry's own
//! explanation parsed from its error body and bounded in size, and whether trying again may help.
//! No variant ever holds a credential or token.

use std::time::Duration;

use reqwest::StatusCode;

use crate::http::{bounded_text, is_temporary_status, HttpError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reaching the host failed below the distribution API (connection, TLS, a request cut
    /// or stalled, a redirect loop).
    #[error(transparent)]
    Http(#[from] HttpError),
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
            RegistryError::Http(e) => e.is_temporary(),
            RegistryError::SessionLost { .. } => true,
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
    bounded_text(&text)
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
        assert!(shown.chars().count() <= 301);
        assert_eq!(explain_body(b"a\x1b[31mb"), "a [31mb");
    }
}
