//! Certificates a test makes itself, and where clients look for them: a self-signed
//! certificate as docker's documentation makes one (a registry serving it is one call away), and
//! a config home of its own whose `containers/certs.d` a push reads.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::bed::{require, run_ok};
use super::nix::fixture;
use super::registry::{Registry, RegistryConfig};
use super::run::{Nixpush, Run};

/// A config home of its own whose certs.d (podman's rootless location; docker's
/// /etc/docker/certs.d has the same layout) is what pushes through it read.
pub struct CertsD(tempfile::TempDir);

impl CertsD {
    pub fn new() -> CertsD {
        CertsD(tempfile::tempdir().unwrap())
    }

    /// The directory for `registry`'s host, created.
    pub fn dir(&self, registry: &Registry) -> PathBuf {
        let dir = self
            .0
            .path()
            .join("containers/certs.d")
            .join(registry.host());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Pushes the demo app to `image` with this config home.
    pub fn push(&self, nixpush: &Nixpush, image: &str) -> Run {
        let home = self.0.path().display().to_string();
        nixpush.run_with(
            &[&fixture("demo", "app"), image],
            &[("XDG_CONFIG_HOME", home)],
            None,
        )
    }
}

/// A self-signed certificate and its key, made as docker's documentation makes one
/// (https://docs.docker.com/engine/security/certificates/ and "Test an insecure registry"):
/// `openssl req -x509` with OpenSSL's default config, which marks it `CA:TRUE`, so that the one
/// certificate is both the CA and the server's. webpki alone refuses it (`CaUsedAsEndEntity`,
/// https://github.com/rustls/webpki/issues/205); docker, podman, skopeo and curl accept it when
/// it is configured for the registry, and so does nixpush, byte for byte.
pub struct SelfSigned(tempfile::TempDir);

impl SelfSigned {
    /// Valid from now, for `san` (openssl's `subjectAltName` syntax).
    pub fn new(san: &str) -> SelfSigned {
        let s = SelfSigned(tempfile::tempdir().unwrap());
        s.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            &format!("subjectAltName={san}"),
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ]);
        s
    }

    /// The same, valid only between two dates (`YYYYMMDDHHMMSSZ`): `openssl req -x509` has no
    /// start date, `openssl ca -selfsign` has (OpenSSL 3.0's `x509` has neither).
    pub fn dated(san: &str, not_before: &str, not_after: &str) -> SelfSigned {
        let s = SelfSigned(tempfile::tempdir().unwrap());
        let d = s.0.path();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = own\n[own]\ndatabase = index.txt\nserial = serial\n\
             new_certs_dir = .\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n\
             [any]\ncommonName = supplied\n",
        )
        .unwrap();
        s.openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            &format!("subjectAltName={san}"),
            "-addext",
            "basicConstraints=critical,CA:true",
            "-keyout",
            "key.pem",
            "-out",
            "cert.csr",
        ]);
        s.openssl(&[
            "ca",
            "-config",
            "ca.cnf",
            "-batch",
            "-notext",
            "-selfsign",
            "-keyfile",
            "key.pem",
            "-in",
            "cert.csr",
            "-startdate",
            not_before,
            "-enddate",
            not_after,
            "-out",
            "cert.pem",
        ]);
        s
    }

    fn openssl(&self, args: &[&str]) {
        require("openssl");
        run_ok(
            Command::new("openssl")
                .current_dir(self.0.path())
                .args(args)
                .stderr(Stdio::null()),
            "openssl",
        );
    }

    pub fn cert(&self) -> PathBuf {
        self.0.path().join("cert.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.0.path().join("key.pem")
    }

    /// A registry serving this certificate.
    pub fn registry(&self) -> Registry {
        Registry::start_with(RegistryConfig {
            server_cert: Some((self.cert(), self.0.path().join("key.pem"))),
            ..Default::default()
        })
    }
}
