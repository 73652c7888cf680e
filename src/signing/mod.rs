//! Signing images the way cosign does, so that cosign, sigstore-rs, podman, skopeo and Kyverno
//! read nixpush's signatures: ECDSA P-256 keys in cosign's encrypted key format, the
//! simple-signing payload each image signature signs, DSSE envelopes for attestations, and the
//! `sha256-<hex>.sig` / `.att` manifests they are stored in. Nothing here talks to a registry.

mod dsse;
mod encrypted_key;
mod key;
mod passphrase;
mod simple_signing;
mod stored;

pub use dsse::{Envelope, EnvelopeSignature, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE};
pub use encrypted_key::{COSIGN_KEY_LABEL, SIGSTORE_KEY_LABEL};
pub use key::{KeyPair, PublicKey, Signer};
pub use passphrase::Passphrase;
pub use simple_signing::{SimpleSigning, SIMPLE_SIGNING_MEDIA_TYPE};
pub use stored::{
    attestation_tag, layers_of, signature_tag, with_descriptors, with_layer, StoredLayer,
    ATTESTATION_PREDICATE_ANNOTATION, SIGNATURE_ANNOTATION,
};

/// A key that cannot be read or used. Never carries the passphrase or key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path} is not a private key nixpush can sign with: {reason}")]
    NotAKey { path: String, reason: String },
    #[error(
        "{path} holds a key of type {kind}: only ECDSA P-256 keys make cosign-format signatures"
    )]
    WrongType { path: String, kind: String },
    #[error("wrong passphrase for {path}")]
    WrongPassphrase { path: String },
    #[error("no passphrase for {path}: give a passphrase file, NIXPUSH_SIGN_PASSPHRASE, or run on a terminal")]
    NoPassphrase { path: String },
    #[error("{path} is not a public key: {reason}")]
    NotAPublicKey { path: String, reason: String },
    #[error("the operating system gave no randomness: {0}")]
    NoRandomness(String),
    #[error("cannot write {path}: {reason}")]
    Unwritable { path: String, reason: String },
    #[error("the passphrases typed differ: no key was written")]
    PassphrasesDiffer,
}
