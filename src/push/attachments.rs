//! Everything a push attaches to its images, in one step that runs after the manifests are in by
//! digest and before any tag moves: the SBOM, the SLSA provenance, and the signatures of every
//! manifest written (each platform's, the index of a multi-arch image, the SBOMs'), so no tag
//! ever names an image without them. An unchanged re-push runs the same step: what is missing
//! is added, what is there is left alone.

use super::attestations::attest_all;
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::sbom::attach_all;
use super::signatures::sign_all;
use super::PushError;
use crate::digest::Digest;
use crate::image::ManifestFormat;
use crate::outcome::ImageOutcome;
use crate::plan::ImageDocuments;

impl<R: Remote> RegistryPush<'_, R> {
    /// Whether the push attaches anything: then the document the tags name goes in by digest
    /// before the attachments, and they before the tags.
    pub fn attaches(&self) -> bool {
        let r = self.request;
        r.sbom.is_some() || r.provenance || r.signer.is_some()
    }
}

/// Attaches what `push` asks for to the images whose `documents` were written in `format`
/// (`top`: the digest of the document the tags name; `unchanged`: an unchanged re-push, which
/// does not attest again an image that has provenance); returns the manifests signed, each with
/// its `.sig` tag.
pub(super) async fn attach_everything<R: Remote>(
    push: &RegistryPush<'_, R>,
    documents: &[ImageDocuments],
    top: &Digest,
    format: ManifestFormat,
    images: &mut [ImageOutcome],
    unchanged: bool,
) -> Result<Vec<(Digest, String)>, PushError> {
    attach_all(push, documents, format, images).await?;
    attest_all(push, documents, format, images, unchanged).await?;
    let mut subjects: Vec<Digest> = documents
        .iter()
        .map(|d| d.manifest_digest.clone())
        .collect();
    if !subjects.contains(top) {
        subjects.push(top.clone());
    }
    subjects.extend(images.iter().filter_map(|i| i.sbom_digest.clone()));
    sign_all(push, &subjects).await
}
