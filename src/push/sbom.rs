//! Attaching the image's SBOM to each pushed image manifest as an OCI 1.1 referrer: the empty
//! config blob and the SBOM blob (each skipped when the registry has it), the artifact manifest
//! by digest, and, on a registry that does not say it indexed the subject (no `OCI-Subject`
//! header: docker-registry 2.8 and many in the field), the referrers tag schema of the
//! distribution spec: the index under `sha256-<hex of the subject>`, read, extended, written
//! back. Idempotent: an SBOM already attached is found and left as it is.

use bytes::Bytes;

use super::fallback_tag::list_in_fallback_tag;
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::{Prepared, PushError};
use crate::digest::Digest;
use crate::image::artifact::{artifact_manifest, Described, EMPTY_BLOB};
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

/// A registry that takes only Docker schema 2 manifests cannot hold an SBOM.
pub(super) fn no_referrers_on(registry: &str) -> PushError {
    PushError::NoReferrers {
        registry: registry.to_owned(),
    }
}

/// The artifact manifest of `sbom` (in `format`) about `subject`.
fn artifact_of(sbom: &[u8], format: SbomFormat, subject: &Described) -> Bytes {
    let blob = Described {
        media_type: format.media_type().to_owned(),
        digest: Digest::of(sbom),
        size: sbom.len() as u64,
    };
    Bytes::from(artifact_manifest(format.media_type(), &blob, subject))
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
    if manifest_format == ManifestFormat::Docker {
        return Err(no_referrers_on(client.registry()));
    }
    let empty = Bytes::from_static(EMPTY_BLOB);
    for blob in [&empty, &sbom] {
        client.ensure_blob(&Digest::of(blob), blob.clone()).await?;
    }
    let artifact_type = format.media_type();
    let manifest = artifact_of(&sbom, format, subject);
    let digest = Digest::of(&manifest);
    let indexed = client
        .put_manifest(&digest.to_string(), OCI_MANIFEST, manifest.clone(), &digest)
        .await?;
    if !indexed {
        let artifact = Described {
            media_type: OCI_MANIFEST.to_owned(),
            digest: digest.clone(),
            size: manifest.len() as u64,
        };
        list_in_fallback_tag(client, &subject.digest, &artifact, artifact_type).await?;
    }
    reporter.phase(&Phase::SbomAttached {
        artifact_type: artifact_type.to_owned(),
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
    let manifest = artifact_of(&sbom, format, &subject);
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
