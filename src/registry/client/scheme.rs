//! Which scheme a registry is spoken to with: HTTPS, and plain HTTP only where docker allows it
//! (a loopback registry, or any with `--insecure`) and no CA is configured for it, and only when
//! HTTPS cannot have worked: the server does not speak TLS, or the TLS handshake was closed or
//! reset before the server said anything (a plain-HTTP port behind a forwarder that drops what
//! it cannot parse). A certificate error never falls back. Docker does the same: for an insecure
//! registry (loopback ones are, by default) moby's `lookupV2Endpoints`
//! (registry/service_v2.go) lists an `http://` endpoint after the `https://` one, tried when
//! HTTPS fails.

use reqwest::{Response, StatusCode, Url};

use super::{Client, PingError};
use crate::http::is_temporary_status;
use crate::registry::RegistryError;

/// `scheme://host/`, the base of every URL of the registry.
pub(super) fn base_url(scheme: &str, host: &str) -> Result<Url, RegistryError> {
    Url::parse(&format!("{scheme}://{host}/")).map_err(|_| RegistryError::Protocol {
        host: host.to_owned(),
        what: "the registry host does not form a valid URL".into(),
    })
}

/// Whether plain HTTP may be tried at all for a registry: loopback or `--insecure`, and no CA
/// configured for it (a CA given for the registry means it speaks TLS).
pub(super) fn may_use_http(insecure: bool, loopback: bool, ca_configured: bool) -> bool {
    (insecure || loopback) && !ca_configured
}

impl Client {
    /// Pings over HTTPS, then over HTTP where that is allowed and HTTPS cannot have worked; the
    /// client is left on the scheme that answered.
    pub(super) async fn ping_either(
        &mut self,
        host: &str,
        may_use_http: bool,
    ) -> Result<Response, PingError> {
        match self.ping(may_use_http).await {
            Err(PingError::NotTls) if may_use_http => {
                self.base = base_url("http", host)?;
                self.ping(false).await
            }
            Err(PingError::HandshakeCut(https)) => {
                self.notices.detail(&format!(
                    "{}: the TLS handshake was cut short; trying plain HTTP",
                    self.registry
                ));
                self.base = base_url("http", host)?;
                match self.ping(false).await {
                    Ok(r) if answers_as_registry(r.status()) => Ok(r),
                    // Nothing that looks like a registry there either: HTTPS's error is the
                    // one to tell.
                    _ => {
                        self.base = base_url("https", host)?;
                        Err(PingError::Other(https))
                    }
                }
            }
            other => other,
        }
    }
}

/// An answer to `GET /v2/` a registry gives (an HTTPS server spoken to over HTTP answers 400).
fn answers_as_registry(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::UNAUTHORIZED || is_temporary_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_insecure_and_never_with_a_ca() {
        // (insecure, loopback, CA configured) -> may use HTTP
        for (insecure, loopback, ca, expected) in [
            (false, false, false, false),
            (false, true, false, true),
            (true, false, false, true),
            (true, true, false, true),
            (false, true, true, false),
            (true, false, true, false),
            (false, false, true, false),
        ] {
            assert_eq!(
                may_use_http(insecure, loopback, ca),
                expected,
                "insecure {insecure}, loopback {loopback}, CA {ca}"
            );
        }
    }

    #[test]
    fn an_https_server_spoken_to_over_http_is_not_a_registry() {
        assert!(answers_as_registry(StatusCode::OK));
        assert!(answers_as_registry(StatusCode::UNAUTHORIZED));
        assert!(answers_as_registry(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!answers_as_registry(StatusCode::BAD_REQUEST));
        assert!(!answers_as_registry(StatusCode::NOT_FOUND));
    }
}
