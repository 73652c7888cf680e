//! SLSA provenance attached to each pushed image manifest: the statement of what the image was
//! made from, in a DSSE envelope signed with the push's key (unsigned without one, said so),
//! stored both as cosign stores attestations (a layer of the `sha256-<hex>.att` manifest, with
//! its `predicateType`) and as an OCI 1.1 referrer listed beside the SBOM.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::referrer::{attach_referrer, Artifact};
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::signatures::{add_to_tag, identity};
use super::PushError;
use crate::image::artifact::Described;
use crate::image::ManifestFormat;
use crate::outcome::ImageOutcome;
use crate::plan::ImageDocuments;
use crate::progress::{Phase, Warning};
use crate::signing::{
    attestation_tag, Envelope, StoredLayer, ATTESTATION_PREDICATE_ANNOTATION, DSSE_MEDIA_TYPE,
    IN_TOTO_PAYLOAD_TYPE, SIGNATURE_ANNOTATION,
};
use crate::slsa::{statement, BuildFacts, RunDetails, PREDICATE_TYPE};

/// The DSSE envelope (signed by `signer`, if any) of the provenance of `prepared`'s image (made
/// from `installable`), the manifest `digest` in `repository`.
pub(super) fn envelope_of(
    installable: &str,
    prepared: &crate::prepare::Prepared,
    repository: &str,
    digest: &crate::digest::Digest,
    run: &RunDetails,
    signer: Option<&crate::signing::Signer>,
) -> Vec<u8> {
    let facts = BuildFacts {
        installable,
        flake: prepared.flake.as_ref(),
        closure: &prepared.closure,
        base: prepared
            .plan
            .base
            .as_ref()
            .map(|b| (b.name.as_str(), &b.digest)),
    };
    let statement = statement(repository, digest, &facts, run);
    Envelope::new(IN_TOTO_PAYLOAD_TYPE, statement, signer).to_bytes()
}

/// Whether `subject`'s `.att` tag holds SLSA provenance already.
async fn has_provenance(
    client: &impl Remote,
    subject: &crate::digest::Digest,
) -> Result<bool, PushError> {
    let current = client
        .get_manifest(client.repository(), &attestation_tag(subject))
        .await?;
    Ok(current.is_some_and(|m| {
        crate::signing::layers_of(&m).iter().any(|l| {
            l.pointer(&format!("/annotations/{ATTESTATION_PREDICATE_ANNOTATION}"))
                .and_then(|p| p.as_str())
                == Some(PREDICATE_TYPE)
        })
    }))
}

/// Attaches provenance to each image (`documents[i]` is image `i`'s, written in
/// `manifest_format`), if the push asks for it, and records it in the image's outcome.
pub(super) async fn attest_all<R: Remote>(
    push: &RegistryPush<'_, R>,
    documents: &[ImageDocuments],
    manifest_format: ManifestFormat,
    images: &mut [ImageOutcome],
    unchanged: bool,
) -> Result<(), PushError> {
    if !push.request.provenance {
        return Ok(());
    }
    let signer = push.request.signer.as_deref();
    if signer.is_none() {
        push.reporter.warning(&Warning::UnsignedProvenance);
    }
    let repository = identity(push);
    let run = RunDetails::from_env();
    for (((source, prepared), d), image) in push
        .request
        .images
        .iter()
        .zip(push.prepared)
        .zip(documents)
        .zip(images)
    {
        // The same image pushed again from another CI run would get another statement (its run
        // ids differ): an unchanged re-push leaves the provenance it has.
        if unchanged && has_provenance(push.client, &d.manifest_digest).await? {
            continue;
        }
        let envelope = envelope_of(
            &source.installable,
            prepared,
            &repository,
            &d.manifest_digest,
            &run,
            signer,
        );
        let layer = StoredLayer {
            media_type: DSSE_MEDIA_TYPE.to_owned(),
            blob: envelope.clone(),
            annotations: BTreeMap::from([
                (
                    ATTESTATION_PREDICATE_ANNOTATION.to_owned(),
                    PREDICATE_TYPE.to_owned(),
                ),
                (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            ]),
        };
        add_to_tag(push.client, &attestation_tag(&d.manifest_digest), &layer).await?;
        let subject = Described {
            media_type: manifest_format.manifest_type().to_owned(),
            digest: d.manifest_digest.clone(),
            size: d.manifest.len() as u64,
        };
        let artifact = Artifact {
            artifact_type: IN_TOTO_PAYLOAD_TYPE,
            media_type: DSSE_MEDIA_TYPE,
            blob: Bytes::from(envelope),
        };
        let digest = attach_referrer(push.client, &subject, manifest_format, &artifact).await?;
        push.reporter.phase(&Phase::ProvenanceAttached {
            artifact: digest.clone(),
            subject: d.manifest_digest.clone(),
            signed: signer.is_some(),
        });
        image.provenance = Some((digest, signer.is_some()));
    }
    Ok(())
}
