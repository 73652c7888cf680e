//! The registry side of a push: every layer blob (skipped when the registry has it, else built
//! and uploaded in one streaming pass, concurrently), then the config blob. The manifest that
//! names them is returned, not written: the caller writes it only once all of this succeeded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::cache::{CachedLayer, LayerCache};
use crate::digest::Digest;
use crate::layer::{
    build_layer, open_layer, Compression, LayerDigests, LayerError, LayerKey, LayerSpec,
};
use crate::layer_index::LayerIndex;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{LayerAction, Reporter};
use crate::push::PushError;
use crate::registry::{self, Client, Mount, UploadSession};

/// How blobs are uploaded.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    pub compression: Compression,
    pub jobs: usize,
    pub cache: LayerCache,
    /// Layers learned from manifests already in the registry.
    pub index: LayerIndex,
    /// Rebuild every layer that would be skipped and use the known blob only if it is
    /// byte-identical (`--verify`).
    pub verify: bool,
    /// Repositories of the registry to mount known blobs from (`--mount-from`).
    pub mount_from: Vec<String>,
    pub upload: UploadMode,
}

/// What one layer's push did.
#[derive(Clone, Debug)]
pub struct LayerReport {
    pub key: LayerKey,
    pub digests: LayerDigests,
    /// The store paths whose files the layer holds (none: the generated root filesystem).
    pub store_paths: Vec<PathBuf>,
    pub action: LayerAction,
    /// Compressed bytes handed to the network for it, failed attempts included.
    pub bytes_sent: u64,
}

impl LayerReport {
    /// A report for `spec`, whose blob is `digests`.
    pub fn new(
        spec: &LayerSpec,
        digests: LayerDigests,
        action: LayerAction,
        bytes_sent: u64,
    ) -> Self {
        LayerReport {
            key: spec.key.clone(),
            digests,
            store_paths: spec.store_paths().to_vec(),
            action,
            bytes_sent,
        }
    }
}

/// Every blob is in the registry; this manifest names them.
pub struct UploadedImage {
    pub documents: ImageDocuments,
    pub layers: Vec<LayerReport>,
}

/// Puts every blob of `plan` in the registry (layers, then the config) and returns the
/// manifest that names them, ready to be written.
pub async fn upload_blobs(
    client: &Client,
    plan: &ImagePlan,
    options: &UploadOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<UploadedImage, PushError> {
    let total = plan.layers.len();
    // Unordered: a large layer must not hold back the start of the layers after it (`buffered`
    // starts nothing new until the oldest finishes). Results are put back in layer order.
    let mut layers: Vec<(usize, LayerReport)> =
        futures_util::stream::iter(plan.layers.iter().enumerate())
            .map(|(index, spec)| {
                let reporter = reporter.clone();
                async move {
                    reporter.layer_started(index, total, &describe(spec));
                    let report =
                        ensure_layer(client, spec, index, options, reporter.clone()).await?;
                    reporter.layer_done(
                        index,
                        &report.action,
                        &report.digests.digest,
                        report.digests.size,
                    );
                    Ok::<_, PushError>((index, report))
                }
            })
            .buffer_unordered(options.jobs.max(1))
            .try_collect()
            .await?;
    layers.sort_by_key(|(index, _)| *index);
    let layers: Vec<LayerReport> = layers.into_iter().map(|(_, r)| r).collect();

    let digests: Vec<LayerDigests> = layers.iter().map(|l| l.digests.clone()).collect();
    let documents = plan.documents(&digests);
    if client.blob_size(&documents.config_digest).await?.is_none() {
        retrying(
            || async {
                Ok(client
                    .put_blob(&documents.config_digest, documents.config.clone())
                    .await?)
            },
            |reason| reporter.retrying(&format!("config blob: {reason}")),
        )
        .await?;
    }
    Ok(UploadedImage { documents, layers })
}

/// Whether a known blob may stand for this layer: always, unless `--verify`, which rebuilds the
/// layer (once, kept in `rebuilt`) and accepts only the very same blob.
async fn trusted(
    known: &CachedLayer,
    spec: &LayerSpec,
    index: usize,
    options: &UploadOptions,
    rebuilt: &mut Option<LayerDigests>,
    reporter: &dyn Reporter,
) -> Result<bool, PushError> {
    if !options.verify {
        return Ok(true);
    }
    if rebuilt.is_none() {
        let digests = rebuild(spec, options.compression)
            .await
            .map_err(|e| layer_error(spec, index, e))?;
        *rebuilt = Some(digests);
    }
    // Both must match: the blob (what is pulled) and the diff_id (what the config will say).
    let same = rebuilt
        .as_ref()
        .is_some_and(|d| d.digest == known.digest && d.diff_id == known.diff_id);
    if !same {
        reporter.phase(&format!(
            "layer {}: --verify: {} is not what the store gives; building it",
            index + 1,
            known.digest
        ));
    }
    Ok(same)
}

/// A layer's failure, naming the layer.
pub(crate) fn layer_error(spec: &LayerSpec, index: usize, source: LayerError) -> PushError {
    PushError::Layer {
        index,
        first: spec
            .store_paths()
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        extra: spec.store_paths().len().saturating_sub(1),
        source,
    }
}

/// Builds a layer without sending it, for its digests (`--verify`).
async fn rebuild(spec: &LayerSpec, compression: Compression) -> Result<LayerDigests, LayerError> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        build_layer(&spec, compression, std::io::sink()).map(|(_, d)| d)
    })
    .await
    .map_err(|_| LayerError::Panicked)?
}

/// Whether the registry has `known`'s blob, with the size known for it: a cached size that
/// disagrees with the registry's is a damaged entry, and the layer is built again.
async fn is_present(client: &Client, known: &CachedLayer) -> Result<bool, PushError> {
    let present = client.blob_size(&known.digest).await?;
    Ok(present.is_some_and(|size| size.is_none_or(|s| s == known.size)))
}

/// Records a layer's blob in the local cache, as seen in the client's repository; a cache that
/// cannot be written costs only speed.
fn remember(
    options: &UploadOptions,
    spec: &LayerSpec,
    layer: &CachedLayer,
    client: &Client,
    reporter: &dyn Reporter,
) {
    let here = format!("{}/{}", client.registry(), client.repository());
    if let Err(e) = options.cache.put_seen(&spec.key, layer, Some(&here)) {
        reporter.phase(&format!("could not write the layer cache: {e}"));
    }
}

/// Most repositories a layer's blob is offered to be mounted from.
const MAX_MOUNT_SOURCES: usize = 4;

/// Repositories of this registry a cached blob may be mounted from: every `--mount-from`, then
/// those the cache saw it in, most recent first.
fn mount_sources(options: &UploadOptions, seen: &[String], client: &Client) -> Vec<String> {
    let prefix = format!("{}/", client.registry());
    let mut sources: Vec<String> = Vec::new();
    let candidates = options
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
async fn try_mount(
    client: &Client,
    digest: &Digest,
    source: &str,
    offered: &mut Option<UploadSession>,
) -> bool {
    match client.mount_blob(digest, source).await {
        Ok(Mount::Linked) => {
            if let Some(session) = offered.take() {
                client.cancel_upload(session).await;
            }
            true
        }
        Ok(Mount::Declined(session)) => {
            if let Some(old) = offered.replace(session) {
                client.cancel_upload(old).await;
            }
            false
        }
        Err(_) => false,
    }
}

/// Runs an upload sequence, starting it again from scratch when it fails in a way that may
/// succeed later: the one retry point for uploads (their steps make one attempt each).
async fn retrying<T, F, Fut>(mut attempt_once: F, on_retry: impl Fn(&str)) -> Result<T, PushError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PushError>>,
{
    let mut attempt = 1;
    loop {
        match attempt_once().await {
            Err(PushError::Registry(e)) if e.is_temporary() && attempt < registry::MAX_ATTEMPTS => {
                on_retry(&e.to_string());
                let wait = e
                    .retry_after()
                    .unwrap_or_else(|| registry::backoff(attempt, None));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Makes sure one layer's blob is in the registry: skipped when a known digest is already
/// there, else built and uploaded in one pass, retried from scratch on a temporary failure.
async fn ensure_layer(
    client: &Client,
    spec: &LayerSpec,
    index: usize,
    options: &UploadOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<LayerReport, PushError> {
    let media_type = options.compression.media_type();
    let skipped = |known: &CachedLayer, action: LayerAction| {
        let digests = LayerDigests {
            diff_id: known.diff_id.clone(),
            digest: known.digest.clone(),
            size: known.size,
        };
        LayerReport::new(spec, digests, action, 0)
    };
    // Candidates the registry may already hold: the local cache's, then the manifests'. With
    // --verify, one is used only when rebuilding the layer gives exactly its blob.
    let mut rebuilt: Option<LayerDigests> = None;
    // An upload session a declined mount opened: the upload starts in it.
    let mut offered: Option<UploadSession> = None;
    // Read once: what the cache knows serves the skip, the mounts and a monolithic upload.
    let cached = options
        .cache
        .entry(&spec.key)
        .filter(|c| c.layer.media_type == media_type);
    if let Some(entry) = &cached {
        let known = &entry.layer;
        let present = is_present(client, known).await?;
        let sources = mount_sources(options, &entry.seen, client);
        if (present || !sources.is_empty())
            && trusted(known, spec, index, options, &mut rebuilt, reporter.as_ref()).await?
        {
            if present {
                remember(options, spec, known, client, reporter.as_ref());
                return Ok(skipped(known, LayerAction::Skipped));
            }
            for source in sources {
                if try_mount(client, &known.digest, &source, &mut offered).await {
                    remember(options, spec, known, client, reporter.as_ref());
                    return Ok(skipped(known, LayerAction::Mounted));
                }
            }
        }
    }
    if let Some(known) = options
        .index
        .get(&spec.key)
        .filter(|k| k.layer.media_type == media_type)
    {
        let trusted = trusted(
            &known.layer,
            spec,
            index,
            options,
            &mut rebuilt,
            reporter.as_ref(),
        )
        .await?;
        let action = if !trusted {
            None
        } else if known.repository == client.repository() {
            is_present(client, &known.layer)
                .await?
                .then_some(LayerAction::Skipped)
        } else {
            // Seen in a repository the user named: link it here rather than upload it.
            try_mount(client, &known.layer.digest, &known.repository, &mut offered)
                .await
                .then_some(LayerAction::Mounted)
        };
        if let Some(action) = action {
            if let Some(session) = offered.take() {
                client.cancel_upload(session).await;
            }
            remember(options, spec, &known.layer, client, reporter.as_ref());
            return Ok(skipped(&known.layer, action));
        }
    }
    // What the blob will be, when known beforehand: a monolithic upload can announce it.
    let known_blob = rebuilt.clone().or_else(|| {
        cached.map(|c| LayerDigests {
            diff_id: c.layer.diff_id,
            digest: c.layer.digest,
            size: c.layer.size,
        })
    });
    let whole = match (options.upload, known_blob) {
        (UploadMode::Streaming, _) => None,
        (_, Some(known)) => Some(known),
        (UploadMode::Monolithic, None) => Some(
            rebuild(spec, options.compression)
                .await
                .map_err(|e| layer_error(spec, index, e))?,
        ),
        (UploadMode::Auto, None) => None,
    };
    let sent = Arc::new(AtomicU64::new(0));
    let attempt = |offered: Option<UploadSession>, whole: Option<LayerDigests>| {
        let (reporter, sent) = (reporter.clone(), sent.clone());
        async move {
            upload_layer(
                client,
                spec,
                index,
                options.compression,
                reporter,
                sent,
                offered,
                whole.as_ref(),
            )
            .await
        }
    };
    let on_retry = |reason: &str| reporter.layer_retry(index, reason);
    let uploaded = retrying(|| attempt(offered.take(), whole.clone()), on_retry).await;
    let digests = match uploaded {
        // A cached digest that is not what the store gives now (a damaged cache): the blob is
        // streamed instead, and the cache corrected below.
        Err(PushError::KnownDigestWrong { .. }) if options.upload == UploadMode::Auto => {
            reporter.phase(&format!(
                "layer {}: the cached digest is not what the store gives; streaming it",
                index + 1
            ));
            retrying(|| attempt(None, None), on_retry).await?
        }
        other => other?,
    };
    let entry = CachedLayer {
        digest: digests.digest.clone(),
        diff_id: digests.diff_id.clone(),
        size: digests.size,
        media_type: media_type.to_owned(),
    };
    remember(options, spec, &entry, client, reporter.as_ref());
    let bytes_sent = sent.load(Ordering::Relaxed);
    Ok(LayerReport::new(
        spec,
        digests,
        LayerAction::Pushed,
        bytes_sent,
    ))
}

/// How a layer's blob goes up (`--upload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// Monolithic when the digest is known beforehand (the local cache), else streaming.
    #[default]
    Auto,
    /// Always one streaming `PATCH`, the digest learned as the bytes go.
    Streaming,
    /// Always one `PUT ?digest=` with a `Content-Length`: a layer whose digest is not known is
    /// built once more, without sending, to learn it (nothing is written to disk).
    Monolithic,
}

/// One upload attempt: POST (unless a declined mount opened the session), then either one
/// streaming PATCH fed by the layer pipeline and PUT ?digest=, or, when `whole` names the blob
/// beforehand, one PUT ?digest= carrying it. A failed attempt cancels its upload session.
#[allow(clippy::too_many_arguments)]
async fn upload_layer(
    client: &Client,
    spec: &LayerSpec,
    index: usize,
    compression: Compression,
    reporter: Arc<dyn Reporter>,
    sent: Arc<AtomicU64>,
    offered: Option<UploadSession>,
    whole: Option<&LayerDigests>,
) -> Result<LayerDigests, PushError> {
    let session = match offered {
        Some(session) => session,
        None => client.start_upload().await?,
    };
    let stream = open_layer(spec, compression);
    let body = stream.body.inspect(move |chunk| {
        if let Ok(c) = chunk {
            sent.fetch_add(c.len() as u64, Ordering::Relaxed);
            reporter.layer_bytes(index, c.len() as u64);
        }
    });
    let body = reqwest::Body::wrap_stream(body);
    let sent = match whole {
        Some(expected) => client
            .put_upload_whole(session.clone(), &expected.digest, expected.size, body)
            .await
            .map(|()| None),
        None => client.send_upload_data(&session, body).await.map(Some),
    };
    let produced = stream
        .digests
        .await
        .map_err(|_| LayerError::Panicked)
        .and_then(|r| r);
    let layer_error = |source| layer_error(spec, index, source);
    let result = match (sent, produced) {
        // A store path that cannot be read is the real cause, whatever the upload saw.
        (_, Err(e)) if !matches!(e, LayerError::Sink(_)) => Err(layer_error(e)),
        // The blob is not the one announced: the registry refused it, or will.
        (_, Ok(d)) if whole.is_some_and(|w| *w != d) => Err(PushError::KnownDigestWrong {
            layer: index + 1,
            expected: whole.expect("checked").digest.clone(),
            actual: d.digest,
        }),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(layer_error(e)),
        (Ok(None), Ok(d)) => return Ok(d),
        (Ok(Some(next)), Ok(d)) => {
            match client.commit_upload(next, &d.digest, Bytes::new()).await {
                Ok(()) => return Ok(d),
                Err(e) => Err(e.into()),
            }
        }
    };
    client.cancel_upload(session).await;
    result
}

/// A short description of a layer: its first store path, and how many more.
pub(crate) fn describe(spec: &LayerSpec) -> String {
    let first = spec
        .store_paths()
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match spec.store_paths().len() {
        0 => "root filesystem (/etc, /tmp, --contents links)".to_owned(),
        1 => first,
        n => format!("{first} and {} more", n - 1),
    }
}
