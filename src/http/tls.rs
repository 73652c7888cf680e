//! The TLS settings of every HTTP client (a registry's, a binary cache's), built here and handed
//! to reqwest whole, so that the server's certificate goes through [`PinnedCertVerifier`]. They are what reqwest would build
//! itself: a crypto provider (ring, the crate's only one), TLS 1.2 and 1.3, the platform's roots plus the configured CAs,
//! ALPN for HTTP/2 and HTTP/1.1, the client certificate for mutual TLS, and `--insecure`
//! accepting any certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::certs_d::ClientCert;
use super::error::HttpError;
use super::pinned_cert::PinnedCertVerifier;

/// What a user said about TLS for the hosts of a run: the rest (certs.d) is looked up per host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Accept any certificate (`--insecure`).
    pub insecure: bool,
    /// A PEM file of extra certificates to trust (`--ca-cert`: a private CA, or a server's own
    /// self-signed certificate).
    pub ca_cert: Option<PathBuf>,
}

/// The TLS settings for one host (`host[:port]`): the options, and what certs.d holds for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTls {
    pub insecure: bool,
    /// `--ca-cert`, then the CAs certs.d holds for the host (as docker and podman do).
    pub ca_certs: Vec<PathBuf>,
    /// The client certificate certs.d holds for the host (mutual TLS).
    pub client_cert: Option<ClientCert>,
}

impl TlsOptions {
    /// The settings for `host` (`host[:port]`, as in an image reference or a URL).
    pub fn for_host(&self, host: &str) -> Result<HostTls, HttpError> {
        let ca_certs = self
            .ca_cert
            .iter()
            .cloned()
            .chain(super::certs_d::ca_files(host))
            .collect();
        let client_cert =
            super::certs_d::client_certificate(host).map_err(|e| HttpError::ClientCert {
                path: e.cert.clone(),
                reason: e.to_string(),
            })?;
        Ok(HostTls {
            insecure: self.insecure,
            ca_certs,
            client_cert,
        })
    }
}

/// The client's TLS configuration for `host`: `ca_certs` are PEM files of extra trusted
/// certificates (`--ca-cert`, then certs.d's), `client_cert` the identity for mutual TLS.
pub(super) fn client_config(
    settings: &HostTls,
    host: &str,
) -> Result<rustls::ClientConfig, HttpError> {
    let (insecure, ca_certs, client_cert) = (
        settings.insecure,
        &settings.ca_certs,
        settings.client_cert.as_ref(),
    );
    let tls_error = |reason: String| HttpError::Tls {
        host: host.to_owned(),
        reason,
    };
    // The provider an application installed, else ring's (the only one the crate builds).
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut extra = Vec::new();
    for path in ca_certs {
        extra.extend(read_ca_file(path)?);
    }
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(AnyCertificate(provider.clone()))
    } else {
        let platform = if extra.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra.clone(),
                provider.clone(),
            )
        }
        .map_err(|e| tls_error(e.to_string()))?;
        Arc::new(PinnedCertVerifier::new(Arc::new(platform), extra))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(c) => {
            let (certs, key) = read_identity(c)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| HttpError::ClientCert {
                    path: c.cert.clone(),
                    reason: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file given as trusted (a CA bundle, or a server's own).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let ca_error = |reason: String| HttpError::CaCert {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ca_error("not a PEM certificate bundle".into()))?;
    if certs.is_empty() {
        return Err(ca_error("it holds no certificate".into()));
    }
    Ok(certs)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A client certificate (with any chain after it) and its private key, each PEM file holding
/// either or both, as docker reads `NAME.cert` and `NAME.key`.
fn read_identity(c: &ClientCert) -> Result<Identity, HttpError> {
    let fail = |reason: String| HttpError::ClientCert {
        path: c.cert.clone(),
        reason,
    };
    let mut pem = std::fs::read(&c.cert).map_err(|e| fail(e.to_string()))?;
    pem.push(b'\n');
    pem.extend(std::fs::read(&c.key).map_err(|e| fail(e.to_string()))?);
    // Never quote the key's content: only say that it did not parse.
    let unusable = || fail("not a PEM certificate with its PEM private key".into());
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| unusable())?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| unusable())?;
    if certs.is_empty() {
        return Err(unusable());
    }
    Ok((certs, key))
}

/// `--insecure`: any certificate, any handshake signature, as docker's `insecure-registries`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
