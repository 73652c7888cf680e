//! Attaching an artifact (an SBOM, an attestation) to an image manifest as an OCI 1.1
//! referrer: the empty config blob and the artifact's blob (each skipped when the registry has
//! it), the artifact manifest by digest, and, on a registry that does not say it indexed the
//! subject (no `OCI-Subject` header: docker-registry 2.8 and many in the field), the referrers
//! tag schema of the distribution spec: the index under `sha256-<hex of the subject>`, read,
//! extended, written back. Idempotent: an artifact already attached is found and left as it is.

use bytes::Bytes;

use super::fallback_tag::list_in_fallback_tag;
use super::remote::Remote;
use super::PushError;
use crate::digest::Digest;
use crate::image::artifact::{artifact_manifest, Described, EMPTY_BLOB};
use crate::image::{ManifestFormat, OCI_MANIFEST};

/// An artifact to attach: its blob's bytes and media type, and the `artifactType` it is
/// listed under.
pub(super) struct Artifact<'a> {
    pub artifact_type: &'a str,
    pub media_type: &'a str,
    pub blob: Bytes,
}

/// A registry that takes only Docker schema 2 manifests cannot hold a referrer.
pub(super) fn no_referrers_on(registry: &str) -> PushError {
    PushError::NoReferrers {
        registry: registry.to_owned(),
    }
}

/// The artifact manifest of `artifact` about `subject`.
pub(super) fn artifact_manifest_of(artifact: &Artifact, subject: &Described) -> Bytes {
    let blob = Described {
        media_type: artifact.media_type.to_owned(),
        digest: Digest::of(&artifact.blob),
        size: artifact.blob.len() as u64,
    };
    Bytes::from(artifact_manifest(artifact.artifact_type, &blob, subject))
}

/// Attaches `artifact` to the image manifest `subject` (written in `manifest_format`); returns
/// the artifact manifest's digest.
pub(super) async fn attach_referrer(
    client: &impl Remote,
    subject: &Described,
    manifest_format: ManifestFormat,
    artifact: &Artifact<'_>,
) -> Result<Digest, PushError> {
    if manifest_format == ManifestFormat::Docker {
        return Err(no_referrers_on(client.registry()));
    }
    let empty = Bytes::from_static(EMPTY_BLOB);
    for blob in [&empty, &artifact.blob] {
        client.ensure_blob(&Digest::of(blob), blob.clone()).await?;
    }
    let manifest = artifact_manifest_of(artifact, subject);
    let digest = Digest::of(&manifest);
    let indexed = client
        .put_manifest(&digest.to_string(), OCI_MANIFEST, manifest.clone(), &digest)
        .await?;
    if !indexed {
        let listed = Described {
            media_type: OCI_MANIFEST.to_owned(),
            digest: digest.clone(),
            size: manifest.len() as u64,
        };
        list_in_fallback_tag(client, &subject.digest, &listed, artifact.artifact_type).await?;
    }
    Ok(digest)
}
