//! Why a push failed: preparing the image (which tells the request contradicting itself or the
//! image), or every error of the layers below.

use crate::credentials::DockerConfigError;
use crate::destination::LocalError;
use crate::digest::Digest;
use crate::layer::LayerFailure;
use crate::prepare::PrepareError;
use crate::registry::RegistryError;
use crate::request::InvalidImageTag;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Preparing an image: what the installable is, built and planned.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// Docker schema 2 manifests have no `subject`: nothing can be attached to them.
    #[error("registry {registry} takes Docker schema 2 manifests only, which cannot carry a referrer: the SBOM cannot be attached there")]
    NoReferrers { registry: String },
    #[error(transparent)]
    ImageTag(#[from] InvalidImageTag),
    #[error(transparent)]
    Layer(#[from] LayerFailure),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] DockerConfigError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("the image's manifest digest is {actual}, not the {expected} the destination names")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("layer {layer}: its blob was announced as {expected} but is {actual}: the store path changed while it was read, or the layer cache is damaged")]
    KnownDigestWrong {
        layer: usize,
        expected: Digest,
        actual: Digest,
    },
    // Not a `source`: printed with its chain, the reason would be said twice.
    #[error("{host}: {reason}")]
    NotInDockerFormat {
        host: String,
        reason: crate::image::NotInDockerFormat,
    },
    #[error("{artifact} could not be kept under the tag {tag}: other writers replaced it {rounds} times")]
    ReferrerNotListed {
        tag: String,
        artifact: Digest,
        rounds: u32,
    },
    /// The `--base` image cannot be read or used.
    #[error("base image {base}: {reason}")]
    Base { base: String, reason: String },
    #[error("the push was stopped")]
    Stopped,
}

impl PushError {
    /// Whether this is the user's request contradicting itself or the image (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            PushError::Prepare(e) => e.is_usage(),
            _ => false,
        }
    }
}
