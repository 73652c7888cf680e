//! One copy between two registries under way: the two clients, what has moved, and the steps
//! `copy.rs` and `copy_attachments.rs` both take: a manifest by digest with what it names, and a
//! blob skipped, mounted or streamed (tried again while its failure is temporary).

use bytes::Bytes;
use serde_json::Value;

use crate::digest::Digest;
use crate::http::{with_retries, Attempt};
use crate::image::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::progress::{Phase, Reporter};
use crate::registry::{backoff, Client, Mount, RegistryError};

/// What a copy moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyCounts {
    /// Blobs streamed from the source, mounted, and found at the destination already.
    pub streamed: usize,
    pub mounted: usize,
    pub skipped: usize,
    /// Manifests written at the destination (images, indexes, attachments, cosign tags).
    pub manifests_written: usize,
    /// Attachments carried: referrers and cosign `.sig` / `.att` / `.sbom` manifests.
    pub attachments: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::DockerConfigError),
    #[error("no manifest at {0} (no such tag, digest or repository)")]
    NotFound(String),
    #[error("{reference}: {reason}")]
    Unreadable { reference: String, reason: String },
    #[error("the source has no blob {digest}, which {manifest} names")]
    MissingBlob { digest: Digest, manifest: Digest },
    #[error("the destination {0} names a digest: name a tag, or the repository only")]
    DestinationDigest(String),
    #[error("the copy was stopped before its tag moved")]
    Stopped,
}

/// The two registries of a copy, connected.
pub(super) struct Copying<'a> {
    pub source: &'a Client,
    pub destination: &'a Client,
    pub same_registry: bool,
    pub reporter: &'a dyn Reporter,
    pub outcome: CopyCounts,
    pub stop: crate::stop::Stop,
}

/// The media type a manifest's bytes declare (or, for OCI ones that leave it out, imply).
pub(super) fn media_type_of(bytes: &[u8]) -> Option<&'static str> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    match v.get("mediaType").and_then(Value::as_str) {
        Some(OCI_MANIFEST) => Some(OCI_MANIFEST),
        Some(OCI_INDEX) => Some(OCI_INDEX),
        Some(DOCKER_MANIFEST) => Some(DOCKER_MANIFEST),
        Some(DOCKER_MANIFEST_LIST) => Some(DOCKER_MANIFEST_LIST),
        Some(_) => None,
        None if v.get("manifests").is_some() => Some(OCI_INDEX),
        None if v.get("layers").is_some() => Some(OCI_MANIFEST),
        None => None,
    }
}

/// A descriptor's digest and size; an error for one whose digest nixpush cannot check (another
/// algorithm, or malformed): skipping it would tag an image whose blobs are not all there.
fn described(d: &Value) -> Result<(Digest, Option<u64>), CopyError> {
    let text = d.get("digest").and_then(Value::as_str).unwrap_or_default();
    let digest = text.parse().map_err(|_| CopyError::Unreadable {
        reference: text.to_owned(),
        reason: "a descriptor whose digest is not sha256:<hex>".into(),
    })?;
    Ok((digest, d.get("size").and_then(Value::as_u64)))
}

/// The digests and sizes of the blobs a manifest names (config and layers; none for an index).
pub(super) fn blobs_of(bytes: &[u8]) -> Result<Vec<(Digest, Option<u64>)>, CopyError> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(Vec::new());
    };
    v.get("config")
        .into_iter()
        .chain(
            v.get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(described)
        .collect()
}

/// The manifests an index names.
pub(super) fn children_of(bytes: &[u8]) -> Result<Vec<Digest>, CopyError> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| described(m).map(|(d, _)| d))
        .collect()
}

impl Copying<'_> {
    /// Streams one blob from the source into an upload at the destination (`declined`: the
    /// session a declined mount opened), tried again from the start while a failure is
    /// temporary (a cut or stalled stream, a 5xx) and the retry budget lasts.
    async fn stream_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        manifest: &Digest,
        declined: Option<crate::registry::UploadSession>,
    ) -> Result<(), CopyError> {
        let (source, destination) = (self.source, self.destination);
        let mut declined = declined;
        let retry_for = destination.retry_policy().retry_for;
        let on_retry = |reason: &str| self.reporter.retrying(reason);
        with_retries(retry_for, on_retry, async |attempt| {
            let session = match declined.take() {
                Some(session) => session,
                None => match destination.start_upload().await {
                    Ok(session) => session,
                    Err(e) => return Attempt::Done(Err(e.into())),
                },
            };
            let stream = match source.blob_stream(digest).await {
                Ok(Some(stream)) => stream,
                Ok(None) => {
                    destination.cancel_upload(session).await;
                    return Attempt::Done(Err(CopyError::MissingBlob {
                        digest: digest.clone(),
                        manifest: manifest.clone(),
                    }));
                }
                Err(e) => {
                    destination.cancel_upload(session).await;
                    return Attempt::Done(Err(e.into()));
                }
            };
            let (announced, body) = stream;
            let Some(size) = size.or(announced) else {
                destination.cancel_upload(session).await;
                return Attempt::Done(Err(CopyError::Unreadable {
                    reference: manifest.to_string(),
                    reason: format!("the size of {digest} is not known"),
                }));
            };
            match destination
                .put_upload_whole(session, digest, size, body)
                .await
            {
                Ok(()) => Attempt::Done(Ok(())),
                Err(e) if e.is_temporary() => Attempt::Again {
                    reason: Some(format!("copying {digest}: {e}")),
                    wait: backoff(attempt, None),
                    last: Err(e.given_up().into()),
                },
                Err(e) => Attempt::Done(Err(e.into())),
            }
        })
        .await
    }

    /// Copies the manifest at `target` (a tag or digest) in the source, with its blobs (and, for
    /// an index, its manifests), by digest; returns its digest and bytes.
    pub(super) async fn copy_manifest(
        &mut self,
        target: &str,
        shown: &str,
    ) -> Result<(Digest, Bytes), CopyError> {
        let bytes = self
            .source
            .get_manifest(self.source.repository(), target)
            .await?
            .ok_or_else(|| CopyError::NotFound(shown.to_owned()))?;
        let digest = Digest::of(&bytes);
        if target.starts_with("sha256:") && target != digest.to_string() {
            return Err(CopyError::Unreadable {
                reference: shown.to_owned(),
                reason: format!("the source sent a manifest of digest {digest}"),
            });
        }
        for child in children_of(&bytes)? {
            Box::pin(self.copy_manifest(&child.to_string(), &format!("{shown}@{child}"))).await?;
        }
        for (blob, size) in blobs_of(&bytes)? {
            self.move_blob(&blob, size, &digest).await?;
        }
        self.put_by_digest(&digest, bytes.clone(), shown).await?;
        Ok((digest, bytes))
    }

    /// Writes a manifest by digest at the destination, unless it is there; whether the
    /// destination said it indexed its subject.
    pub(super) async fn put_by_digest(
        &mut self,
        digest: &Digest,
        bytes: Bytes,
        shown: &str,
    ) -> Result<bool, CopyError> {
        let media_type = media_type_of(&bytes).ok_or_else(|| CopyError::Unreadable {
            reference: shown.to_owned(),
            reason: "not a manifest or index".into(),
        })?;
        let repository = self.destination.repository().to_owned();
        if self
            .destination
            .get_manifest(&repository, &digest.to_string())
            .await?
            .is_some()
        {
            return Ok(true);
        }
        let indexed = self
            .destination
            .put_manifest(&digest.to_string(), media_type, bytes, digest)
            .await?;
        self.outcome.manifests_written += 1;
        Ok(indexed)
    }

    /// Brings one blob to the destination: skipped, mounted, or streamed.
    pub(super) async fn move_blob(
        &mut self,
        digest: &Digest,
        size: Option<u64>,
        manifest: &Digest,
    ) -> Result<(), CopyError> {
        if self.stop.is_stopped() {
            return Err(CopyError::Stopped);
        }
        if self.destination.blob_size(digest).await?.is_some() {
            self.outcome.skipped += 1;
            return Ok(());
        }
        let mut declined = None;
        if self.same_registry {
            let from = self.source.repository().to_owned();
            match self.destination.mount_blob(digest, &from).await? {
                Mount::Linked => {
                    self.outcome.mounted += 1;
                    self.reporter.phase(&Phase::BlobCopied {
                        digest: digest.clone(),
                        how: "mounted".into(),
                    });
                    return Ok(());
                }
                Mount::Declined(session) => declined = Some(session),
            }
        }
        self.stream_blob(digest, size, manifest, declined).await?;
        self.outcome.streamed += 1;
        self.reporter.phase(&Phase::BlobCopied {
            digest: digest.clone(),
            how: "streamed".into(),
        });
        Ok(())
    }
}
