//! The last steps of a registry push, once every blob is in: each platform's manifest by digest
//! (multi-arch), what is attached to them (SBOM, provenance, signatures), and only then the
//! document the tags name under each tag (or by digest), so a tag never names an image without
//! what is attached to it; and the one place a registry push's outcome is made.

use super::attachments::attach_everything;
use super::documents::{ImageSet, Kind};
use super::manifest_format::ManifestWriter;
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::PushError;
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::layer::LayerDigests;
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, LayerReport, PushOutcome};
use crate::progress::Phase;

/// Writes the manifests of images whose blobs are all in the registry (`layers[i]`: image `i`'s
/// layer reports), the tags last.
pub(super) async fn write_manifests<R: Remote>(
    push: &RegistryPush<'_, R>,
    writer: &mut ManifestWriter<'_, R>,
    layers: Vec<Vec<LayerReport>>,
) -> Result<PushOutcome, PushError> {
    let digests: Vec<Vec<LayerDigests>> = layers
        .iter()
        .map(|ls| ls.iter().map(|l| l.digests.clone()).collect())
        .collect();
    let set = push.image_set(digests);
    let failed = |e| push.not_in_docker_format(e);
    if set.multi_arch {
        // By digest: untagged until the index that names it is written.
        for (i, plan) in set.plans.iter().enumerate() {
            push.reporter.phase(&Phase::WritingManifest {
                platform: PlatformSpec::of(&plan.platform).to_string(),
            });
            let manifest = |format| set.manifest(i, format).map_err(failed);
            writer.put(None, Kind::Manifest, manifest).await?;
        }
    }
    settle_asked_digest(push, writer, &set)?;
    let mut attached = None;
    if push.attaches() {
        // Attached before any tag moves: no tag ever names the image without its SBOM,
        // provenance and signatures. The document the tags name goes in by digest first, to
        // be their subject.
        let top = |format| set.top(format).map_err(failed);
        let (_, top_digest) = writer.put(None, set.kind(), top).await?;
        let format = writer.format();
        let documents = set.documents(format).map_err(failed)?;
        let mut images = push.image_outcomes(&documents, layers.clone());
        let signed =
            attach_everything(push, &documents, &top_digest, format, &mut images, false).await?;
        attached = Some((images, signed));
    }
    let written = write_tags(push, writer, &set).await?;
    let (mut images, signatures) = match attached {
        Some(attached) => attached,
        None => {
            let documents = set.documents(writer.format()).map_err(failed)?;
            (push.image_outcomes(&documents, layers), Vec::new())
        }
    };
    if let (Kind::Manifest, [image]) = (set.kind(), images.as_mut_slice()) {
        // The host may have taken the manifest in another format than the one first rendered.
        image.manifest_digest = written.clone();
    }
    let mut outcome = outcome(push, written, images, set.kind(), false);
    outcome.signatures = signatures;
    Ok(outcome)
}

/// A destination that names a digest settles the format while nothing is written yet: the
/// image in OCI media types, or in Docker's; any other digest is not this image.
fn settle_asked_digest<R: Remote>(
    push: &RegistryPush<'_, R>,
    writer: &mut ManifestWriter<'_, R>,
    set: &ImageSet<'_>,
) -> Result<(), PushError> {
    let Some(expected) = push.destination.digest() else {
        return Ok(());
    };
    let matching = writer
        .formats_left()
        .into_iter()
        .map(|f| {
            let top = set.top(f).map_err(|e| push.not_in_docker_format(e))?;
            Ok((f, Digest::of(&top)))
        })
        .collect::<Result<Vec<(ManifestFormat, Digest)>, PushError>>()?;
    match matching.iter().find(|(_, d)| d == expected) {
        Some((format, _)) => {
            writer.settle(*format);
            Ok(())
        }
        None => Err(PushError::DigestMismatch {
            expected: expected.clone(),
            actual: matching[0].1.clone(),
        }),
    }
}

/// The document the tags name (the manifest, or the index), under each tag or by digest; its
/// digest as written.
async fn write_tags<R: Remote>(
    push: &RegistryPush<'_, R>,
    writer: &mut ManifestWriter<'_, R>,
    set: &ImageSet<'_>,
) -> Result<Digest, PushError> {
    let top = |format| set.top(format).map_err(|e| push.not_in_docker_format(e));
    let mut written = Digest::of(&top(writer.format())?);
    let targets: Vec<Option<&str>> = if push.tags.is_empty() {
        vec![None]
    } else {
        push.tags.iter().map(|t| Some(t.as_str())).collect()
    };
    for target in targets {
        // Stopped while winding down: no tag moves, even to a complete image.
        if push.stop.is_stopped() {
            return Err(PushError::Stopped);
        }
        push.reporter.phase(&Phase::WritingTag {
            digest: written.clone(),
            tag: target.map(str::to_owned),
        });
        written = writer.put(target, set.kind(), top).await?.1;
    }
    Ok(written)
}

/// What a registry push did: `digest` is the document the tags name.
pub(super) fn outcome<R: Remote>(
    push: &RegistryPush<'_, R>,
    digest: Digest,
    images: Vec<ImageOutcome>,
    kind: Kind,
    unchanged: bool,
) -> PushOutcome {
    PushOutcome {
        destination: push.destination.to_string(),
        reference: push.destination.pinned(&digest),
        index_digest: (kind == Kind::Index).then(|| digest.clone()),
        digest,
        tags: push.tags.clone(),
        to_stdout: false,
        images,
        unchanged,
        signatures: Vec::new(),
        mirrors: Vec::new(),
    }
}
