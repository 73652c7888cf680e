//! Signatures and provenance in an OCI layout (`oci:DIR`), where there are no `.sig` / `.att`
//! tags to write: each is an OCI 1.1 referrer of the manifest it is about, as cosign writes them
//! in its OCI 1.1 mode (a signature: artifact type `application/vnd.dev.cosign.artifact.sig.v1+json`,
//! the simple-signing payload with the signature annotation; provenance: the DSSE envelope). A
//! layout names no repository, so the identity signed is the image's own name (`localhost/NAME`,
//! as podman names local images) unless the image names itself.

use std::collections::BTreeMap;
use std::path::Path;

use super::attestations::envelope_of;
use super::{Prepared, PushError};
use crate::digest::Digest;
use crate::image::artifact::{artifact_manifest_annotated, Described, EMPTY_BLOB};
use crate::image::{OCI_INDEX, OCI_MANIFEST};
use crate::outcome::ImageOutcome;
use crate::progress::{Phase, Reporter, Warning};
use crate::request::PushRequest;
use crate::signing::{
    SimpleSigning, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, SIMPLE_SIGNING_MEDIA_TYPE,
};
use crate::slsa::RunDetails;

/// The artifact type cosign gives a signature stored as a referrer.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// A manifest in the layout as a referrer's subject; its size read from its blob.
fn subject(dir: &Path, digest: &Digest, media_type: &str) -> Result<Described, PushError> {
    let path = dir.join("blobs/sha256").join(digest.hex());
    let size = std::fs::metadata(&path)
        .map_err(|source| crate::destination::LocalError::Read { path, source })?
        .len();
    Ok(Described {
        media_type: media_type.to_owned(),
        digest: digest.clone(),
        size,
    })
}

/// Writes `blob` (of `media_type`, annotated) as an artifact of `artifact_type` about `about`.
fn attach(
    dir: &Path,
    about: &Described,
    artifact_type: &str,
    (blob, media_type): (&[u8], &str),
    annotations: &BTreeMap<String, String>,
) -> Result<Digest, PushError> {
    let described = Described {
        media_type: media_type.to_owned(),
        digest: Digest::of(blob),
        size: blob.len() as u64,
    };
    let manifest = artifact_manifest_annotated(artifact_type, &described, annotations, about);
    Ok(crate::destination::attach_to_layout(
        dir,
        &[EMPTY_BLOB, blob],
        &manifest,
        artifact_type,
    )?)
}

/// Attaches provenance to each image of the layout at `dir` and signs every manifest written
/// (each image's, the index `index` if any, the SBOMs'), as `request` asks; records them in
/// `images` and returns the signatures (subject, referrer digest).
pub(super) fn sign_layout(
    dir: &Path,
    request: &PushRequest,
    prepared: &[Prepared],
    identity: &str,
    index: Option<&Digest>,
    images: &mut [ImageOutcome],
    reporter: &dyn Reporter,
) -> Result<Vec<(Digest, String)>, PushError> {
    let signer = request.signer.as_deref();
    if request.provenance {
        if signer.is_none() {
            reporter.warning(&Warning::UnsignedProvenance);
        }
        let run = RunDetails::from_env();
        for ((source, p), image) in request.images.iter().zip(prepared).zip(images.iter_mut()) {
            let digest = image.manifest_digest.clone();
            let envelope = envelope_of(&source.installable, p, identity, &digest, &run, signer);
            let about = subject(dir, &digest, OCI_MANIFEST)?;
            let blob = (envelope.as_slice(), DSSE_MEDIA_TYPE);
            let artifact = attach(dir, &about, IN_TOTO_PAYLOAD_TYPE, blob, &BTreeMap::new())?;
            reporter.phase(&Phase::ProvenanceAttached {
                artifact: artifact.clone(),
                subject: digest,
                signed: signer.is_some(),
            });
            image.provenance = Some((artifact, signer.is_some()));
        }
    }
    let Some(signer) = signer else {
        return Ok(Vec::new());
    };
    let mut subjects: Vec<(Digest, &str)> = images
        .iter()
        .map(|i| (i.manifest_digest.clone(), OCI_MANIFEST))
        .collect();
    subjects.extend(index.map(|d| (d.clone(), OCI_INDEX)));
    subjects.extend(
        images
            .iter()
            .filter_map(|i| i.sbom_digest.clone())
            .map(|d| (d, OCI_MANIFEST)),
    );
    let mut signed = Vec::with_capacity(subjects.len());
    for (digest, media_type) in subjects {
        let layer = SimpleSigning {
            repository: identity.to_owned(),
            digest: digest.clone(),
        }
        .signed_by(signer);
        let about = subject(dir, &digest, media_type)?;
        let blob = (layer.blob.as_slice(), SIMPLE_SIGNING_MEDIA_TYPE);
        let artifact = attach(
            dir,
            &about,
            SIGNATURE_ARTIFACT_TYPE,
            blob,
            &layer.annotations,
        )?;
        reporter.phase(&Phase::Signed {
            subject: digest.clone(),
            tag: format!("referrer {artifact}"),
            added: true,
        });
        signed.push((digest, artifact.to_string()));
    }
    Ok(signed)
}
