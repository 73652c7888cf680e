//! An unchanged re-push: when the manifest (or index) nixpush would write is byte for byte the
//! one the tag already names, the image is already there. A registry accepted that manifest only
//! with every blob it names, and keeps blobs a manifest references, so no blob is asked about
//! and no manifest written: the push costs the Nix queries and one manifest read.
//!
//! Each layer's blob must be known without building it: from the local cache or from the
//! manifests just read (the tag's own layer keys, the same trust as the empty-cache skip). A
//! wrong guess only renders other bytes, which do not match; `--verify` never takes this path.

use bytes::Bytes;

use super::attachments::attach_everything;
use super::documents::{ImageSet, Kind};
use super::finish::outcome;
use super::learn::Learnt;
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::reuse::remember;
use super::PushError;
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::known_layers::{declared_blob, KnownBlob, LayerCache, LearntLayers};
use crate::layer::{Compression, LayerDigests, LayerSpec};
use crate::outcome::{LayerAction, LayerReport, PushOutcome};
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::Phase;

/// An image whose every layer blob is known without building it.
pub(super) struct KnownImage {
    pub layers: Vec<LayerReport>,
    /// Each layer's spec and blob, for the cache once the image is found unchanged.
    pub blobs: Vec<(LayerSpec, KnownBlob)>,
}

/// The image `plan` makes, if every layer's blob is known without building it.
pub(super) fn known_image(
    plan: &ImagePlan,
    cache: &LayerCache,
    learnt: &LearntLayers,
) -> Option<KnownImage> {
    let blobs: Vec<(LayerSpec, KnownBlob)> = plan
        .layers
        .iter()
        .map(|spec| known_blob(spec, cache, learnt, plan.compression).map(|b| (spec.clone(), b)))
        .collect::<Option<_>>()?;
    let layers = blobs
        .iter()
        .map(|(spec, blob)| LayerReport::new(spec, blob.digests(), LayerAction::Skipped, 0))
        .collect();
    Some(KnownImage { layers, blobs })
}

/// The blob a layer is known to make: the cache's, else a manifest's, else the one it declares;
/// never one whose diff_id contradicts the one the image's config fixes.
fn known_blob(
    spec: &LayerSpec,
    cache: &LayerCache,
    learnt: &LearntLayers,
    compression: Compression,
) -> Option<KnownBlob> {
    let media_type = spec.media_type(compression);
    let fits = |k: &KnownBlob| {
        k.media_type == media_type && spec.expected_diff_id().is_none_or(|d| *d == k.diff_id)
    };
    cache
        .get(&spec.key)
        .filter(fits)
        .or_else(|| learnt.get(&spec.key).map(|k| k.layer.clone()).filter(fits))
        .or_else(|| declared_blob(spec, compression))
}

/// An image found unchanged: its layers' known blobs, its documents in the format asked, and
/// the document the tag names (the manifest, or the index).
pub(super) struct Unchanged {
    pub known: Vec<KnownImage>,
    pub documents: Vec<ImageDocuments>,
    pub top: Bytes,
}

/// The decision: the images of `plans` with every blob known, if the document they make in
/// `format` is byte for byte `current`.
pub(super) fn unchanged_images(
    plans: &[&ImagePlan],
    multi_arch: bool,
    cache: &LayerCache,
    learnt: &LearntLayers,
    format: ManifestFormat,
    current: &[u8],
) -> Option<Unchanged> {
    let known: Vec<KnownImage> = plans
        .iter()
        .map(|plan| known_image(plan, cache, learnt))
        .collect::<Option<_>>()?;
    let set = ImageSet {
        plans: plans.to_vec(),
        layers: known
            .iter()
            .map(|k| {
                k.layers
                    .iter()
                    .map(|l| l.digests.clone())
                    .collect::<Vec<LayerDigests>>()
            })
            .collect(),
        multi_arch,
    };
    let documents = set.documents(format).ok()?;
    let top = set.top_of(&documents, format);
    (top[..] == current[..]).then_some(Unchanged {
        known,
        documents,
        top,
    })
}

/// The outcome of a push whose manifest (or index) the first tag already names, byte for byte:
/// nothing is sent for it (other tags are written, their blobs being all there).
pub(super) async fn unchanged_push<R: Remote>(
    push: &RegistryPush<'_, R>,
    learnt: &Learnt,
    format: ManifestFormat,
) -> Result<Option<PushOutcome>, PushError> {
    // A destination that names a digest is checked by the ordinary path.
    let (Some(current), Some(first), None) = (
        learnt.current.as_ref(),
        push.tags.first(),
        push.destination.digest(),
    ) else {
        return Ok(None);
    };
    let request = push.request;
    let plans = push.plans();
    let Some(Unchanged {
        known,
        documents,
        top,
    }) = unchanged_images(
        &plans,
        request.is_multi_arch(),
        &request.cache,
        &learnt.layers,
        format,
        current,
    )
    else {
        return Ok(None);
    };
    let kind = Kind::of(request.is_multi_arch());
    if kind == Kind::Index {
        // The index is the one the tag names; each platform's manifest must still be there
        // (a registry may collect untagged manifests).
        for d in &documents {
            let digest = d.manifest_digest.to_string();
            let client = push.client;
            if client
                .get_manifest(client.repository(), &digest)
                .await?
                .is_none()
            {
                return Ok(None);
            }
        }
    }
    let digest = Digest::of(&top);
    push.reporter.phase(&Phase::Unchanged {
        tag: first.clone(),
        digest: digest.clone(),
    });
    // Learnt from the tag: the cache knows these blobs, and where they are, from now on.
    for (spec, blob) in known.iter().flat_map(|k| &k.blobs) {
        remember(
            &request.cache,
            spec,
            blob,
            push.client,
            push.reporter.as_ref(),
        );
    }
    let mut images = push.image_outcomes(&documents, known.into_iter().map(|k| k.layers).collect());
    // Unchanged, yet an SBOM, provenance or signature missing from it is attached (one found
    // there is left alone), before the other tags move.
    let signatures =
        attach_everything(push, &documents, &digest, format, &mut images, true).await?;
    let media_type = kind.media_type(format);
    for tag in &push.tags[1..] {
        push.reporter.phase(&Phase::WritingTag {
            digest: digest.clone(),
            tag: Some(tag.clone()),
        });
        push.client
            .put_manifest(tag, media_type, top.clone(), &digest)
            .await?;
    }
    let mut outcome = outcome(push, digest, images, kind, true);
    outcome.signatures = signatures;
    Ok(Some(outcome))
}
