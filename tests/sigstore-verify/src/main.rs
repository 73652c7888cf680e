//! `sigstore-verify IMAGE_REF --key PUB.pem`: checks an image's cosign signatures the way
//! `cosign verify --key PUB.pem --insecure-ignore-tlog` does, with sigstore-rs rather than
//! nixpush's code: finds the `sha256-<hex>.sig` tag, reads its signature layers (sigstore-rs
//! keeps only those whose payload names the image's digest), and verifies each with the key.
//! The registry is spoken to over plain HTTP, anonymously (the tests' local registries).
//! Exit 0 with one line per valid signature; exit 1 with one line when none is valid.
//!
//! `sigstore-verify --key-pair KEY PUB.pem`: decrypts a cosign private key file with
//! $COSIGN_PASSWORD as sigstore-rs reads cosign's keys, and checks that its public key is
//! PUB.pem's. Exit 0 with one line when it is; exit 1 with one line otherwise.
//!
//! Exit 2 on a usage error.

mod key_pair;

use std::process::ExitCode;

use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraint};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};

const USAGE: &str =
    "usage: sigstore-verify IMAGE_REF --key PUB.pem | sigstore-verify --key-pair KEY PUB.pem";

/// An image's signatures to check with a public key.
struct Request {
    image: OciReference,
    key_pem: Vec<u8>,
}

/// What the command line asks for.
enum Command {
    Verify(Request),
    KeyPair { key: String, public: String },
}

fn parse(args: &[String]) -> Result<Command, String> {
    match args {
        [flag, key, public] if flag == "--key-pair" => Ok(Command::KeyPair {
            key: key.clone(),
            public: public.clone(),
        }),
        [image, flag, key] if flag == "--key" => {
            let image = image
                .parse()
                .map_err(|e| format!("not an image reference: {image}: {e}"))?;
            let key_pem = std::fs::read(key).map_err(|e| format!("cannot read {key}: {e}"))?;
            Ok(Command::Verify(Request { image, key_pem }))
        }
        _ => Err(USAGE.into()),
    }
}

/// The signature layers of `request.image` the key verifies, each described in one line.
async fn valid_signatures(request: &Request) -> Result<Vec<String>, String> {
    let verifier = PublicKeyVerifier::try_from(&request.key_pem)
        .map_err(|e| format!("not a public key: {e}"))?;
    let config = ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    };
    let mut client = ClientBuilder::default()
        .with_oci_client_config(config)
        .build()
        .map_err(|e| format!("cannot build the cosign client: {e}"))?;
    let auth = Auth::Anonymous;
    let (sig_ref, digest) = client
        .triangulate(&request.image, &auth)
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", request.image.whole()))?;
    let layers = client
        .trusted_signature_layers(&auth, &request.image)
        .await
        .map_err(|e| format!("cannot read the signatures at {}: {e}", sig_ref.whole()))?;
    if layers.is_empty() {
        return Err(format!(
            "no signature of {digest} found at {}",
            sig_ref.whole()
        ));
    }
    let valid: Vec<String> = layers
        .iter()
        .filter(|layer| names_digest(layer, &digest))
        .filter(|layer| verifier.verify(layer).unwrap_or(false))
        .map(|layer| describe(layer, &sig_ref))
        .collect();
    if valid.is_empty() {
        return Err(format!(
            "none of the {} signatures of {digest} at {} verifies with the key",
            layers.len(),
            sig_ref.whole()
        ));
    }
    Ok(valid)
}

/// Whether the signed payload names the image's manifest digest (sigstore-rs checks it too when
/// it reads a layer; said again here so the rule is plain in this tool).
fn names_digest(layer: &SignatureLayer, digest: &str) -> bool {
    layer.simple_signing.critical.image.docker_manifest_digest == digest
}

fn describe(layer: &SignatureLayer, sig_ref: &OciReference) -> String {
    let critical = &layer.simple_signing.critical;
    format!(
        "valid signature {} in {}: {} signed as {}",
        layer.oci_digest,
        sig_ref.whole(),
        critical.image.docker_manifest_digest,
        critical.identity.docker_reference
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match parse(&args) {
        Ok(Command::Verify(request)) => valid_signatures(&request).await,
        Ok(Command::KeyPair { key, public }) => key_pair::check(&key, &public).map(|l| vec![l]),
        Err(usage) => {
            eprintln!("sigstore-verify: {usage}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(lines) => {
            lines.iter().for_each(|line| println!("{line}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("refused: {e}");
            ExitCode::FAILURE
        }
    }
}
