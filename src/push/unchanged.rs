//! An unchanged re-push: when the manifest (or index) nixpush would write is byte for byte the
//! one the tag already names, the image is already there. A registry accepted that manifest only
//! with every blob it names, and keeps blobs a manifest references, so no blob is asked about
//! and no manifest written: the push costs the Nix queries and one manifest read.
//!
//! Each layer's blob must be known without building it: from the local cache or from the
//! manifests just read (the tag's own layer keys, the same trust as the empty-cache skip). A
//! wrong guess only renders other bytes, which do not match; `--verify` never takes this path.

use bytes::Bytes;

use super::reuse::remember;
use super::sbom::attach_all;
use super::{image_index, PushError};
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::known_layers::{KnownBlob, LayerCache, LearntLayers};
use crate::layer::{LayerDigests, LayerSpec};
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, PushOutcome};
use crate::outcome::{LayerAction, LayerReport};
use crate::plan::{ImageDocuments, ImagePlan};
use crate::prepare::Prepared;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::Client;
use crate::request::PushRequest;

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

/// The outcome of a push whose manifest (or index) the first tag already names, byte for byte:
/// nothing is sent for it (other tags are written, their blobs being all there).
#[allow(clippy::too_many_arguments)]
pub(super) async fn unchanged_push(
    request: &PushRequest,
    destination: &Reference,
    client: &Client,
    prepared: &[Prepared],
    learnt: &LearntLayers,
    current: Option<&Bytes>,
    format: ManifestFormat,
    tags: &[String],
    reporter: &dyn Reporter,
) -> Result<Option<PushOutcome>, PushError> {
    // A destination that names a digest is checked by the ordinary path.
    let (Some(current), Some(first), None) = (current, tags.first(), destination.digest()) else {
        return Ok(None);
    };
    let mut known = Vec::with_capacity(prepared.len());
    for p in prepared {
        match known_image(&p.plan, &request.cache, learnt, format) {
            Some(image) => known.push(image),
            None => return Ok(None),
        }
    }
    let multi_arch = request.is_multi_arch();
    let top = if multi_arch {
        let plans: Vec<&ImagePlan> = prepared.iter().map(|p| &p.plan).collect();
        let documents: Vec<ImageDocuments> = known.iter().map(|k| k.documents.clone()).collect();
        Bytes::from(image_index(&plans, &documents, format))
    } else {
        known[0].documents.manifest.clone()
    };
    // Byte for byte what the tag names now.
    if current[..] != top[..] {
        return Ok(None);
    }
    if multi_arch {
        // The index is the one the tag names; each platform's manifest must still be there
        // (a registry may collect untagged manifests).
        for k in &known {
            let digest = k.documents.manifest_digest.to_string();
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
    reporter.phase(&format!(
        "{first} already names {digest}: unchanged, nothing sent"
    ));
    // Learnt from the tag: the cache knows these blobs, and where they are, from now on.
    for (spec, blob) in known.iter().flat_map(|k| &k.blobs) {
        remember(&request.cache, spec, blob, client, reporter);
    }
    let media_type = if multi_arch {
        format.index_type()
    } else {
        format.manifest_type()
    };
    for tag in &tags[1..] {
        reporter.phase(&format!("writing {digest} as {tag}"));
        client
            .put_manifest(tag, media_type, top.clone(), &digest)
            .await?;
    }
    let images = request
        .images
        .iter()
        .zip(prepared)
        .zip(&known)
        .map(|((source, p), k)| ImageOutcome {
            installable: source.installable.clone(),
            platform: PlatformSpec::of(&p.plan.platform).to_string(),
            manifest_digest: k.documents.manifest_digest.clone(),
            config_digest: k.documents.config_digest.clone(),
            layers: k.layers.clone(),
            sbom_digest: None,
        })
        .collect::<Vec<_>>();
    let mut images = images;
    if let Some(sbom) = request.sbom {
        // Unchanged, yet an SBOM missing from it is attached (one found there is left alone).
        let manifests: Vec<Bytes> = known.iter().map(|k| k.documents.manifest.clone()).collect();
        attach_all(
            client,
            prepared,
            &manifests,
            format,
            sbom,
            &mut images,
            reporter,
        )
        .await?;
    }
    Ok(Some(PushOutcome {
        destination: destination.to_string(),
        reference: destination.pinned(&digest),
        index_digest: multi_arch.then(|| digest.clone()),
        digest,
        tags: tags.to_vec(),
        to_stdout: false,
        images,
        unchanged: true,
    }))
}
