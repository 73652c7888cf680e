//! What refers to an image, carried by `nixpush copy`: its OCI 1.1 referrers (SBOMs, provenance;
//! from the referrers API, else the fallback tag), listed at the destination the same way (the
//! fallback tag kept where there is no referrers API), and cosign's `.sig`, `.att` and `.sbom`
//! tags, whose layers join those the destination has already. For an index, its images' too.
//! Everything here is written before the copy's tag moves.

use bytes::Bytes;
use serde_json::Value;

use super::copying::{blobs_of, children_of, media_type_of, CopyError, Copying};
use super::fallback_tag::{list_in_fallback_tag, merge_into_tag, Merged};
use crate::digest::Digest;
use crate::image::artifact::{referrers_tag, Described};
use crate::image::OCI_MANIFEST;
use crate::progress::Phase;
use crate::signing::{layers_of, with_descriptors};

/// cosign's tags beside an image: signatures, attestations, SBOMs.
const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

/// Copies the attachments of `top` (whose manifest is `top_bytes`) and of its images.
pub(super) async fn copy_attachments(
    copying: &mut Copying<'_>,
    top: &Digest,
    top_bytes: &[u8],
) -> Result<(), CopyError> {
    let mut subjects = vec![top.clone()];
    subjects.extend(children_of(top_bytes)?);
    let mut seen = std::collections::HashSet::new();
    let mut i = 0;
    while i < subjects.len() {
        let subject = subjects[i].clone();
        i += 1;
        // Each once, even where a registry lists something as its own referrer.
        if !seen.insert(subject.clone()) {
            continue;
        }
        // A referrer may have attachments of its own (an SBOM's signature).
        subjects.extend(copy_referrers(copying, &subject).await?);
        for suffix in COSIGN_SUFFIXES {
            copy_cosign_tag(copying, &subject, suffix).await?;
        }
    }
    Ok(())
}

/// The referrers of `subject` at the source: (digest, artifact type, size).
async fn referrers_at_source(
    copying: &Copying<'_>,
    subject: &Digest,
) -> Result<Vec<(Digest, String, u64)>, CopyError> {
    let source = copying.source;
    let index = match source.get_referrers(subject).await? {
        Some(index) => Some(index),
        None => {
            source
                .get_manifest(source.repository(), &referrers_tag(subject))
                .await?
        }
    };
    let entries = index
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    Ok(entries
        .iter()
        .filter_map(|e| {
            Some((
                e.get("digest")?.as_str()?.parse().ok()?,
                e.get("artifactType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                e.get("size")?.as_u64()?,
            ))
        })
        .collect())
}

/// Copies each referrer of `subject` and lists it at the destination; returns their digests.
async fn copy_referrers(
    copying: &mut Copying<'_>,
    subject: &Digest,
) -> Result<Vec<Digest>, CopyError> {
    let referrers = referrers_at_source(copying, subject).await?;
    let mut copied = Vec::with_capacity(referrers.len());
    for (digest, artifact_type, _) in referrers {
        let shown = format!("the referrer {digest}");
        let (_, bytes) = copying.copy_manifest(&digest.to_string(), &shown).await?;
        // Listed for `subject`, it must be about `subject`.
        let about: Option<String> = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.pointer("/subject/digest")?.as_str().map(str::to_owned));
        if about.as_deref() != Some(subject.to_string().as_str()) {
            return Err(CopyError::Unreadable {
                reference: shown,
                reason: format!("it is listed as a referrer of {subject} but is not about it"),
            });
        }
        let indexed = copying
            .destination
            .get_referrers(subject)
            .await?
            .is_some_and(|index| String::from_utf8_lossy(&index).contains(&digest.to_string()));
        if !indexed {
            let listed = Described {
                media_type: OCI_MANIFEST.to_owned(),
                digest: digest.clone(),
                size: bytes.len() as u64,
            };
            list_in_fallback_tag(copying.destination, subject, &listed, &artifact_type)
                .await
                .map_err(|e| CopyError::Unreadable {
                    reference: referrers_tag(subject),
                    reason: e.to_string(),
                })?;
        }
        copying.outcome.attachments += 1;
        copying.reporter.phase(&Phase::AttachmentCopied {
            what: artifact_type,
            digest: digest.clone(),
        });
        copied.push(digest);
    }
    Ok(copied)
}

/// Copies cosign's `sha256-<hex><suffix>` tag of `subject`, its layers joining the
/// destination's.
async fn copy_cosign_tag(
    copying: &mut Copying<'_>,
    subject: &Digest,
    suffix: &str,
) -> Result<(), CopyError> {
    let tag = format!("sha256-{}{suffix}", subject.hex());
    let source = copying.source;
    let Some(incoming) = source.get_manifest(source.repository(), &tag).await? else {
        return Ok(());
    };
    let incoming_digest = Digest::of(&incoming);
    for (blob, size) in blobs_of(&incoming)? {
        copying.move_blob(&blob, size, &incoming_digest).await?;
    }
    let incoming_type = media_type_of(&incoming).ok_or_else(|| CopyError::Unreadable {
        reference: tag.clone(),
        reason: "not a manifest".into(),
    })?;
    // The source's manifest as it is where there is none; else its layers join those there,
    // keeping what concurrent writers add.
    let merge = |current: Option<&[u8]>| match current {
        None => Some(Merged {
            document: incoming.clone(),
            media_type: incoming_type,
            blobs: Vec::new(),
        }),
        Some(current) if Digest::of(current) == incoming_digest => None,
        Some(current) => {
            with_descriptors(Some(current), &layers_of(&incoming)).map(|(manifest, config)| {
                Merged {
                    document: Bytes::from(manifest),
                    media_type: OCI_MANIFEST,
                    blobs: vec![Bytes::from(config)],
                }
            })
        }
    };
    let written = merge_into_tag(copying.destination, &tag, &incoming_digest, merge)
        .await
        .map_err(|e| CopyError::Unreadable {
            reference: tag.clone(),
            reason: e.to_string(),
        })?;
    if !written {
        return Ok(());
    }
    copying.outcome.manifests_written += 1;
    copying.outcome.attachments += 1;
    copying.reporter.phase(&Phase::AttachmentCopied {
        what: tag,
        digest: incoming_digest,
    });
    Ok(())
}
