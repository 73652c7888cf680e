//! `nixpush verify REF --key PUB`: checks an image's cosign-format signatures and attestations
//! in a registry with a public key, as cosign, sigstore-rs and containers/image would: every
//! layer under the `sha256-<hex>.sig` tag of the manifest REF names (nixpush's, cosign's, or any
//! other signer's) and every attestation under `.att`. The image is verified only when at
//! least one signature by the key is valid for that very manifest; an index's platform images
//! are reported on too. Reads with pull access only; every blob read is checked against its
//! digest.

mod against;
mod findings;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use serde_json::Value;

pub use against::{compare, Reproduction};
pub use findings::{check_attestation, check_signature, Verdict};

use crate::digest::Digest;
use crate::image::read::Document;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{Access, Client, Credentials, RegistryError};
use crate::signing::{
    attestation_tag, signature_tag, PublicKey, DSSE_MEDIA_TYPE, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
};

/// The most a signature payload or attestation may weigh.
const MAX_ATTACHMENT_BYTES: usize = 16 * 1024 * 1024;

/// What `nixpush verify` is asked.
#[derive(Debug)]
pub struct VerifyRequest {
    pub reference: Reference,
    pub key: PublicKey,
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    /// `--against`: the image the installable gives (as made into a throw-away OCI layout),
    /// to compare with the registry's.
    pub against: Option<crate::outcome::ImageOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::DockerConfigError),
    #[error("no manifest at {0} (no such tag, digest or repository)")]
    NotFound(String),
    #[error("the registry sent a manifest of digest {actual} for {reference}")]
    WrongManifest { reference: String, actual: Digest },
    #[error("{reference} is not signed: there is no {tag} tag")]
    NoSignature { reference: String, tag: String },
    #[error("{reference} has no valid signature by this key: {found}")]
    NoValidSignature { reference: String, found: String },
    #[error("{reference} cannot be compared: {reason}")]
    Unreadable { reference: String, reason: String },
    #[error("{reference} is signed by this key, but {reproduction}")]
    NotReproduced {
        reference: String,
        reproduction: Reproduction,
    },
}

/// One thing checked, as `verify` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `signature` or `attestation <predicate type>`.
    pub what: String,
    /// The manifest it was found for.
    pub subject: Digest,
    pub verdict: Verdict,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}: {}", self.what, self.subject, self.verdict)
    }
}

/// The outcome of a verification that passed: what was checked, and the image pinned.
#[derive(Debug)]
pub struct Verification {
    pub reference: String,
    pub findings: Vec<Finding>,
    /// With `--against`: the image reproduced.
    pub reproduction: Option<Reproduction>,
}

/// Verifies the image `request` names.
///
/// Boxed: an `async fn`'s future is compiled again in every crate that awaits it, so the
/// binary and each test binary would compile the whole push once more (docs/benchmarks.md).
pub fn verify(
    request: &VerifyRequest,
    reporter: Arc<dyn Reporter>,
) -> LocalBoxFuture<'_, Result<Verification, VerifyError>> {
    Box::pin(async move {
        let reference = &request.reference;
        let reach = crate::credentials::Reach {
            insecure: request.insecure,
            ca_cert: request.ca_cert.clone(),
            retry: Default::default(),
        };
        let client: Client = crate::credentials::connect::<VerifyError>(
            reference,
            request.credentials.as_ref(),
            Access::Pull,
            &reach,
            &reporter,
        )
        .await?;
        let target = reference.manifest_target();
        let bytes = client
            .get_manifest(client.repository(), &target)
            .await?
            .ok_or_else(|| VerifyError::NotFound(reference.to_string()))?;
        let digest = Digest::of(&bytes);
        if reference.digest().is_some_and(|d| *d != digest) {
            return Err(VerifyError::WrongManifest {
                reference: reference.to_string(),
                actual: digest,
            });
        }
        let repository = format!("{}/{}", reference.registry(), reference.repository());
        let pinned = reference.pinned(&digest);
        let mut subjects = vec![digest.clone()];
        if let Ok(Document::Index(index)) = Document::parse(&bytes) {
            subjects.extend(index.manifests.iter().map(|m| m.digest.clone()));
        }
        let mut findings = Vec::new();
        let mut top_signed = None;
        for subject in &subjects {
            let signatures = signatures_of(&client, subject, &request.key, &repository).await?;
            if *subject == digest {
                top_signed = Some(signatures.clone());
            }
            findings.extend(signatures.unwrap_or_default());
            findings.extend(attestations_of(&client, subject, &request.key).await?);
        }
        let Some(top) = top_signed.flatten() else {
            return Err(VerifyError::NoSignature {
                reference: pinned,
                tag: signature_tag(&digest),
            });
        };
        if !top.iter().any(|f| f.verdict == Verdict::Valid) {
            return Err(VerifyError::NoValidSignature {
                reference: pinned,
                found: summary(&top),
            });
        }
        let reproduction = match &request.against {
            None => None,
            Some(image) => {
                let (digest, config) =
                    against::registry_config(&client, &bytes, &pinned, image).await?;
                match compare(&digest, &config, image) {
                    r @ Reproduction::Reproduced { .. } => Some(r),
                    reproduction => {
                        return Err(VerifyError::NotReproduced {
                            reference: pinned,
                            reproduction,
                        })
                    }
                }
            }
        };
        Ok(Verification {
            reference: pinned,
            findings,
            reproduction,
        })
    })
}

/// "2 found: 1 not made by this key, 1 made by this key for another image (...)".
fn summary(findings: &[Finding]) -> String {
    let verdicts: Vec<String> = findings.iter().map(|f| f.verdict.to_string()).collect();
    format!("{} found: {}", findings.len(), verdicts.join("; "))
}

/// The layers of the manifest under `tag`, if there is one.
async fn stored_layers(client: &Client, tag: &str) -> Result<Option<Vec<Value>>, VerifyError> {
    let Some(manifest) = client.get_manifest(client.repository(), tag).await? else {
        return Ok(None);
    };
    let layers = serde_json::from_slice::<Value>(&manifest)
        .ok()
        .and_then(|m| m.get("layers").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    Ok(Some(layers))
}

/// A layer's blob, checked against its digest; `Err(reason)` when it cannot be had (missing,
/// too large, other bytes, refused): one bad layer is a verdict on that layer, not on the image.
async fn layer_blob(client: &Client, layer: &Value) -> Result<Vec<u8>, String> {
    let Some(digest) = layer
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<Digest>().ok())
    else {
        return Err("a layer without a digest".into());
    };
    match client.get_blob(&digest, MAX_ATTACHMENT_BYTES).await {
        Ok(Some(bytes)) => Ok(bytes.to_vec()),
        Ok(None) => Err(format!("its blob {digest} is not in the registry")),
        Err(e) => Err(e.to_string()),
    }
}

/// The signatures under `subject`'s `.sig` tag (`None`: no such tag), each checked.
async fn signatures_of(
    client: &Client,
    subject: &Digest,
    key: &PublicKey,
    repository: &str,
) -> Result<Option<Vec<Finding>>, VerifyError> {
    let Some(layers) = stored_layers(client, &signature_tag(subject)).await? else {
        return Ok(None);
    };
    let mut findings = Vec::new();
    for layer in layers
        .iter()
        .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(SIMPLE_SIGNING_MEDIA_TYPE))
    {
        let signature = layer
            .pointer(&format!(
                "/annotations/{}",
                SIGNATURE_ANNOTATION.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let verdict = match layer_blob(client, layer).await {
            Ok(payload) => check_signature(&payload, signature, key, subject, repository),
            Err(reason) => Verdict::Unreadable(reason),
        };
        findings.push(Finding {
            what: "signature".into(),
            subject: subject.clone(),
            verdict,
        });
    }
    Ok(Some(findings))
}

/// The attestations under `subject`'s `.att` tag, each checked.
async fn attestations_of(
    client: &Client,
    subject: &Digest,
    key: &PublicKey,
) -> Result<Vec<Finding>, VerifyError> {
    let layers = match stored_layers(client, &attestation_tag(subject)).await {
        Ok(layers) => layers.unwrap_or_default(),
        Err(e) => {
            return Ok(vec![Finding {
                what: "attestations".into(),
                subject: subject.clone(),
                verdict: Verdict::Unreadable(e.to_string()),
            }])
        }
    };
    let mut findings = Vec::new();
    for layer in layers
        .iter()
        .filter(|l| l.get("mediaType").and_then(Value::as_str) == Some(DSSE_MEDIA_TYPE))
    {
        let (verdict, predicate) = match layer_blob(client, layer).await {
            Ok(envelope) => check_attestation(&envelope, key, subject),
            Err(reason) => (Verdict::Unreadable(reason), String::new()),
        };
        findings.push(Finding {
            what: format!("attestation {predicate}").trim_end().to_owned(),
            subject: subject.clone(),
            verdict,
        });
    }
    Ok(findings)
}
