//! Whether a layer's blob needs uploading at all: a blob the local cache or a manifest knows
//! for the layer's key is skipped when the registry has it, or mounted from another repository
//! of the same registry; with `--verify`, only once rebuilding the layer gave exactly that blob.

use super::remote::{Mounted, Remote};
use super::upload_options::UploadOptions;
use super::PushError;
use crate::known_layers::{CacheEntry, KnownBlob, LayerCache};
use crate::layer::{build_layer, Compression, LayerDigests, LayerError, LayerFailure, LayerSpec};
use crate::outcome::{LayerAction, LayerReport};
use crate::progress::{Reporter, Warning};

/// Most repositories a layer's blob is offered to be mounted from.
const MAX_MOUNT_SOURCES: usize = 4;

/// One layer's reuse decision, and what it leaves for an upload: a rebuilt layer's digests
/// (`--verify`) and an upload session a declined mount opened.
pub(super) struct Reuse<'a, R: Remote> {
    pub client: &'a R,
    pub spec: &'a LayerSpec,
    pub index: usize,
    pub options: &'a UploadOptions,
    pub reporter: &'a dyn Reporter,
    pub rebuilt: &'a mut Option<LayerDigests>,
    pub offered: &'a mut Option<R::Session>,
}

impl<R: Remote> Reuse<'_, R> {
    /// The report of a layer whose blob is already in the registry, or linked into it now, if
    /// any is: the local cache's candidate (`cached`) first, then the manifests'.
    pub async fn known_blob(
        &mut self,
        cached: Option<&CacheEntry>,
    ) -> Result<Option<LayerReport>, PushError> {
        let media_type = self.spec.media_type(self.options.compression);
        // A layer whose diff_id is fixed beforehand (its image's config names it) takes no blob
        // of another: the config and the layers would disagree.
        let fits = |k: &KnownBlob| self.spec.expected_diff_id().is_none_or(|d| *d == k.diff_id);
        if let Some(entry) = cached.filter(|e| fits(&e.layer)) {
            let known = &entry.layer;
            let present = is_present(self.client, known).await?;
            let sources = self.mount_sources(&entry.seen);
            if (present || !sources.is_empty()) && self.trusted(known).await? {
                if present {
                    return Ok(Some(self.reused(known, LayerAction::Skipped)));
                }
                for source in sources {
                    if self.try_mount(&known.digest, &source).await {
                        return Ok(Some(self.reused(known, LayerAction::Mounted)));
                    }
                }
            }
        }
        let Some(known) = self
            .options
            .learnt
            .get(&self.spec.key)
            .filter(|k| k.layer.media_type == media_type && fits(&k.layer))
        else {
            return Ok(None);
        };
        let action = if !self.trusted(&known.layer).await? {
            None
        } else if known.repository == self.client.repository() {
            is_present(self.client, &known.layer)
                .await?
                .then_some(LayerAction::Skipped)
        } else {
            // Seen in a repository the user named: link it here rather than upload it.
            self.try_mount(&known.layer.digest, &known.repository)
                .await
                .then_some(LayerAction::Mounted)
        };
        let Some(action) = action else {
            return Ok(None);
        };
        if let Some(session) = self.offered.take() {
            self.client.cancel(session).await;
        }
        Ok(Some(self.reused(&known.layer, action)))
    }

    /// The report of a layer whose blob is `known`, recorded in the cache.
    fn reused(&self, known: &KnownBlob, action: LayerAction) -> LayerReport {
        remember(
            &self.options.cache,
            self.spec,
            known,
            self.client,
            self.reporter,
        );
        LayerReport::new(self.spec, known.digests(), action, 0)
    }

    /// Whether a known blob may stand for this layer: always, unless `--verify`, which rebuilds
    /// the layer (once, kept in `rebuilt`) and accepts only the very same blob.
    async fn trusted(&mut self, known: &KnownBlob) -> Result<bool, PushError> {
        if !self.options.verify {
            return Ok(true);
        }
        if self.rebuilt.is_none() {
            let digests = rebuild(self.spec, self.options.compression)
                .await
                .map_err(|e| LayerFailure::new(self.spec, self.index, e))?;
            *self.rebuilt = Some(digests);
        }
        // Both must match: the blob (what is pulled) and the diff_id (what the config will say).
        let same = self
            .rebuilt
            .as_ref()
            .is_some_and(|d| d.digest == known.digest && d.diff_id == known.diff_id);
        if !same {
            self.reporter.warning(&Warning::VerifyMismatch {
                layer: self.index + 1,
                known: known.digest.clone(),
            });
        }
        Ok(same)
    }

    /// Repositories of this registry a cached blob may be mounted from: every `--mount-from`,
    /// then those the cache saw it in, most recent first.
    fn mount_sources(&self, seen: &[String]) -> Vec<String> {
        let client = self.client;
        let prefix = format!("{}/", client.registry());
        let mut sources: Vec<String> = Vec::new();
        let candidates = self
            .options
            .mount_from
            .iter()
            .map(String::as_str)
            .chain(seen.iter().filter_map(|s| s.strip_prefix(&prefix)));
        for repository in candidates {
            if repository != client.repository() && !sources.iter().any(|s| s == repository) {
                sources.push(repository.to_owned());
            }
        }
        sources.truncate(MAX_MOUNT_SOURCES);
        sources
    }

    /// Asks the registry to link `digest` from `source`. A registry that will not mount is no
    /// failure: the layer is uploaded as usual, in the session a declined mount opened (kept in
    /// `offered`; an older one is cancelled).
    async fn try_mount(&mut self, digest: &crate::digest::Digest, source: &str) -> bool {
        match self.client.mount(digest, source).await {
            Ok(Mounted::Linked) => {
                if let Some(session) = self.offered.take() {
                    self.client.cancel(session).await;
                }
                true
            }
            Ok(Mounted::Declined(session)) => {
                if let Some(old) = self.offered.replace(session) {
                    self.client.cancel(old).await;
                }
                false
            }
            Err(_) => false,
        }
    }
}

/// Builds a layer without sending it, for its digests (`--verify`, a monolithic upload of a
/// layer whose digest is not known).
pub(super) async fn rebuild(
    spec: &LayerSpec,
    compression: Compression,
) -> Result<LayerDigests, LayerError> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        build_layer(&spec, compression, std::io::sink()).map(|(_, d)| d)
    })
    .await
    .map_err(|_| LayerError::Panicked)?
}

/// Whether the registry has `known`'s blob, with the size known for it: a cached size that
/// disagrees with the registry's is a damaged entry, and the layer is built again.
async fn is_present(client: &impl Remote, known: &KnownBlob) -> Result<bool, PushError> {
    let present = client.blob_size(&known.digest).await?;
    Ok(present.is_some_and(|size| size.is_none_or(|s| s == known.size)))
}

/// Records a layer's blob in the local cache, as seen in the client's repository; a cache that
/// cannot be written costs only speed.
pub(super) fn remember(
    cache: &LayerCache,
    spec: &LayerSpec,
    layer: &KnownBlob,
    client: &impl Remote,
    reporter: &dyn Reporter,
) {
    let here = format!("{}/{}", client.registry(), client.repository());
    if let Err(e) = cache.put_seen(&spec.key, layer, Some(&here)) {
        reporter.warning(&Warning::CacheNotWritten {
            reason: e.to_string(),
        });
    }
}
