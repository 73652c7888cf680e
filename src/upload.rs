//! The registry side of a push: every layer blob (skipped when the registry has it, else built
//! and uploaded in one streaming pass, concurrently), then the config blob. The manifest that
//! names them is returned, not written: the caller writes it only once all of this succeeded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::cache::{CachedLayer, LayerCache};
use crate::layer::{
    build_layer, open_layer, Compression, LayerDigests, LayerError, LayerKey, LayerSpec,
};
use crate::layer_index::LayerIndex;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{LayerAction, Reporter};
use crate::push::PushError;
use crate::registry::{self, Client};

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

/// Records a layer's blob in the local cache; a cache that cannot be written costs only speed.
fn remember(
    options: &UploadOptions,
    spec: &LayerSpec,
    layer: &CachedLayer,
    reporter: &dyn Reporter,
) {
    if let Err(e) = options.cache.put(&spec.key, layer) {
        reporter.phase(&format!("could not write the layer cache: {e}"));
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
                tokio::time::sleep(registry::backoff(attempt, None)).await;
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
    if let Some(known) = options
        .cache
        .get(&spec.key)
        .filter(|c| c.media_type == media_type)
    {
        if is_present(client, &known).await?
            && trusted(
                &known,
                spec,
                index,
                options,
                &mut rebuilt,
                reporter.as_ref(),
            )
            .await?
        {
            return Ok(skipped(&known, LayerAction::Skipped));
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
            // Seen in a repository the user named: link it here rather than upload it. A
            // registry that will not mount is no failure: the layer is built as usual.
            client
                .mount_blob(&known.layer.digest, &known.repository)
                .await
                .unwrap_or(false)
                .then_some(LayerAction::Mounted)
        };
        if let Some(action) = action {
            remember(options, spec, &known.layer, reporter.as_ref());
            return Ok(skipped(&known.layer, action));
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let digests = retrying(
        || {
            upload_layer(
                client,
                spec,
                index,
                options.compression,
                reporter.clone(),
                sent.clone(),
            )
        },
        |reason| reporter.layer_retry(index, reason),
    )
    .await?;
    let entry = CachedLayer {
        digest: digests.digest.clone(),
        diff_id: digests.diff_id.clone(),
        size: digests.size,
        media_type: media_type.to_owned(),
    };
    remember(options, spec, &entry, reporter.as_ref());
    let bytes_sent = sent.load(Ordering::Relaxed);
    Ok(LayerReport::new(
        spec,
        digests,
        LayerAction::Pushed,
        bytes_sent,
    ))
}

/// One upload attempt: POST, one streaming PATCH fed by the layer pipeline, PUT ?digest=.
/// A failed attempt cancels its upload session.
async fn upload_layer(
    client: &Client,
    spec: &LayerSpec,
    index: usize,
    compression: Compression,
    reporter: Arc<dyn Reporter>,
    sent: Arc<AtomicU64>,
) -> Result<LayerDigests, PushError> {
    let session = client.start_upload().await?;
    let stream = open_layer(spec, compression);
    let body = stream.body.inspect(move |chunk| {
        if let Ok(c) = chunk {
            sent.fetch_add(c.len() as u64, Ordering::Relaxed);
            reporter.layer_bytes(index, c.len() as u64);
        }
    });
    let sent = client
        .send_upload_data(&session, reqwest::Body::wrap_stream(body))
        .await;
    let produced = stream
        .digests
        .await
        .map_err(|_| LayerError::Panicked)
        .and_then(|r| r);
    let layer_error = |source| layer_error(spec, index, source);
    let result = match (sent, produced) {
        // A store path that cannot be read is the real cause, whatever the upload saw.
        (_, Err(e)) if !matches!(e, LayerError::Sink(_)) => Err(layer_error(e)),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(layer_error(e)),
        (Ok(next), Ok(d)) => match client.commit_upload(next, &d.digest, Bytes::new()).await {
            Ok(()) => return Ok(d),
            Err(e) => Err(e.into()),
        },
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
