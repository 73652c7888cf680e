//! Reaching a registry: the HTTP client (timeouts, redirects, no `Referer`, the TLS settings of
//! `tls_config.rs`), and
//! telling transport failures apart: a server that does not speak TLS, or a handshake cut short
//! (plain HTTP may be tried on loopback), from a certificate error (never), and connection
//! failures from the rest.

use std::time::Duration;

use reqwest::{Method, Url};

use super::error::{display_url, transport_reason, RegistryError};

/// How long to wait for a TCP connection before calling a registry unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Redirects followed per request (reqwest's default, stated): blob reads may be sent to object
/// storage, but a loop ends in an error. `Authorization` never follows a redirect to another
/// host, port or scheme (reqwest strips it; tests/hostile.rs checks).
const MAX_REDIRECTS: usize = 10;

pub(super) fn base_url(scheme: &str, host: &str) -> Result<Url, RegistryError> {
    Url::parse(&format!("{scheme}://{host}/")).map_err(|_| RegistryError::Protocol {
        host: host.to_owned(),
        what: "the registry host does not form a valid URL".into(),
    })
}

pub(super) fn http_client(
    insecure: bool,
    ca_certs: &[std::path::PathBuf],
    client_cert: Option<&super::certs_d::ClientCert>,
    host: &str,
) -> Result<reqwest::Client, RegistryError> {
    let tls = super::tls_config::client_config(insecure, ca_certs, client_cert, host)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("nixpush/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        // A redirect says nothing of where it came from: the original URL (an upload's state,
        // a token realm's query) stays between nixpush and the registry.
        .referer(false)
        .build()
        .map_err(|e| RegistryError::Tls {
            host: host.to_owned(),
            reason: transport_reason(&e),
        })
}

pub(super) fn transport_error(method: &Method, url: &Url, e: &reqwest::Error) -> RegistryError {
    if e.is_redirect() {
        // A redirect loop: trying again would loop again.
        RegistryError::Protocol {
            host: url[url::Position::BeforeHost..url::Position::AfterPort].to_owned(),
            what: format!(
                "{method} {} was redirected more than {MAX_REDIRECTS} times",
                display_url(url)
            ),
        }
    } else if e.is_connect() {
        RegistryError::Connect {
            url: display_url(url),
            reason: transport_reason(e),
        }
    } else {
        RegistryError::Transport {
            method: method.to_string(),
            url: display_url(url),
            reason: transport_reason(e),
        }
    }
}

/// Every error in `e`'s source chain. hyper-util wraps the TLS error in io::Errors nested inside
/// each other, and an io::Error's `source()` skips its own payload: the payloads are unwrapped
/// by hand.
fn causes(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut found = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        found.push(s);
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(|e| e.get_ref()) {
            found.push(inner);
            io = inner.downcast_ref::<std::io::Error>();
        }
        source = s.source();
    }
    found
}

/// The rustls error somewhere in `e`'s source chain, if any.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    causes(e).into_iter().find_map(|s| s.downcast_ref())
}

/// The HTTPS connection was closed or reset during the TLS handshake, before the server said
/// anything: a plain-HTTP port behind a forwarder that drops what it cannot parse does this
/// (`kubectl port-forward`, some proxies). Not a certificate error, and not a refused connection.
pub(super) fn is_handshake_cut(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    e.is_connect()
        && e.url().is_some_and(|u| u.scheme() == "https")
        && rustls_error(e).is_none()
        && causes(e).into_iter().any(|s| {
            s.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                )
            })
        })
}

/// The server answered the TLS handshake with something that is not TLS (a plain HTTP server).
pub(super) fn is_not_tls(e: &reqwest::Error) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidMessage(_)))
}

pub(super) fn is_certificate_error(e: &reqwest::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::AlertReceived(_)
                | rustls::Error::NoCertificatesPresented
        )
    ) || is_alert_after_handshake(e)
}

/// An alert the server sent once the handshake was over (TLS 1.3 refuses a missing client
/// certificate this way): the TLS stream hands it on as an `io::Error` carrying only rustls'
/// message, so it is recognised by that message.
fn is_alert_after_handshake(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.to_string().starts_with("received fatal alert: ") {
            return true;
        }
        source = s.source();
    }
    false
}
