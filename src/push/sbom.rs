//! Attaching the image's SBOM to each pushed image manifest as an OCI 1.1 referrer: the empty
//! config blob and the SBOM blob (each skipped when the registry has it), the artifact manifest
//! by digest, and, on a registry that does not say it indexed the subject (no `OCI-Subject`
//! header: docker-registry 2.8 and many in the field), the referrers tag schema of the
//! distribution spec: the index under `sha256-<hex of the subject>`, read, extended, written
//! back. Idempotent: an SBOM already attached is found and left as it is.

use bytes::Bytes;

use super::PushError;
use crate::digest::Digest;
use crate::image::artifact::{
    artifact_manifest, referrers_tag, with_referrer, Described, EMPTY_BLOB,
};
use crate::image::{ManifestFormat, OCI_INDEX, OCI_MANIFEST};
use crate::plan::ImagePlan;
use crate::progress::Reporter;
use crate::registry::Client;
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
pub(super) fn no_referrers_on(client: &Client) -> PushError {
    PushError::Unsupported(format!(
        "registry {} takes Docker schema 2 manifests only, which cannot carry a referrer: the SBOM cannot be attached there",
        client.registry()
    ))
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
    client: &Client,
    subject: &Described,
    manifest_format: ManifestFormat,
    sbom: Bytes,
    format: SbomFormat,
    reporter: &dyn Reporter,
) -> Result<Digest, PushError> {
    if manifest_format == ManifestFormat::Docker {
        return Err(no_referrers_on(client));
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
        let tag = referrers_tag(&subject.digest);
        let current = client.get_manifest(client.repository(), &tag).await?;
        let artifact = Described {
            media_type: OCI_MANIFEST.to_owned(),
            digest: digest.clone(),
            size: manifest.len() as u64,
        };
        if let Some(index) = with_referrer(current.as_deref(), &artifact, artifact_type) {
            let index = Bytes::from(index);
            let index_digest = Digest::of(&index);
            client
                .put_manifest(&tag, OCI_INDEX, index, &index_digest)
                .await?;
        }
    }
    reporter.phase(&format!(
        "attached the SBOM ({artifact_type}) {digest} to {}",
        subject.digest
    ));
    Ok(digest)
}

/// Attaches the SBOM of `prepared`'s image (whose documents are `documents`) to it in the OCI
/// layout at `dir`.
pub(super) fn attach_to_layout(
    dir: &std::path::Path,
    prepared: &crate::prepare::Prepared,
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
    reporter.phase(&format!(
        "attached the SBOM ({artifact_type}) {digest} to {}",
        subject.digest
    ));
    Ok(digest)
}

/// Attaches an SBOM to each image's manifest (`manifests`, in `format`, one per image), and
/// records its digest in the image's outcome.
pub(super) async fn attach_all(
    client: &Client,
    prepared: &[crate::prepare::Prepared],
    manifests: &[Bytes],
    manifest_format: ManifestFormat,
    format: SbomFormat,
    images: &mut [crate::outcome::ImageOutcome],
    reporter: &dyn Reporter,
) -> Result<(), PushError> {
    for ((p, manifest), image) in prepared.iter().zip(manifests).zip(images) {
        let subject = Described {
            media_type: manifest_format.manifest_type().to_owned(),
            digest: Digest::of(manifest),
            size: manifest.len() as u64,
        };
        let sbom = sbom_bytes(&p.plan, &p.closure, p.license.as_deref(), format);
        let digest = attach(client, &subject, manifest_format, sbom, format, reporter).await?;
        image.sbom_digest = Some(digest);
    }
    Ok(())
}
