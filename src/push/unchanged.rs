//! An unchanged re-push: when the manifest (or index) nixpush would write is byte for byte the
//! one the tag already names, the image is already there. A registry accepted that manifest only
//! with every blob it names, and keeps blobs a manifest references, so no blob is asked about
//! and no manifest written: the push costs the Nix queries and one manifest read.
//!
//! Each layer's blob must be known without building it: from the local cache or from the
//! manifests just read (the tag's own layer keys, the same trust as the empty-cache skip). A
//! wrong guess only renders other bytes, which do not match; `--verify` never takes this path.

use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::known_layers::{KnownBlob, LayerCache, LearntLayers};
use crate::layer::{LayerDigests, LayerSpec};
use crate::outcome::{LayerAction, LayerReport};
use crate::plan::{ImageDocuments, ImagePlan};

/// An image whose every layer blob is known, rendered in `format`.
pub(super) struct KnownImage {
    pub documents: ImageDocuments,
    pub layers: Vec<LayerReport>,
    /// Each layer's spec and blob, for the cache once the image is found unchanged.
    pub blobs: Vec<(LayerSpec, KnownBlob)>,
}

/// The image `plan` makes, if every layer's blob is known without building it.
pub(super) fn known_image(
    plan: &ImagePlan,
    cache: &LayerCache,
    learnt: &LearntLayers,
    format: ManifestFormat,
) -> Option<KnownImage> {
    let media_type = plan.compression.media_type();
    let blobs: Vec<(LayerSpec, KnownBlob)> = plan
        .layers
        .iter()
        .map(|spec| known_blob(spec, cache, learnt, media_type).map(|b| (spec.clone(), b)))
        .collect::<Option<_>>()?;
    let layers: Vec<LayerReport> = blobs
        .iter()
        .map(|(spec, blob)| LayerReport::new(spec, blob.digests(), LayerAction::Skipped, 0))
        .collect();
    let digests: Vec<LayerDigests> = layers.iter().map(|l| l.digests.clone()).collect();
    let documents = plan.documents_in(&digests, format).ok()?;
    Some(KnownImage {
        documents,
        layers,
        blobs,
    })
}

/// The blob a layer is known to make: the cache's, else a manifest's; never one whose diff_id
/// contradicts the one the image's config fixes.
fn known_blob(
    spec: &LayerSpec,
    cache: &LayerCache,
    learnt: &LearntLayers,
    media_type: &str,
) -> Option<KnownBlob> {
    let fits = |k: &KnownBlob| {
        k.media_type == media_type && spec.expected_diff_id().is_none_or(|d| *d == k.diff_id)
    };
    cache
        .get(&spec.key)
        .filter(fits)
        .or_else(|| learnt.get(&spec.key).map(|k| k.layer.clone()).filter(fits))
}

/// Whether `rendered` is exactly what the tag names now (`current`, as read from the registry).
pub(super) fn is_unchanged(current: &[u8], rendered: &[u8]) -> bool {
    Digest::of(current) == Digest::of(rendered)
}
