//! A server certificate the user configured for the registry, byte for byte, is trusted as it
//! is. Docker's documented self-signed setup (`openssl req -x509 ...`, copied to
//! `certs.d/HOST:PORT/ca.crt`) gives a certificate that is both the CA and the server's own;
//! OpenSSL marks it `CA:TRUE`, and webpki refuses a CA certificate presented as the server's
//! (`CaUsedAsEndEntity`), where docker, podman, skopeo and curl accept it. Everything else is
//! verified as before: the normal verifier is asked first, and only when it refuses is the
//! exact-match rule tried, which still checks the certificate's names and dates.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The normal verifier, plus the certificates configured for the registry (`--ca-cert`, its
/// certs.d `*.crt` files), any of which is accepted when the server presents it as its own.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl PinnedCertVerifier {
    pub fn new(inner: Arc<dyn ServerCertVerifier>, pinned: Vec<CertificateDer<'static>>) -> Self {
        PinnedCertVerifier { inner, pinned }
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        check_pinned(end_entity, server_name, now)?;
        Ok(ServerCertVerified::assertion())
    }

    // The handshake's signature proves the server holds the certificate's key, whichever rule
    // trusted the certificate: checked by the normal verifier in both cases.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// What a configured certificate must still be: issued for the name the connection is for
/// (its subjectAltName, checked by webpki), and within its dates at `now`.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let (not_before, not_after) = validity(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs();
    if now < not_before {
        return Err(CertificateError::NotValidYet.into());
    }
    if now > not_after {
        return Err(CertificateError::Expired.into());
    }
    Ok(())
}

/// A certificate's `notBefore` and `notAfter`, in seconds since the epoch: the one field of
/// RFC 5280's `TBSCertificate` this check needs, found by skipping the four before it (webpki
/// has parsed the certificate already but keeps its dates to itself).
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
///     version [0] EXPLICIT OPTIONAL, serialNumber, signature, issuer,
///     validity SEQUENCE { notBefore Time, notAfter Time }, ... }, ... }
/// ```
fn validity(cert: &[u8]) -> der::Result<(u64, u64)> {
    use der::asn1::{AnyRef, GeneralizedTime, UtcTime};
    use der::{Decode, Reader, SliceReader, Tag, TagNumber};

    let certificate = AnyRef::from_der(cert)?;
    let tbs = SliceReader::new(certificate.value())?.decode::<AnyRef<'_>>()?;
    let mut fields = SliceReader::new(tbs.value())?;
    let version = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(0),
    };
    if Tag::peek(&fields)? == version {
        fields.decode::<AnyRef<'_>>()?;
    }
    for _serial_signature_issuer in 0..3 {
        fields.decode::<AnyRef<'_>>()?;
    }
    let validity = fields.decode::<AnyRef<'_>>()?;
    let mut times = SliceReader::new(validity.value())?;
    let mut time = || -> der::Result<u64> {
        let at = match Tag::peek(&times)? {
            Tag::UtcTime => times.decode::<UtcTime>()?.to_unix_duration(),
            _ => times.decode::<GeneralizedTime>()?.to_unix_duration(),
        };
        Ok(at.as_secs())
    };
    Ok((time()?, time()?))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Refuses every certificate as webpki refuses a self-signed CA certificate, or accepts all.
    #[derive(Debug)]
    struct Normal {
        accepts: bool,
    }

    impl ServerCertVerifier for Normal {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if self.accepts {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(CertificateError::UnknownIssuer.into())
            }
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("not in these tests".into()))
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("not in these tests".into()))
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            Vec::new()
        }
    }

    /// A self-signed certificate for 127.0.0.1 and localhost, valid for two days from now,
    /// made as docker's documentation makes one (OpenSSL marks it `CA:TRUE`).
    fn self_signed() -> CertificateDer<'static> {
        self_signed_for_days(2)
    }

    fn self_signed_for_days(days: u32) -> CertificateDer<'static> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                &days.to_string(),
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                "key.pem",
                "-outform",
                "DER",
                "-out",
                "cert.der",
            ])
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{out:?}");
        CertificateDer::from(std::fs::read(dir.path().join("cert.der")).unwrap())
    }

    /// OpenSSL dates a certificate from now for `-days`: a `notAfter` before 2050 is a UTCTime,
    /// one after it a GeneralizedTime (RFC 5280, 4.1.2.5); both read.
    #[test]
    fn the_dates_are_read_in_both_asn1_time_forms() {
        let now = UnixTime::now().as_secs();
        for days in [2, 36_500] {
            let (not_before, not_after) = validity(self_signed_for_days(days).as_ref()).unwrap();
            assert!(now.abs_diff(not_before) < 120, "{not_before} vs now {now}");
            assert_eq!(
                not_after - not_before,
                u64::from(days) * 86_400,
                "{days} days"
            );
        }
        assert!(validity(b"\x30\x03\x02\x01\x01").is_err());
    }

    fn verify(
        verifier: &PinnedCertVerifier,
        cert: &CertificateDer<'_>,
        name: &str,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(cert, &[], &name, &[], now)
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn a_configured_certificate_is_trusted_within_its_names_and_dates() {
        let cert = self_signed();
        let pinned =
            PinnedCertVerifier::new(Arc::new(Normal { accepts: false }), vec![cert.clone()]);
        let now = UnixTime::now();
        for name in ["127.0.0.1", "localhost"] {
            assert!(verify(&pinned, &cert, name, now).is_ok(), "{name}");
        }
        let e = verify(&pinned, &cert, "other.example", now).unwrap_err();
        assert!(e.to_string().contains("not valid for name"), "{e}");
        let e = verify(&pinned, &cert, "127.0.0.2", now).unwrap_err();
        assert!(e.to_string().contains("not valid for name"), "{e}");
        // Before its notBefore (1970), after its notAfter (2200).
        let e = verify(&pinned, &cert, "127.0.0.1", at(0)).unwrap_err();
        assert_eq!(e, CertificateError::NotValidYet.into());
        let e = verify(&pinned, &cert, "127.0.0.1", at(7_258_118_400)).unwrap_err();
        assert_eq!(e, CertificateError::Expired.into());
    }

    #[test]
    fn only_the_very_certificate_configured_is_trusted() {
        let (cert, other) = (self_signed(), self_signed());
        let pinned = PinnedCertVerifier::new(Arc::new(Normal { accepts: false }), vec![other]);
        let e = verify(&pinned, &cert, "127.0.0.1", UnixTime::now()).unwrap_err();
        assert_eq!(
            e,
            CertificateError::UnknownIssuer.into(),
            "the normal verifier's error"
        );
        let nothing = PinnedCertVerifier::new(Arc::new(Normal { accepts: false }), Vec::new());
        assert!(verify(&nothing, &cert, "127.0.0.1", UnixTime::now()).is_err());
    }

    #[test]
    fn what_the_normal_verifier_accepts_stays_accepted() {
        let cert = self_signed();
        let normal = PinnedCertVerifier::new(Arc::new(Normal { accepts: true }), Vec::new());
        assert!(verify(&normal, &cert, "other.example", UnixTime::now()).is_ok());
    }
}
