//! Reaching a host: the one place an HTTP client is built (timeouts, no `Referer`, the TLS
//! settings of `tls.rs`, redirects followed by `redirect.rs`, never by reqwest), and telling
//! transport failures apart: a server that does not speak TLS, or a handshake cut short (plain
//! HTTP may be tried on loopback), from a certificate error (never), and connection failures
//! from the rest.

use std::time::Duration;

use reqwest::{Method, Url};

use super::error::{display_url, host_of, transport_reason, HttpError};
use super::tls::HostTls;

/// How long to wait for a TCP connection before calling a host unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client of one host's settings. Cheap to clone (the connections are shared).
#[derive(Clone, Debug)]
pub struct Transport {
    pub(super) client: reqwest::Client,
}

impl Transport {
    /// A client for `host` (`host[:port]`, named in TLS errors) with `settings`.
    pub fn new(settings: &HostTls, host: &str) -> Result<Transport, HttpError> {
        let tls = super::tls::client_config(settings, host)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("nixpush/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            // Redirects are followed hop by hop in `redirect.rs`, which decides what goes with
            // each: reqwest's own policy lets credentials reach a second hop on another origin.
            .redirect(reqwest::redirect::Policy::none())
            // A redirect says nothing of where it came from: the original URL (an upload's
            // state, a token realm's query) stays between nixpush and the host.
            .referer(false)
            .build()
            .map_err(|e| HttpError::Tls {
                host: host.to_owned(),
                reason: transport_reason(&e),
            })?;
        Ok(Transport { client })
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// The connection, TLS, or the exchange itself failed.
    Transport(reqwest::Error),
    /// More than [`MAX_REDIRECTS`](super::MAX_REDIRECTS) redirects.
    TooManyRedirects,
}

impl SendError {
    /// The reason to show (never a header, never a query string).
    pub fn reason(&self) -> String {
        match self {
            SendError::Transport(e) => transport_reason(e),
            SendError::TooManyRedirects => "too many redirects".into(),
        }
    }

    /// The error of `method url` that failed this way.
    pub fn to_http_error(&self, method: &Method, url: &Url) -> HttpError {
        match self {
            SendError::TooManyRedirects => HttpError::TooManyRedirects {
                method: method.to_string(),
                url: display_url(url),
                max: super::MAX_REDIRECTS,
            },
            SendError::Transport(e) if is_certificate_error(e) => HttpError::Tls {
                host: e.url().map(host_of).unwrap_or_else(|| host_of(url)),
                reason: transport_reason(e),
            },
            SendError::Transport(e) if e.is_connect() => HttpError::Connect {
                url: display_url(url),
                reason: transport_reason(e),
            },
            SendError::Transport(e) => HttpError::Transport {
                method: method.to_string(),
                url: display_url(url),
                reason: transport_reason(e),
            },
        }
    }

    /// The server answered the TLS handshake with something that is not TLS (a plain HTTP
    /// server).
    pub fn is_not_tls(&self) -> bool {
        matches!(self, SendError::Transport(e) if is_not_tls(e))
    }

    /// See [`is_handshake_cut`].
    pub fn is_handshake_cut(&self) -> bool {
        matches!(self, SendError::Transport(e) if is_handshake_cut(e))
    }

    /// A certificate refused, on either side: trying again will not change it.
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, SendError::Transport(e) if is_certificate_error(e))
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
fn is_handshake_cut(e: &reqwest::Error) -> bool {
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
fn is_not_tls(e: &reqwest::Error) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidMessage(_)))
}

fn is_certificate_error(e: &reqwest::Error) -> bool {
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
