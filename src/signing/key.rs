//! ECDSA P-256 keys: the private key a push signs with (read from cosign's encrypted format or
//! an unencrypted PKCS#8 PEM), the public key `verify` checks with (PKIX PEM), and a new pair
//! for `nixpush key generate`. Signatures are ECDSA over SHA-256, DER-encoded, as cosign makes
//! them; RFC 6979 makes them deterministic, so signing the same payload twice gives one signature.

use std::path::Path;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use p256::pkcs8::{DecodePublicKey, PrivateKeyInfoRef};

use super::encrypted_key::{self, OpenError, COSIGN_KEY_LABEL, SIGSTORE_KEY_LABEL};
use super::{KeyError, Passphrase};

/// The private key a push signs with. `Debug` shows only the public half's fingerprint.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public_key().fingerprint())
    }
}

/// `path` as an error names it.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

impl Signer {
    /// Reads the private key at `path`; `passphrase` is asked for (once) only when the key is
    /// encrypted.
    pub fn load(
        path: &Path,
        passphrase: &mut dyn FnMut() -> Option<Passphrase>,
    ) -> Result<Signer, KeyError> {
        let text = std::fs::read(path).map_err(|e| KeyError::Unreadable {
            path: shown(path),
            reason: e.kind().to_string(),
        })?;
        Signer::from_pem(&text, path, passphrase)
    }

    /// A private key from its PEM text (`path`: what errors name). `passphrase` is a pointer,
    /// not a type parameter: the PKCS#8 decoding below is compiled here once, not in each
    /// caller's crate.
    pub fn from_pem(
        text: &[u8],
        path: &Path,
        passphrase: &mut dyn FnMut() -> Option<Passphrase>,
    ) -> Result<Signer, KeyError> {
        let not_a_key = |reason: String| KeyError::NotAKey {
            path: shown(path),
            reason,
        };
        let (label, body) = pem::decode_vec(text)
            .map_err(|_| not_a_key("no PEM block (a cosign key, or a PKCS#8 PEM)".into()))?;
        let der = match label {
            SIGSTORE_KEY_LABEL | COSIGN_KEY_LABEL => {
                let passphrase =
                    passphrase().ok_or_else(|| KeyError::NoPassphrase { path: shown(path) })?;
                encrypted_key::open(&body, &passphrase).map_err(|e| match e {
                    OpenError::WrongPassphrase => KeyError::WrongPassphrase { path: shown(path) },
                    OpenError::Malformed(m) => not_a_key(m),
                })?
            }
            "PRIVATE KEY" => zeroize::Zeroizing::new(body),
            "EC PRIVATE KEY" => {
                return Err(not_a_key(
                    "a SEC1 EC key: convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)".into(),
                ))
            }
            other => return Err(not_a_key(format!("a PEM block of type {other:?}"))),
        };
        match SigningKey::from_pkcs8_der(&der) {
            Ok(key) => Ok(Signer { key }),
            Err(_) => Err(KeyError::WrongType {
                path: shown(path),
                kind: key_kind(&der),
            }),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<Signer, KeyError> {
        loop {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut()).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
            // A value past the curve's order (odds about 2^-32) is drawn again.
            if let Ok(key) = SigningKey::from_slice(bytes.as_ref()) {
                return Ok(Signer { key });
            }
        }
    }

    /// The DER-encoded ECDSA-P256-SHA256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// The key in cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`).
    pub fn to_encrypted_pem(&self, passphrase: &Passphrase) -> Result<String, KeyError> {
        let der = self
            .key
            .to_pkcs8_der()
            .expect("a P-256 key always encodes as PKCS#8");
        let body =
            encrypted_key::seal(der.as_bytes(), passphrase).map_err(KeyError::NoRandomness)?;
        Ok(
            pem::encode_string(SIGSTORE_KEY_LABEL, LineEnding::LF, &body)
                .expect("a PEM label and body always encode"),
        )
    }
}

/// What kind of key a PKCS#8 document holds that is not a P-256 one.
fn key_kind(der: &[u8]) -> String {
    const KINDS: [(&str, &str); 6] = [
        ("1.2.840.113549.1.1.1", "RSA"),
        ("1.3.101.112", "Ed25519"),
        ("1.3.101.113", "Ed448"),
        ("1.3.132.0.34", "ECDSA P-384"),
        ("1.3.132.0.35", "ECDSA P-521"),
        ("1.3.132.0.10", "ECDSA secp256k1"),
    ];
    let Ok(info) = PrivateKeyInfoRef::try_from(der) else {
        return "unreadable PKCS#8".into();
    };
    let algorithm = info.algorithm.oid.to_string();
    let curve = info
        .algorithm
        .parameters_oid()
        .map(|o| o.to_string())
        .unwrap_or_default();
    KINDS
        .iter()
        .find(|(oid, _)| *oid == curve || *oid == algorithm)
        .map_or_else(
            || format!("unknown ({algorithm})"),
            |(_, k)| (*k).to_owned(),
        )
}

/// A public key signatures are checked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// A PKIX `PUBLIC KEY` PEM, as cosign and `nixpush key generate` write it.
    pub fn from_pem(text: &str, path: &Path) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text.trim())
            .map(|key| PublicKey { key })
            .map_err(|e| KeyError::NotAPublicKey {
                path: shown(path),
                reason: format!("not a P-256 PKIX PEM ({e})"),
            })
    }

    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Unreadable {
            path: shown(path),
            reason: e.kind().to_string(),
        })?;
        PublicKey::from_pem(&text, path)
    }

    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 key always encodes as PKIX")
    }

    /// Whether `signature` (DER, as cosign writes it; the fixed 64-byte form is taken too) is
    /// this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let parsed = DerSignature::from_bytes(signature)
            .ok()
            .and_then(|d| Signature::from_der(d.as_bytes()).ok())
            .or_else(|| Signature::from_slice(signature).ok());
        parsed.is_some_and(|s| self.key.verify(message, &s).is_ok())
    }

    /// The SHA-256 of the key's DER, as hex: what names the key in output.
    pub fn fingerprint(&self) -> String {
        let der = self
            .key
            .to_public_key_der()
            .expect("a P-256 key always encodes as PKIX");
        crate::digest::Digest::of(der.as_bytes()).hex()[..16].to_owned()
    }
}

/// A new key pair written as `nixpush key generate` writes it.
pub struct KeyPair;

impl KeyPair {
    /// Writes `PREFIX.key` (encrypted with `passphrase`, mode 0600, never overwriting) and
    /// `PREFIX.pub`; returns the two paths.
    pub fn generate(
        prefix: &Path,
        passphrase: &Passphrase,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), KeyError> {
        let signer = Signer::generate()?;
        let key_path = with_suffix(prefix, "key");
        let pub_path = with_suffix(prefix, "pub");
        // Neither is written if either exists: never a new key beside an old public key.
        for path in [&key_path, &pub_path] {
            if path.symlink_metadata().is_ok() {
                return Err(KeyError::Unwritable {
                    path: shown(path),
                    reason: "it exists already (nothing was overwritten)".into(),
                });
            }
        }
        let private = signer.to_encrypted_pem(passphrase)?;
        write_new(&key_path, private.as_bytes(), 0o600)?;
        if let Err(e) = write_new(&pub_path, signer.public_key().to_pem().as_bytes(), 0o644) {
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        Ok((key_path, pub_path))
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    name.into()
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let unwritable = |e: std::io::Error| KeyError::Unwritable {
        path: shown(path),
        reason: if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it exists already (nothing was overwritten)".into()
        } else {
            e.kind().to_string()
        },
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(unwritable)?;
    file.write_all(bytes).map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let a = Signer::generate().unwrap();
        let b = Signer::generate().unwrap();
        let sig = a.sign(b"payload");
        assert_eq!(sig, a.sign(b"payload"), "RFC 6979: deterministic");
        assert!(a.public_key().verifies(b"payload", &sig));
        assert!(!a.public_key().verifies(b"other", &sig));
        assert!(!b.public_key().verifies(b"payload", &sig));
        assert!(!a.public_key().verifies(b"payload", b"junk"));
    }

    #[test]
    fn an_encrypted_key_reads_back_with_its_passphrase() {
        let a = Signer::generate().unwrap();
        let pem = a.to_encrypted_pem(&Passphrase::new("pw")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let path = Path::new("k.key");
        let back =
            Signer::from_pem(pem.as_bytes(), path, &mut || Some(Passphrase::new("pw"))).unwrap();
        assert_eq!(back.public_key(), a.public_key());
        let wrong = Signer::from_pem(pem.as_bytes(), path, &mut || Some(Passphrase::new("no")));
        assert!(matches!(wrong, Err(KeyError::WrongPassphrase { .. })));
        let none = Signer::from_pem(pem.as_bytes(), path, &mut || None);
        assert!(matches!(none, Err(KeyError::NoPassphrase { .. })));
        assert!(!format!("{back:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_plain_pkcs8_key_needs_no_passphrase_and_the_public_pem_round_trips() {
        let a = Signer::generate().unwrap();
        let pem = a.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let back =
            Signer::from_pem(pem.as_bytes(), Path::new("k"), &mut || panic!("asked")).unwrap();
        assert_eq!(back.public_key(), a.public_key());
        let public = PublicKey::from_pem(&a.public_key().to_pem(), Path::new("k.pub")).unwrap();
        assert_eq!(public, a.public_key());
    }

    #[test]
    fn other_key_types_are_named() {
        // An Ed25519 PKCS#8 key (RFC 8410's example).
        let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let e = Signer::from_pem(ed.as_bytes(), Path::new("ed.pem"), &mut || None).unwrap_err();
        assert_eq!(e.to_string(), "ed.pem holds a key of type Ed25519: only ECDSA P-256 keys make cosign-format signatures");
        let junk = Signer::from_pem(b"hello", Path::new("j"), &mut || None).unwrap_err();
        assert!(matches!(junk, KeyError::NotAKey { .. }));
    }
}
