//! The orchestrator: build, plan, then run the registry steps in the only safe order — every
//! layer blob, then the config blob, then the manifest — so a tag never points at an image whose
//! blobs are not all in the registry. Layers run concurrently, each as one streaming pass.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use crate::cache::{CachedLayer, LayerCache};
use crate::digest::Digest;
use crate::image::{Descriptor, Manifest, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::layer::{open_layer, Compression, LayerError, LayerSpec, Owner};
use crate::nix::{self, NixError, Platform};
use crate::plan::{plain_layers, ConfigError, ConfigFlags, ImagePlan};
use crate::progress::{LayerAction, Reporter};
use crate::reference::Reference;
use crate::registry::{self, Client, ConnectOptions, Credentials, RegistryError};

/// The tag used when the destination names none.
pub const DEFAULT_TAG: &str = "latest";

/// A checked push request: everything the user asked for, validated before any I/O.
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub installable: String,
    pub nix_args: Vec<String>,
    pub destination: Reference,
    pub config: ConfigFlags,
    pub created: String,
    pub max_layers: usize,
    pub compression: Compression,
    pub jobs: usize,
    pub insecure: bool,
    pub cache: LayerCache,
}

/// What one layer's push did.
#[derive(Clone, Debug)]
pub struct LayerReport {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub action: LayerAction,
}

/// The result of a successful push.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    /// `registry/repository@sha256:...`
    pub pinned: String,
    pub manifest_digest: Digest,
    pub tag: Option<String>,
    pub layers: Vec<LayerReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("layer {index} ({first}{more})", index = index + 1, more = if *extra > 0 { format!(" and {extra} more") } else { String::new() })]
    Layer {
        index: usize,
        first: String,
        extra: usize,
        #[source]
        source: LayerError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the image's manifest digest is {actual}, not the {expected} the destination names")]
    DigestMismatch { expected: Digest, actual: Digest },
}

/// Builds `request.installable` and pushes its image.
pub async fn push(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<PushOutcome, PushError> {
    // Build and connect at once: wrong credentials or an unreachable registry are reported
    // without waiting for a long build, and a build error still comes first.
    let destination = &request.destination;
    reporter.phase(&format!(
        "building {} and connecting to {}",
        request.installable,
        destination.registry()
    ));
    let connect = Client::connect(
        destination,
        ConnectOptions {
            insecure: request.insecure,
            credentials: credentials_for(destination, reporter.as_ref()),
            reporter: reporter.clone(),
        },
    );
    let (built, client) =
        tokio::join!(nix::build(&request.installable, &request.nix_args), connect);
    let built = built?;
    let client = client?;
    let platform = match &built.system {
        Some(system) => Platform::from_nix_system(system)?,
        None => {
            let host = host_system();
            reporter.phase(&format!(
                "cannot tell which system {} was built for; assuming this machine's ({host})",
                built.top().display()
            ));
            Platform::from_nix_system(&host)?
        }
    };
    let config = request.config.resolve(built.top())?;
    let owner = Owner::default();
    let plan = ImagePlan {
        layers: plain_layers(
            &built.closure,
            request.max_layers,
            &owner,
            request.compression,
        ),
        platform,
        created: request.created.clone(),
        config,
        compression: request.compression,
    };
    reporter.phase(&format!(
        "{} store paths ({} MiB) in {} layers",
        built.closure.paths.len(),
        built.closure.nar_size() / (1024 * 1024),
        plan.layers.len()
    ));

    let outcome = push_plan(&client, &plan, request, reporter).await;
    drop(built); // the GC root lives until every blob is in the registry
    outcome
}

/// Runs the registry steps of `plan`.
async fn push_plan(
    client: &Client,
    plan: &ImagePlan,
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<PushOutcome, PushError> {
    let total = plan.layers.len();
    let layers: Vec<LayerReport> = futures_util::stream::iter(plan.layers.iter().enumerate())
        .map(|(index, spec)| {
            let reporter = reporter.clone();
            async move {
                reporter.layer_started(index, total, &describe(spec));
                let report = ensure_layer(client, spec, index, request, reporter.clone()).await?;
                reporter.layer_done(index, &report.action, &report.digest, report.size);
                Ok::<_, PushError>(report)
            }
        })
        .buffered(request.jobs.max(1))
        .try_collect()
        .await?;

    let config = plan.image_config(layers.iter().map(|l| l.diff_id.clone()).collect());
    let config_bytes = Bytes::from(config.to_bytes());
    let config_digest = Digest::of(&config_bytes);
    if client.blob_size(&config_digest).await?.is_none() {
        client
            .put_blob(&config_digest, config_bytes.clone())
            .await?;
    }

    let manifest = Manifest {
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            annotations: Default::default(),
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: plan.compression.media_type().to_owned(),
                digest: l.digest.clone(),
                size: l.size,
                annotations: Default::default(),
            })
            .collect(),
        annotations: Default::default(),
    };
    let manifest_bytes = Bytes::from(manifest.to_bytes());
    let manifest_digest = Digest::of(&manifest_bytes);
    let destination = &request.destination;
    if let Some(expected) = destination.digest() {
        if *expected != manifest_digest {
            return Err(PushError::DigestMismatch {
                expected: expected.clone(),
                actual: manifest_digest,
            });
        }
    }
    let tag = match (destination.tag(), destination.digest()) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_owned()),
    };
    let target = tag.clone().unwrap_or_else(|| manifest_digest.to_string());
    reporter.phase(&format!("writing manifest {manifest_digest} as {target}"));
    client
        .put_manifest(
            &target,
            MANIFEST_MEDIA_TYPE,
            manifest_bytes,
            &manifest_digest,
        )
        .await?;
    Ok(PushOutcome {
        pinned: destination.pinned(&manifest_digest),
        manifest_digest,
        tag,
        layers,
    })
}

/// Makes sure one layer's blob is in the registry: skipped when a known digest is already
/// there, else built and uploaded in one pass, retried from scratch on a temporary failure.
async fn ensure_layer(
    client: &Client,
    spec: &LayerSpec,
    index: usize,
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<LayerReport, PushError> {
    let media_type = request.compression.media_type();
    if let Some(known) = request
        .cache
        .get(&spec.key)
        .filter(|c| c.media_type == media_type)
    {
        if client.blob_size(&known.digest).await?.is_some() {
            return Ok(LayerReport {
                digest: known.digest,
                diff_id: known.diff_id,
                size: known.size,
                action: LayerAction::Skipped,
            });
        }
    }
    let mut attempt = 1;
    let digests = loop {
        match upload_layer(client, spec, index, request.compression, reporter.clone()).await {
            Ok(d) => break d,
            Err(PushError::Registry(e)) if e.is_temporary() && attempt < registry::MAX_ATTEMPTS => {
                reporter.layer_retry(index, &e.to_string());
                tokio::time::sleep(registry::backoff(attempt, None)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let entry = CachedLayer {
        digest: digests.digest.clone(),
        diff_id: digests.diff_id.clone(),
        size: digests.size,
        media_type: media_type.to_owned(),
    };
    if let Err(e) = request.cache.put(&spec.key, &entry) {
        reporter.phase(&format!("could not write the layer cache: {e}"));
    }
    Ok(LayerReport {
        digest: digests.digest,
        diff_id: digests.diff_id,
        size: digests.size,
        action: LayerAction::Pushed,
    })
}

/// One upload attempt: POST, one streaming PATCH fed by the layer pipeline, PUT ?digest=.
/// A failed attempt cancels its upload session.
async fn upload_layer(
    client: &Client,
    spec: &LayerSpec,
    index: usize,
    compression: Compression,
    reporter: Arc<dyn Reporter>,
) -> Result<crate::layer::LayerDigests, PushError> {
    let session = client.start_upload().await?;
    let stream = open_layer(spec, compression);
    let body = stream.body.inspect(move |chunk| {
        if let Ok(c) = chunk {
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
    let layer_error = |source| PushError::Layer {
        index,
        first: spec
            .paths
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        extra: spec.paths.len().saturating_sub(1),
        source,
    };
    let result = match (sent, produced) {
        // A store path that cannot be read is the real cause, whatever the upload saw.
        (_, Err(e)) if !matches!(e, LayerError::Sink(_)) => Err(layer_error(e)),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => Err(layer_error(e)),
        (Ok(next), Ok(d)) => {
            return match client.commit_upload(next, &d.digest, Bytes::new()).await {
                Ok(()) => Ok(d),
                Err(e) => Err(e.into()),
            }
        }
    };
    client.cancel_upload(session).await;
    result
}

/// Credentials for the destination from Docker's config file. A config that cannot be read is
/// reported and the push goes on anonymously (the registry will say if that is not enough).
fn credentials_for(destination: &Reference, reporter: &dyn Reporter) -> Option<Credentials> {
    let path = registry::default_config_path()?;
    match registry::docker_config_credentials(&path, destination.registry()) {
        Ok(c) => c,
        Err(e) => {
            reporter.phase(&format!("ignoring Docker credentials: {e}"));
            None
        }
    }
}

/// This machine's Nix system name, for images whose derivation cannot be found.
fn host_system() -> String {
    let cpu = match std::env::consts::ARCH {
        "x86" => "i686",
        other => other,
    };
    format!("{cpu}-{}", std::env::consts::OS)
}

/// A short description of a layer: its first store path, and how many more.
fn describe(spec: &LayerSpec) -> String {
    let first = spec
        .paths
        .first()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match spec.paths.len() {
        0 | 1 => first,
        n => format!("{first} and {} more", n - 1),
    }
}
