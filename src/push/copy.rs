//! `nixpush copy SRC DST`: an image or index moved to another repository or registry with its
//! digest unchanged (the manifests' bytes are written as read), together with what refers to
//! it (`copy_attachments.rs`), and the tag written last, once the destination holds everything.
//! A blob the destination has is skipped; on the same registry it is mounted from the source
//! repository; otherwise it streams from the source registry into the destination's upload,
//! checked against its digest as it goes, with no file on disk.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::copy_attachments::copy_attachments;
use crate::credentials::connect;
use crate::digest::Digest;
use crate::http::{with_retries, Attempt};
use crate::image::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::progress::{Phase, Reporter};
use crate::reference::Reference;
use crate::registry::{backoff, Access, Client, Credentials, Mount, RegistryError, RetryPolicy};

/// What `nixpush copy` is asked.
#[derive(Clone, Debug)]
pub struct CopyRequest {
    pub source: Reference,
    pub destination: Reference,
    /// Credentials given explicitly for each side (else the stored ones).
    pub source_credentials: Option<Credentials>,
    pub destination_credentials: Option<Credentials>,
    pub insecure: bool,
    pub ca_cert: Option<std::path::PathBuf>,
    pub retry: RetryPolicy,
    /// The tags to write at the destination; none: the destination's tag, else the source's.
    pub tags: Vec<String>,
    /// Also sign the copy for the destination's repository, before any tag moves.
    pub signer: Option<Arc<crate::signing::Signer>>,
}

/// What a copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyOutcome {
    /// `registry/repository@digest` at the destination.
    pub reference: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub counts: CopyCounts,
}

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
}

/// The two registries of a copy, connected.
pub(super) struct Copying<'a> {
    pub source: Client,
    pub destination: Client,
    pub same_registry: bool,
    pub reporter: &'a dyn Reporter,
    pub outcome: CopyCounts,
}

/// Copies the image `request.source` names to `request.destination`.
pub async fn copy(
    request: &CopyRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<CopyOutcome, CopyError> {
    if request.destination.digest().is_some() {
        return Err(CopyError::DestinationDigest(
            request.destination.to_string(),
        ));
    }
    let (src, dst) = (&request.source, &request.destination);
    let reach = crate::credentials::Reach {
        insecure: request.insecure,
        ca_cert: request.ca_cert.clone(),
        retry: request.retry,
    };
    let credentials = request.source_credentials.as_ref();
    let source = connect::<CopyError>(src, credentials, Access::Pull, &reach, &reporter).await?;
    let credentials = request.destination_credentials.as_ref();
    let access = Access::PullPush;
    let destination = connect::<CopyError>(dst, credentials, access, &reach, &reporter).await?;
    let mut copying = Copying {
        source,
        destination,
        same_registry: src.api_host() == dst.api_host(),
        reporter: reporter.as_ref(),
        outcome: CopyCounts::default(),
    };
    let target = src.manifest_target();
    let (digest, bytes) = copying.copy_manifest(&target, &src.to_string()).await?;
    copy_attachments(&mut copying, &digest, &bytes).await?;
    if let Some(signer) = request.signer.as_deref() {
        let mut subjects = vec![digest.clone()];
        subjects.extend(children_of(&bytes));
        let identity = format!("{}/{}", dst.registry(), dst.repository());
        super::signatures::sign_subjects(
            &copying.destination,
            &identity,
            signer,
            &subjects,
            reporter.as_ref(),
        )
        .await
        .map_err(|e| CopyError::Unreadable {
            reference: dst.to_string(),
            reason: e.to_string(),
        })?;
    }
    // Only now, with every blob, manifest, attachment and signature in, does a tag move.
    let tags: Vec<String> = if !request.tags.is_empty() {
        request.tags.clone()
    } else {
        dst.tag()
            .or(src.tag())
            .map(str::to_owned)
            .into_iter()
            .collect()
    };
    let media_type = media_type_of(&bytes).ok_or_else(|| CopyError::Unreadable {
        reference: src.to_string(),
        reason: "not a manifest or index".into(),
    })?;
    let repository = copying.destination.repository().to_owned();
    for tag in &tags {
        // A tag that names this digest already is left as it is.
        let current = copying.destination.get_manifest(&repository, tag).await?;
        if current.is_some_and(|c| Digest::of(&c) == digest) {
            continue;
        }
        reporter.phase(&Phase::WritingTag {
            digest: digest.clone(),
            tag: Some(tag.clone()),
        });
        copying
            .destination
            .put_manifest(tag, media_type, bytes.clone(), &digest)
            .await?;
        copying.outcome.manifests_written += 1;
    }
    Ok(CopyOutcome {
        reference: dst.pinned(&digest),
        digest,
        tags,
        counts: copying.outcome,
    })
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

/// The digests and sizes of the blobs a manifest names (config and layers; none for an index).
pub(super) fn blobs_of(bytes: &[u8]) -> Vec<(Digest, Option<u64>)> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let described = |d: &Value| {
        let digest = d.get("digest")?.as_str()?.parse().ok()?;
        Some((digest, d.get("size").and_then(Value::as_u64)))
    };
    v.get("config")
        .into_iter()
        .chain(
            v.get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(described)
        .collect()
}

/// The manifests an index names.
pub(super) fn children_of(bytes: &[u8]) -> Vec<Digest> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("digest")?.as_str()?.parse().ok())
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
        let (source, destination) = (&self.source, &self.destination);
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
        for child in children_of(&bytes) {
            Box::pin(self.copy_manifest(&child.to_string(), &format!("{shown}@{child}"))).await?;
        }
        for (blob, size) in blobs_of(&bytes) {
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
