//! Signing pushed manifests the way cosign does: for each manifest, the simple-signing payload
//! (this repository, that digest) signed with the push's key, stored as a layer of the manifest
//! under the tag `sha256-<hex>.sig`, beside the signatures already there. Also the `.att` tag
//! cosign keeps attestations under. Both are written before any of the image's tags moves.

use bytes::Bytes;

use super::fallback_tag::{merge_into_tag, Merged};
use super::registry_push::RegistryPush;
use super::remote::Remote;
use super::PushError;
use crate::digest::Digest;
use crate::image::OCI_MANIFEST;
use crate::progress::Phase;
use crate::signing::{signature_tag, with_layer, SimpleSigning, StoredLayer};

/// `HOST/REPO`: the identity a signature names, as cosign writes it.
pub(super) fn identity<R: Remote>(push: &RegistryPush<'_, R>) -> String {
    format!(
        "{}/{}",
        push.destination.registry(),
        push.destination.repository()
    )
}

/// Adds `layer` to the manifest under `tag`, unless it is there, keeping what concurrent
/// writers add; whether it was added.
pub(super) async fn add_to_tag(
    client: &impl Remote,
    tag: &str,
    layer: &StoredLayer,
) -> Result<bool, PushError> {
    let blob = Bytes::from(layer.blob.clone());
    merge_into_tag(client, tag, &layer.digest(), |current| {
        with_layer(current, layer).map(|(manifest, config)| Merged {
            document: Bytes::from(manifest),
            media_type: OCI_MANIFEST,
            blobs: vec![Bytes::from(config), blob.clone()],
        })
    })
    .await
}

/// Signs each of `subjects` (manifest digests in this repository) with the push's key, if it
/// has one; returns each subject with its `.sig` tag.
pub(super) async fn sign_all<R: Remote>(
    push: &RegistryPush<'_, R>,
    subjects: &[Digest],
) -> Result<Vec<(Digest, String)>, PushError> {
    let Some(signer) = push.request.signer.as_deref() else {
        return Ok(Vec::new());
    };
    let identity = identity(push);
    sign_subjects(
        push.client,
        &identity,
        signer,
        subjects,
        push.reporter.as_ref(),
    )
    .await
}

/// Signs each of `subjects` in `client`'s repository (named `identity`, `HOST/REPO`) with
/// `signer`; returns each subject with its `.sig` tag.
pub(super) async fn sign_subjects(
    client: &impl Remote,
    identity: &str,
    signer: &crate::signing::Signer,
    subjects: &[Digest],
    reporter: &dyn crate::progress::Reporter,
) -> Result<Vec<(Digest, String)>, PushError> {
    let mut signed = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let layer = SimpleSigning {
            repository: identity.to_owned(),
            digest: subject.clone(),
        }
        .signed_by(signer);
        let tag = signature_tag(subject);
        let added = add_to_tag(client, &tag, &layer).await?;
        reporter.phase(&Phase::Signed {
            subject: subject.clone(),
            tag: tag.clone(),
            added,
        });
        signed.push((subject.clone(), tag));
    }
    Ok(signed)
}
