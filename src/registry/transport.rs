//! Reaching a registry: the HTTP client (timeouts, TLS roots, `--insecure`, `--ca-cert`, no
//! `Referer`), and
//! telling transport failures apart: a server that does not speak TLS (plain HTTP may be tried
//! on loopback) from a certificate error (never), and connection failures from the rest.

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
    let mut builder = reqwest::Client::builder();
    if let Some(c) = client_cert {
        let fail = |reason: String| RegistryError::ClientCert {
            path: c.cert.clone(),
            reason,
        };
        let mut pem = std::fs::read(&c.cert).map_err(|e| fail(e.to_string()))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(&c.key).map_err(|e| fail(e.to_string()))?);
        // Never quote the key's content: only say that it did not parse.
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|_| fail("not a PEM certificate with its PEM private key".into()))?;
        builder = builder.identity(identity);
    }
    for path in ca_certs {
        let ca_error = |reason: String| RegistryError::CaCert {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| ca_error("not a PEM certificate bundle".into()))?;
        if certs.is_empty() {
            return Err(ca_error("it holds no certificate".into()));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .user_agent(concat!("nixpush/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        // A redirect says nothing of where it came from: the original URL (an upload's state,
        // a token realm's query) stays between nixpush and the registry.
        .referer(false)
        .danger_accept_invalid_certs(insecure)
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

/// The rustls error somewhere in `e`'s source chain, if any.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // hyper-util wraps the TLS error in io::Errors nested inside each other, and an
        // io::Error's `source()` skips its own payload: unwrap the payloads by hand.
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(|e| e.get_ref()) {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        source = s.source();
    }
    None
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
