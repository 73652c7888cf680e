//! `nixpush copy SRC DST`: an image or index moved to another repository or registry with its
//! digest unchanged (the manifests' bytes are written as read), together with what refers to
//! it (`copy_attachments.rs`), and the tag written last, once the destination holds everything.
//! A blob the destination has is skipped; on the same registry it is mounted from the source
//! repository; otherwise it streams from the source registry into the destination's upload,
//! checked against its digest as it goes, with no file on disk.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use super::copy_attachments::copy_attachments;
use super::copying::{children_of, media_type_of, CopyCounts, CopyError, Copying};
use crate::credentials::connect;
use crate::digest::Digest;
use crate::progress::{Phase, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Credentials, RetryPolicy};

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

/// Copies the image `request.source` names to `request.destination`.
///
/// Boxed, as `push` is: the binary awaits it (docs/benchmarks.md).
pub fn copy<'a>(
    request: &'a CopyRequest,
    reporter: Arc<dyn Reporter>,
    stop: &'a crate::stop::Stop,
) -> LocalBoxFuture<'a, Result<CopyOutcome, CopyError>> {
    Box::pin(async move {
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
        let source =
            connect::<CopyError>(src, credentials, Access::Pull, &reach, &reporter).await?;
        let credentials = request.destination_credentials.as_ref();
        let access = Access::PullPush;
        let destination = connect::<CopyError>(dst, credentials, access, &reach, &reporter).await?;
        let mut copying = Copying {
            source: &source,
            destination: &destination,
            same_registry: src.api_host() == dst.api_host(),
            reporter: reporter.as_ref(),
            outcome: CopyCounts::default(),
            stop: stop.child(),
        };
        let target = src.manifest_target();
        let (digest, bytes) = copying.copy_manifest(&target, &src.to_string()).await?;
        copy_attachments(&mut copying, &digest, &bytes).await?;
        if let Some(signer) = request.signer.as_deref() {
            let mut subjects = vec![digest.clone()];
            subjects.extend(children_of(&bytes)?);
            let identity = format!("{}/{}", dst.registry(), dst.repository());
            super::signatures::sign_subjects(
                copying.destination,
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
            if copying.stop.is_stopped() {
                return Err(CopyError::Stopped);
            }
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
    })
}
