//! What a push did: the image and index digests, the tags written, and per layer what happened
//! to it. The binary prints it (the reference line, the `--json` document); nothing here formats
//! output.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::layer::{LayerDigests, LayerKey, LayerSpec};

/// The result of pushing to one destination.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    /// The destination as the user wrote it (normalised).
    pub destination: String,
    /// What stdout prints: `registry/repository@sha256:...` (the index's digest for a multi-arch
    /// image), or `oci:DIR@sha256:...` / `docker-archive:PATH@sha256:...` for a local target.
    pub reference: String,
    /// The manifest's digest, or the index's for a multi-arch image.
    pub digest: Digest,
    /// The tags written (none: pushed by digest only).
    pub tags: Vec<String>,
    /// Whether the image went to standard output (then stdout carries nothing else).
    pub to_stdout: bool,
    /// One per platform image (one unless multi-arch).
    pub images: Vec<ImageOutcome>,
    /// Set for a multi-arch push.
    pub index_digest: Option<Digest>,
    /// The tag already named exactly this image: no blob was asked about, nothing written.
    pub unchanged: bool,
    /// The manifests signed (`--sign-key`), each with its `.sig` tag.
    pub signatures: Vec<(Digest, String)>,
    /// Each `--mirror`, and what became of it.
    pub mirrors: Vec<MirrorOutcome>,
}

/// One `--mirror` of a push: its pinned reference, or why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorOutcome {
    pub destination: String,
    pub result: Result<String, String>,
}

/// One image (one platform) of a push.
#[derive(Clone, Debug)]
pub struct ImageOutcome {
    pub installable: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<LayerReport>,
    /// The artifact manifest of the SBOM attached to this image (`--sbom`).
    pub sbom_digest: Option<Digest>,
    /// The artifact manifest of the SLSA provenance attached to this image (`--provenance`),
    /// and whether it is signed.
    pub provenance: Option<(Digest, bool)>,
    /// The registry image it was put on (`--base`): `name@digest`, the name as given.
    pub base: Option<String>,
}

/// What happened to one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerAction {
    /// The registry already had the blob: nothing was read or sent.
    Skipped,
    /// The blob was built and sent.
    Pushed,
    /// The registry linked the blob from another repository (cross-repository mount).
    Mounted,
}

/// What one layer's push did.
#[derive(Clone, Debug)]
pub struct LayerReport {
    pub key: LayerKey,
    pub digests: LayerDigests,
    /// The store paths whose files the layer holds (none: the generated root filesystem).
    pub store_paths: Vec<PathBuf>,
    pub action: LayerAction,
    /// Compressed bytes handed to the network for it, failed attempts included.
    pub bytes_sent: u64,
    /// Its blob's media type when the layer fixes it (a file sent as it is); else the image's
    /// compression's.
    pub fixed_media_type: Option<&'static str>,
}

impl LayerReport {
    /// A report for `spec`, whose blob is `digests`.
    pub fn new(
        spec: &LayerSpec,
        digests: LayerDigests,
        action: LayerAction,
        bytes_sent: u64,
    ) -> Self {
        LayerReport {
            key: spec.key.clone(),
            digests,
            store_paths: spec.store_paths().to_vec(),
            action,
            bytes_sent,
            fixed_media_type: spec.fixed_media_type(),
        }
    }
}
