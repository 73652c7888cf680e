//! A push to a registry: prepare the images while connecting, learn which layers the registry
//! already holds (the tag's current manifest, `--cache-from`), then either find the image
//! unchanged or upload every blob and write the manifests, the tags last.

use std::sync::Arc;

use super::base::open_base;
use super::finish::write_manifests;
use super::learn::learn_layers;
use super::manifest_format::ManifestWriter;
use super::registry_push::RegistryPush;
use super::unchanged::unchanged_push;
use super::upload::upload_blobs;
use super::upload_options::UploadOptions;
use super::{prepare_all, tags_for, PushError, SharedLayers};
use crate::credentials;
use crate::image::ManifestFormat;
use crate::known_layers::{KnownBlob, KnownLayer, LearntLayers};
use crate::layer::Compression;
use crate::nix::PlatformSpec;
use crate::outcome::{LayerReport, PushOutcome};
use crate::progress::{HttpNotices, Phase, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Client, ConnectOptions, Credentials};
use crate::request::PushRequest;
use crate::stop::Stop;

pub(super) async fn push_to_registry(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
    shared: &mut SharedLayers,
    stop: &Stop,
) -> Result<PushOutcome, PushError> {
    // Prepare and connect at once: wrong credentials or an unreachable registry are reported
    // without waiting for a long build, and a build error still comes first.
    reporter.phase(&Phase::BuildingAndConnecting {
        installables: request.installables(),
        registry: destination.registry().to_owned(),
    });
    let (prepared, client, base) = tokio::join!(
        prepare_all(request, &reporter),
        connect(request, destination, reporter.clone()),
        open_base(request, destination, &reporter)
    );
    let mut prepared = prepared?;
    let client = client?;
    let base = base?;
    if let Some(base) = &base {
        for p in &mut prepared {
            let image = base.image_for(&p.plan.platform).await?;
            p.plan.put_on(image);
        }
    }
    for p in &prepared {
        let (paths, nar_size) = (p.closure.paths.len(), p.closure.nar_size());
        reporter.phase(&Phase::ImageSize {
            platform: PlatformSpec::of(&p.plan.platform).to_string(),
            paths,
            mib: nar_size / (1024 * 1024),
            layers: p.plan.layers.len(),
        });
    }
    let tags = tags_for(request, &prepared)?;
    let mut learnt = learn_layers(
        &client,
        tags.first().map(String::as_str),
        &request.cache_from,
        reporter.as_ref(),
    )
    .await;
    if shared.registry.as_deref() == Some(destination.registry()) {
        learnt.layers.merge(&shared.learnt);
    }
    let push = RegistryPush {
        request,
        destination,
        client: &client,
        prepared: &prepared,
        tags,
        reporter: reporter.clone(),
        stop: stop.child(),
    };
    let mut writer = ManifestWriter::new(&client, request.format);
    if (request.sbom.is_some() || request.provenance) && writer.format() == ManifestFormat::Docker {
        // Said before anything moves: Docker schema 2 has no `subject`.
        return Err(super::referrer::no_referrers_on(client.registry()));
    }
    let outcome = match request.verify {
        // `--verify` rebuilds what it reuses: never the unchanged path.
        false => unchanged_push(&push, &learnt, writer.format()).await?,
        true => None,
    };
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => {
            if let Some(base) = &base {
                let bases: Vec<_> = prepared
                    .iter()
                    .filter_map(|p| p.plan.base.as_ref())
                    .collect();
                let stop = &push.stop;
                base.bring_blobs(&client, destination, &bases, reporter.as_ref(), stop)
                    .await?;
            }
            let layers = upload_images(&push, &mut learnt.layers).await?;
            write_manifests(&push, &mut writer, layers).await?
        }
    };
    // `prepared` (and with it the GC roots) lives until the tags are written.
    drop(prepared);
    shared.record(
        destination.registry(),
        &outcome,
        request.compression,
        client.repository(),
    );
    Ok(outcome)
}

/// Every blob of every image in the registry (layers, then each config), one image after the
/// other; each image's layer reports.
async fn upload_images(
    push: &RegistryPush<'_, Client>,
    learnt: &mut LearntLayers,
) -> Result<Vec<Vec<LayerReport>>, PushError> {
    let request = push.request;
    let mut uploads = Vec::with_capacity(push.prepared.len());
    for p in push.prepared {
        let plan = &p.plan;
        let options = UploadOptions {
            // The plan's own: the media types it names and the blobs must agree.
            compression: plan.compression,
            jobs: request.jobs,
            cache: request.cache.clone(),
            learnt: learnt.clone(),
            verify: request.verify,
            mount_from: request.mount_from.clone(),
            upload: request.upload,
            stop: push.stop.child(),
        };
        let layers = upload_blobs(push.client, plan, &options, &push.reporter).await?;
        // Layers of one platform's image may serve the next (a shared customisation layer).
        for layer in &layers {
            learnt.add(
                layer.key.clone(),
                known_layer(layer, plan.compression, push.client.repository()),
            );
        }
        uploads.push(layers);
    }
    Ok(uploads)
}

impl SharedLayers {
    /// Adds the layers of `outcome` (pushed to `repository` of `registry`) for the pushes after
    /// it; layers of another registry are forgotten.
    fn record(
        &mut self,
        registry: &str,
        outcome: &PushOutcome,
        compression: Compression,
        repository: &str,
    ) {
        if self.registry.as_deref() != Some(registry) {
            *self = SharedLayers {
                registry: Some(registry.to_owned()),
                learnt: LearntLayers::default(),
            };
        }
        for layer in outcome.images.iter().flat_map(|i| &i.layers) {
            self.learnt.add(
                layer.key.clone(),
                known_layer(layer, compression, repository),
            );
        }
    }
}

fn known_layer(layer: &LayerReport, compression: Compression, repository: &str) -> KnownLayer {
    KnownLayer {
        layer: KnownBlob::new(
            &layer.digests,
            layer
                .fixed_media_type
                .unwrap_or_else(|| compression.media_type()),
        ),
        repository: repository.to_owned(),
    }
}

/// The registry client, connected with the destination's credentials.
async fn connect(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
) -> Result<Client, PushError> {
    let credentials = credentials_for(request, destination, reporter.clone()).await?;
    let client = Client::connect(
        destination,
        ConnectOptions {
            insecure: request.insecure,
            ca_cert: request.ca_cert.clone(),
            credentials,
            notices: Arc::new(HttpNotices(reporter)),
            access: Access::PullPush,
            retry: request.retry,
            host_facts: request.cache.hosts_dir(),
        },
    )
    .await?;
    Ok(client)
}

/// Credentials for the destination, the first source that has some: the ones given explicitly
/// (`--creds`, `--username` with `--password-stdin`, `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`),
/// then the stored ones (see [`credentials::lookup`]).
async fn credentials_for(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
) -> Result<Option<Credentials>, PushError> {
    let explicit = request.credentials.clone();
    let registry = destination.registry().to_owned();
    // The keyring (D-Bus) and credential helpers (a child process) block: off the async
    // threads, so the build started beside this goes on meanwhile. Both are bounded in time.
    let found = tokio::task::spawn_blocking(move || {
        let found = credentials::lookup(explicit.as_ref(), &registry, reporter.as_ref());
        if let Ok(None) = found {
            reporter.detail(&format!(
                "credentials: none stored for {registry}; anonymous"
            ));
        }
        found
    })
    .await
    .unwrap_or(Ok(None))?;
    Ok(found)
}
