//! What one signature or attestation found under an image's `.sig` / `.att` tag says, decided
//! without I/O: whether the key made it, whether it names this image's digest, and (for a
//! signature) this repository. These are the checks cosign, sigstore-rs and containers/image make
//! of a key-signed image.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::digest::Digest;
use crate::signing::{Envelope, PublicKey, SimpleSigning, IN_TOTO_PAYLOAD_TYPE};

/// The verdict on one stored signature or attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Made by the key, for this image (and repository).
    Valid,
    /// Not made by the key (another key, or no valid signature at all).
    OtherKey,
    /// Made by the key, but for another manifest digest.
    OtherDigest(String),
    /// Made by the key for this digest, but naming another repository.
    OtherIdentity(String),
    /// Not a payload a verifier can read.
    Unreadable(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::OtherKey => f.write_str("not made by this key"),
            Verdict::OtherDigest(d) => write!(f, "made by this key for another image ({d})"),
            Verdict::OtherIdentity(r) => write!(f, "made by this key for another repository ({r})"),
            Verdict::Unreadable(why) => write!(f, "unreadable: {why}"),
        }
    }
}

/// A simple-signing `payload` with its base64 `signature` (the layer annotation), checked for
/// the manifest `digest` pushed to `repository` (`HOST/REPO`).
pub fn check_signature(
    payload: &[u8],
    signature: &str,
    key: &PublicKey,
    digest: &Digest,
    repository: &str,
) -> Verdict {
    let Ok(signature) = STANDARD.decode(signature.trim()) else {
        return Verdict::Unreadable("the signature is not base64".into());
    };
    if !key.verifies(payload, &signature) {
        return Verdict::OtherKey;
    }
    let Some(signed) = SimpleSigning::parse(payload) else {
        return Verdict::Unreadable("not a cosign simple-signing payload".into());
    };
    if signed.digest != *digest {
        return Verdict::OtherDigest(signed.digest.to_string());
    }
    if !same_repository(&signed.repository, repository) {
        return Verdict::OtherIdentity(signed.repository);
    }
    Verdict::Valid
}

/// Whether a signature's `docker-reference` names `repository`, as containers/image compares
/// them: Docker Hub's spellings are one registry, and a tag or digest on it is not part of it.
fn same_repository(signed: &str, repository: &str) -> bool {
    let strip = |r: &str| {
        let r = r.split('@').next().unwrap_or(r);
        // A tag is after the last `:` that comes after the last `/`.
        let name = match (r.rfind(':'), r.rfind('/')) {
            (Some(c), Some(s)) if c > s => &r[..c],
            _ => r,
        };
        let hub = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"];
        hub.iter()
            .find_map(|h| name.strip_prefix(h))
            .map_or_else(|| name.to_owned(), |rest| format!("docker.io/{rest}"))
    };
    strip(signed) == strip(repository)
}

/// A DSSE envelope (a `.att` layer's blob) checked for the manifest `digest`: signed by the key,
/// an in-toto statement whose subjects include the digest. Also the statement's predicate type.
pub fn check_attestation(envelope: &[u8], key: &PublicKey, digest: &Digest) -> (Verdict, String) {
    let Some(envelope) = Envelope::parse(envelope) else {
        return (
            Verdict::Unreadable("not a DSSE envelope".into()),
            String::new(),
        );
    };
    let statement: Option<serde_json::Value> = serde_json::from_slice(&envelope.payload).ok();
    let predicate = statement
        .as_ref()
        .and_then(|s| s.get("predicateType"))
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE || statement.is_none() {
        return (
            Verdict::Unreadable("not an in-toto statement".into()),
            predicate,
        );
    }
    if !envelope.signed_by(key) {
        return (Verdict::OtherKey, predicate);
    }
    let subjects: Vec<String> = statement
        .as_ref()
        .and_then(|s| s.get("subject"))
        .and_then(|s| s.as_array())
        .map(|subjects| {
            subjects
                .iter()
                .filter_map(|s| s.pointer("/digest/sha256").and_then(|d| d.as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !subjects.iter().any(|s| s == digest.hex()) {
        let named = subjects
            .first()
            .map_or("none".into(), |s| format!("sha256:{s}"));
        return (Verdict::OtherDigest(named), predicate);
    }
    (Verdict::Valid, predicate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Signer;

    fn signed(signer: &Signer, digest: &Digest, repository: &str) -> (Vec<u8>, String) {
        let payload = SimpleSigning {
            repository: repository.into(),
            digest: digest.clone(),
        }
        .to_bytes();
        let signature = STANDARD.encode(signer.sign(&payload));
        (payload, signature)
    }

    #[test]
    fn each_way_a_signature_can_be_wrong_is_told_apart() {
        let key = Signer::generate().unwrap();
        let other = Signer::generate().unwrap();
        let image = Digest::of(b"image");
        let repo = "127.0.0.1:5000/app";
        let check =
            |(p, s): (Vec<u8>, String)| check_signature(&p, &s, &key.public_key(), &image, repo);
        assert_eq!(check(signed(&key, &image, repo)), Verdict::Valid);
        assert_eq!(
            check(signed(&key, &image, "127.0.0.1:5000/app:v1")),
            Verdict::Valid
        );
        assert_eq!(check(signed(&other, &image, repo)), Verdict::OtherKey);
        let elsewhere = Digest::of(b"another image");
        assert_eq!(
            check(signed(&key, &elsewhere, repo)),
            Verdict::OtherDigest(elsewhere.to_string())
        );
        assert_eq!(
            check(signed(&key, &image, "127.0.0.1:5000/other")),
            Verdict::OtherIdentity("127.0.0.1:5000/other".into())
        );
        let (payload, _) = signed(&key, &image, repo);
        assert!(matches!(
            check_signature(&payload, "%%", &key.public_key(), &image, repo),
            Verdict::Unreadable(_)
        ));
        assert!(same_repository(
            "index.docker.io/library/x",
            "docker.io/library/x"
        ));
    }

    #[test]
    fn an_attestation_must_be_signed_and_name_the_image() {
        let key = Signer::generate().unwrap();
        let image = Digest::of(b"image");
        let statement = |d: &Digest| {
            serde_json::to_vec(&serde_json::json!({
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "r/app", "digest": {"sha256": d.hex()}}],
                "predicateType": "https://slsa.dev/provenance/v1",
                "predicate": {},
            }))
            .unwrap()
        };
        let envelope = |d: &Digest, s: Option<&Signer>| {
            Envelope::new(IN_TOTO_PAYLOAD_TYPE, statement(d), s).to_bytes()
        };
        let public = key.public_key();
        let (verdict, predicate) =
            check_attestation(&envelope(&image, Some(&key)), &public, &image);
        assert_eq!(verdict, Verdict::Valid);
        assert_eq!(predicate, "https://slsa.dev/provenance/v1");
        assert_eq!(
            check_attestation(&envelope(&image, None), &public, &image).0,
            Verdict::OtherKey
        );
        let other = Digest::of(b"other");
        assert!(matches!(
            check_attestation(&envelope(&other, Some(&key)), &public, &image).0,
            Verdict::OtherDigest(_)
        ));
    }
}
