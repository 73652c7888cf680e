//! The last steps of a registry push, once every blob is in: each platform's manifest by digest
//! (multi-arch), the document the tags name under each tag (or by digest), then the SBOM as a
//! referrer; and the one place a registry push's outcome is made.

use bytes::Bytes;

use super::documents::{ImageSet, Kind};
use super::manifest_format::ManifestWriter;
use super::registry::RegistryPush;
use super::remote::Remote;
use super::sbom::attach_all;
use super::PushError;
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::layer::LayerDigests;
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, LayerReport, PushOutcome};

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
            push.reporter.phase(&format!(
                "writing the {} manifest",
                PlatformSpec::of(&plan.platform)
            ));
            let manifest = |format| -> Result<Bytes, PushError> {
                Ok(set
                    .documents(format)
                    .map_err(failed)?
                    .swap_remove(i)
                    .manifest)
            };
            writer.put(None, Kind::Manifest, manifest).await?;
        }
    }
    let written = write_top(push, writer, &set).await?;
    let format = writer.format();
    let documents = set.documents(format).map_err(failed)?;
    let mut images = push.image_outcomes(&documents, layers);
    if let (Kind::Manifest, [image]) = (set.kind(), images.as_mut_slice()) {
        // The host may have taken the manifest in another format than the one first rendered.
        image.manifest_digest = written.clone();
    }
    if let Some(sbom) = push.request.sbom {
        let manifests: Vec<Bytes> = documents.into_iter().map(|d| d.manifest).collect();
        attach_all(
            push.client,
            push.prepared,
            &manifests,
            format,
            sbom,
            &mut images,
            push.reporter.as_ref(),
        )
        .await?;
    }
    Ok(outcome(push, written, images, set.kind(), false))
}

/// The document the tags name (the manifest, or the index), under each tag or by digest; its
/// digest as written.
async fn write_top<R: Remote>(
    push: &RegistryPush<'_, R>,
    writer: &mut ManifestWriter<'_, R>,
    set: &ImageSet<'_>,
) -> Result<Digest, PushError> {
    let top = |format| set.top(format).map_err(|e| push.not_in_docker_format(e));
    if let Some(expected) = push.destination.digest() {
        // The digest asked for settles the format when nothing is written yet: the image in
        // OCI media types, or in Docker's; any other digest is not this image.
        let matching = writer
            .formats_left()
            .into_iter()
            .map(|f| Ok((f, Digest::of(&top(f)?))))
            .collect::<Result<Vec<(ManifestFormat, Digest)>, PushError>>()?;
        match matching.iter().find(|(_, d)| d == expected) {
            Some((format, _)) => writer.settle(*format),
            None => {
                return Err(PushError::DigestMismatch {
                    expected: expected.clone(),
                    actual: matching[0].1.clone(),
                })
            }
        }
    }
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
        push.reporter.phase(&format!(
            "writing {written} as {}",
            target.unwrap_or("its digest")
        ));
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
    }
}
