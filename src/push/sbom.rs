//! The image's SBOM, attached to each pushed image manifest as an OCI 1.1 referrer (`referrer`
//! does the attaching), in a registry or an OCI layout.

use bytes::Bytes;

use super::referrer::{artifact_manifest_of, attach_referrer, Artifact};
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::{Prepared, PushError};
use crate::digest::Digest;
use crate::image::artifact::{Described, EMPTY_BLOB};
use crate::image::{ManifestFormat, OCI_MANIFEST};
use crate::outcome::ImageOutcome;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{Phase, Reporter};
use crate::sbom::{BillOfMaterials, SbomFormat};

/// The SBOM document of an image.
pub(super) fn sbom_bytes(
    plan: &ImagePlan,
    closure: &crate::nix::Closure,
    license: Option<&str>,
    format: SbomFormat,
) -> Bytes {
    let bom = BillOfMaterials::of_image(&plan.layers, closure, &plan.created, license);
    Bytes::from(bom.to_bytes(format))
}

/// The SBOM `sbom` (in `format`) as an artifact.
fn artifact(sbom: Bytes, format: SbomFormat) -> Artifact<'static> {
    Artifact {
        artifact_type: format.media_type(),
        media_type: format.media_type(),
        blob: sbom,
    }
}

/// Attaches `sbom` to the image manifest `subject` (written in `manifest_format`); returns the
/// artifact manifest's digest.
pub(super) async fn attach(
    client: &impl Remote,
    subject: &Described,
    manifest_format: ManifestFormat,
    sbom: Bytes,
    format: SbomFormat,
    reporter: &dyn Reporter,
) -> Result<Digest, PushError> {
    let digest = attach_referrer(client, subject, manifest_format, &artifact(sbom, format)).await?;
    reporter.phase(&Phase::SbomAttached {
        artifact_type: format.media_type().to_owned(),
        artifact: digest.clone(),
        subject: subject.digest.clone(),
    });
    Ok(digest)
}

/// Attaches the SBOM of `prepared`'s image (whose documents are `documents`) to it in the OCI
/// layout at `dir`.
pub(super) fn attach_to_layout(
    dir: &std::path::Path,
    prepared: &Prepared,
    documents: &crate::plan::ImageDocuments,
    format: SbomFormat,
    reporter: &dyn Reporter,
) -> Result<Digest, PushError> {
    let subject = Described {
        media_type: OCI_MANIFEST.to_owned(),
        digest: documents.manifest_digest.clone(),
        size: documents.manifest.len() as u64,
    };
    let sbom = sbom_bytes(
        &prepared.plan,
        &prepared.closure,
        prepared.license.as_deref(),
        format,
    );
    let artifact_type = format.media_type();
    let manifest = artifact_manifest_of(&artifact(sbom.clone(), format), &subject);
    let digest =
        crate::destination::attach_to_layout(dir, &[EMPTY_BLOB, &sbom], &manifest, artifact_type)?;
    reporter.phase(&Phase::SbomAttached {
        artifact_type: artifact_type.to_owned(),
        artifact: digest.clone(),
        subject: subject.digest.clone(),
    });
    Ok(digest)
}

/// Attaches the SBOM `push` asks for (if any) to each image's manifest (`documents`, rendered
/// in `manifest_format`, one per image), and records its digest in the image's outcome.
pub(super) async fn attach_all<R: Remote>(
    push: &RegistryPush<'_, R>,
    documents: &[ImageDocuments],
    manifest_format: ManifestFormat,
    images: &mut [ImageOutcome],
) -> Result<(), PushError> {
    let Some(format) = push.request.sbom else {
        return Ok(());
    };
    for ((p, d), image) in push.prepared.iter().zip(documents).zip(images) {
        let subject = Described {
            media_type: manifest_format.manifest_type().to_owned(),
            digest: d.manifest_digest.clone(),
            size: d.manifest.len() as u64,
        };
        let sbom = sbom_bytes(&p.plan, &p.closure, p.license.as_deref(), format);
        let reporter = push.reporter.as_ref();
        let digest = attach(
            push.client,
            &subject,
            manifest_format,
            sbom,
            format,
            reporter,
        )
        .await?;
        image.sbom_digest = Some(digest);
    }
    Ok(())
}
