//! The registry side of a push: every layer blob (skipped when the registry has it, else built
//! and uploaded in one pass, concurrently, the way the host takes: streamed, whole or in chunks),
//! then the config blob. The manifests are the caller's to write, once all of this succeeded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use super::reuse::{rebuild, remember, Reuse};
use super::upload_options::UploadOptions;
use super::PushError;
use crate::http::{with_retries, Attempt, Budget};
use crate::known_layers::{declared_blob, CacheEntry, KnownBlob};
use crate::layer::{open_layer, Compression, LayerDigests, LayerError, LayerFailure, LayerSpec};
use crate::layer_jobs::LayerJobs;
use crate::outcome::{LayerAction, LayerReport};
use crate::plan::ImagePlan;
use crate::progress::{Reporter, Warning};
use crate::registry::{self, BlobBody, Client, HostFacts, RegistryError, UploadSession};
use crate::request::UploadMode;

use crate::stop::Stop;

/// Puts every blob of `plan` in the registry (layers, then the config) and returns each
/// layer's report; the manifest is the caller's to write.
pub(super) async fn upload_blobs(
    client: &Client,
    plan: &ImagePlan,
    options: &UploadOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<LayerReport>, PushError> {
    let total = plan.layers.len();
    let layers = LayerJobs {
        count: total,
        jobs: options.jobs,
        stop: &options.stop,
        // The uploads in flight end their streams and cancel their sessions, briefly: dropped
        // in the middle of a body, their sessions could not be cancelled.
        wind_down: Some(WIND_DOWN),
    }
    .run(
        || PushError::Stopped,
        |index| {
            let spec = &plan.layers[index];
            async move {
                reporter.layer_started(index, total, &spec.describe());
                let report = ensure_layer(client, spec, index, options, reporter.clone()).await?;
                let d = &report.digests;
                reporter.layer_done(index, &report.action, &d.digest, d.size);
                Ok(report)
            }
        },
    )
    .await?;

    let digests: Vec<LayerDigests> = layers.iter().map(|l| l.digests.clone()).collect();
    let documents = plan.documents(&digests);
    // Its steps are retried on their own: the config is a replayable body.
    client
        .ensure_blob(&documents.config_digest, documents.config.clone())
        .await?;
    Ok(layers)
}

/// How long the uploads in flight are given to end their streams and cancel their sessions once
/// the push has failed.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a layer's upload, starting it again (the layer stream reopened) when its streamed
/// request fails in a way that may succeed later, for as long as `retry_for` from its first
/// failure (a layer that streamed for minutes before a drop still gets its budget): the one
/// retry loop of `http`, with the budget counted from the first failure. The other steps retry
/// on their own and fail for good (`GaveUp`) when they give up, so this never retries around
/// them. A stopped push starts nothing again.
pub(super) async fn retrying<T, F, Fut>(
    retry_for: std::time::Duration,
    stop: &Stop,
    mut attempt_once: F,
    on_retry: impl Fn(&str),
) -> Result<T, PushError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PushError>>,
{
    let budget = Budget::AfterFirstFailure(retry_for);
    with_retries(budget, on_retry, async |attempt| {
        match attempt_once().await {
            Err(PushError::Registry(e)) if e.is_temporary() && !stop.is_stopped() => {
                let wait = e
                    .retry_after()
                    .unwrap_or_else(|| registry::backoff(attempt, None));
                let reason = Some(e.to_string());
                Attempt::Again {
                    last: Err(PushError::Registry(e)),
                    wait,
                    reason,
                }
            }
            other => Attempt::Done(other),
        }
    })
    .await
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
    let media_type = spec.media_type(options.compression);
    // With --verify, a known blob is used only when rebuilding the layer gives exactly it.
    let mut rebuilt: Option<LayerDigests> = None;
    // An upload session a declined mount opened: the upload starts in it.
    let mut offered: Option<UploadSession> = None;
    // Read once: what the cache knows serves the skip, the mounts and a monolithic upload.
    let cached = options
        .cache
        .entry(&spec.key)
        .filter(|c| c.layer.media_type == media_type)
        .or_else(|| {
            // A blob the image JSON declares stands in for a cache entry on a fresh runner.
            declared_blob(spec, options.compression).map(|layer| CacheEntry {
                key: Some(spec.key.to_string()),
                layer,
                seen: Vec::new(),
            })
        });
    let mut reuse = Reuse {
        client,
        spec,
        index,
        options,
        reporter: reporter.as_ref(),
        rebuilt: &mut rebuilt,
        offered: &mut offered,
    };
    if let Some(report) = reuse.known_blob(cached.as_ref()).await? {
        return Ok(report);
    }
    // What the blob will be, when known beforehand: a monolithic upload can announce it.
    let mut known = rebuilt
        .clone()
        .or_else(|| cached.map(|c| c.layer.digests()));
    let upload = LayerUpload {
        client,
        spec,
        index,
        compression: options.compression,
        reporter: reporter.clone(),
        sent: Arc::new(AtomicU64::new(0)),
        stop: &options.stop,
    };
    let on_retry = |reason: &str| reporter.layer_retry(index, reason);
    let retry_for = client.retry_policy().retry_for;
    // Each way is tried once: a host that refuses one (a streamed body, a body over its cap)
    // has taught which it takes, and the next push goes that way from the start.
    let mut tried: Vec<Way> = Vec::new();
    let mut refused: Option<RegistryError> = None;
    // A known digest found wrong is dropped once: the layer is then sent without it.
    let mut corrected = false;
    let digests = loop {
        let way = choose_way(
            options.upload,
            &mut known,
            &client.host_facts(),
            spec,
            options.compression,
        )
        .await
        .map_err(|e| LayerFailure::new(spec, index, e))?;
        if let Some(refusal) = refused.take().filter(|_| tried.contains(&way)) {
            // Refused, and nothing new to try: the host's own answer is the error.
            return Err(refusal.into());
        }
        tried.push(way.clone());
        let uploaded = retrying(
            retry_for,
            &options.stop,
            || upload.attempt(offered.take(), way.clone()),
            on_retry,
        )
        .await;
        match uploaded {
            Ok(digests) => break digests,
            Err(PushError::Registry(RegistryError::WayRefused(e))) => {
                reporter.layer_retry(index, &format!("{e}; sending it another way"));
                refused = Some(*e);
            }
            // A cached digest that is not what the store gives now (a damaged cache): the blob
            // is sent without it, and the cache corrected below.
            Err(PushError::KnownDigestWrong { .. })
                if options.upload == UploadMode::Auto
                    && !std::mem::replace(&mut corrected, true) =>
            {
                reporter.warning(&Warning::CachedDigestWrong { layer: index + 1 });
                known = None;
                tried.clear();
            }
            Err(e) => return Err(e),
        }
    };
    let entry = KnownBlob::new(&digests, media_type);
    remember(&options.cache, spec, &entry, client, reporter.as_ref());
    let bytes_sent = upload.sent.load(Ordering::Relaxed);
    Ok(LayerReport::new(
        spec,
        digests,
        LayerAction::Pushed,
        bytes_sent,
    ))
}

/// How one upload attempt sends a layer's bytes.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Way {
    /// One `PATCH` carrying the whole stream, no length (the default).
    Streamed,
    /// One `PUT ?digest=` with its `Content-Length`: the blob is known beforehand.
    Whole(LayerDigests),
    /// `PATCH`es of this many bytes, each with its length and range.
    Chunks(u64),
}

/// The way to send a layer to this host: `--upload` first; else a known blob whole (unless it
/// is over the host's cap), else streamed, unless the host wants lengths: then whole after
/// hashing the layer for a host that answered 411 (Artifact Registry takes no chunks), else
/// chunks under its cap. A layer hashed to learn its blob is remembered in `known`.
pub(super) async fn choose_way(
    mode: UploadMode,
    known: &mut Option<LayerDigests>,
    facts: &HostFacts,
    spec: &LayerSpec,
    compression: Compression,
) -> Result<Way, LayerError> {
    let hashed = async |known: &mut Option<LayerDigests>| -> Result<LayerDigests, LayerError> {
        if let Some(k) = known {
            return Ok(k.clone());
        }
        let k = rebuild(spec, compression).await?;
        *known = Some(k.clone());
        Ok(k)
    };
    Ok(match mode {
        UploadMode::Streaming => Way::Streamed,
        UploadMode::Monolithic => Way::Whole(hashed(known).await?),
        UploadMode::Auto => match (known.as_ref(), facts.length_required) {
            (Some(k), _) if facts.takes_body(k.size) => Way::Whole(k.clone()),
            (_, None) => Way::Streamed,
            (_, Some(411)) => {
                let k = hashed(known).await?;
                if facts.takes_body(k.size) {
                    Way::Whole(k)
                } else {
                    Way::Chunks(facts.chunk_size())
                }
            }
            (_, Some(_)) => Way::Chunks(facts.chunk_size()),
        },
    })
}

/// One layer's upload: what every attempt at it needs.
struct LayerUpload<'a> {
    client: &'a Client,
    spec: &'a LayerSpec,
    index: usize,
    compression: Compression,
    reporter: Arc<dyn Reporter>,
    /// Compressed bytes handed to the network, every attempt counted.
    sent: Arc<AtomicU64>,
    stop: &'a Stop,
}

impl LayerUpload<'_> {
    /// One upload attempt: POST (unless a declined mount opened the session), then the layer's bytes
    /// the `way` says (streamed or chunked `PATCH` fed by the layer pipeline, then PUT ?digest=; or
    /// one PUT ?digest= carrying a blob known beforehand). A failed attempt cancels its session.
    async fn attempt(
        &self,
        offered: Option<UploadSession>,
        way: Way,
    ) -> Result<LayerDigests, PushError> {
        let way = &way;
        let (client, spec, index, compression) =
            (self.client, self.spec, self.index, self.compression);
        let (reporter, sent, stop) = (self.reporter.clone(), self.sent.clone(), self.stop);
        let whole = match way {
            Way::Whole(known) => Some(known),
            _ => None,
        };
        let stop_signal = stop.clone();
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
        // Stopped, the stream ends early and the request completes: the registry then answers
        // with the session's latest state, which the cancel below needs.
        let stop = stop.clone();
        let body = BlobBody::new(body.take_until(async move { stop.stopped().await }));
        let sent = match way {
            Way::Whole(expected) => client
                .put_upload_whole(session.clone(), &expected.digest, expected.size, body)
                .await
                .map(|()| None),
            Way::Streamed => client.send_upload_data(&session, body).await.map(Some),
            Way::Chunks(size) => client
                .send_upload_chunks(&session, body, *size)
                .await
                .map(Some),
        };
        let produced = stream
            .digests
            .await
            .map_err(|_| LayerError::Panicked)
            .and_then(|r| r);
        let layer_error = |source| PushError::from(LayerFailure::new(spec, index, source));
        let stop_now = || stop_signal.is_stopped();
        let result = match (sent, produced) {
            // A store path that cannot be read is the real cause, whatever the upload saw.
            (_, Err(e)) if !matches!(e, LayerError::Sink(_)) => Err(layer_error(e)),
            // Stopped: the stream was ended early on purpose.
            (Ok(_), _) if stop_now() => Err(PushError::Stopped),
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
}
