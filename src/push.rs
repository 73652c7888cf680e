//! The orchestrator: prepare the image (Nix) while connecting to the registry, upload every blob,
//! and only then write the manifest under its tag — so a tag never points at an image whose
//! blobs are not all in the registry.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::CachedLayer;
use crate::cache::LayerCache;
use crate::digest::Digest;
use crate::dockertools::ConfError;
use crate::image::MANIFEST_MEDIA_TYPE;
use crate::layer::{Compression, LayerError};
use crate::layer_index::{KnownLayer, LayerIndex};
use crate::nix::NixError;
use crate::plan::{ConfigError, ConfigFlags};
use crate::prepare::prepare;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{self, Client, ConnectOptions, Credentials, RegistryError};
use crate::upload::{upload_blobs, LayerReport, UploadOptions};

/// The tag used when neither the destination nor the image names one.
pub const DEFAULT_TAG: &str = "latest";

/// A checked push request: everything the user asked for, validated before any I/O.
#[derive(Clone, Debug)]
pub struct PushRequest {
    pub installable: String,
    pub nix_args: Vec<String>,
    pub destination: Reference,
    pub config: ConfigFlags,
    /// Installables whose top-level directories are linked into `/` (plain packages only).
    pub contents: Vec<String>,
    /// Images (on the destination's registry) whose layers may be reused.
    pub cache_from: Vec<Reference>,
    /// More tags for the same manifest (`--tag`), beside the destination's.
    pub tags: Vec<String>,
    /// Credentials given explicitly (they win over every stored ones).
    pub credentials: Option<Credentials>,
    /// `--created`, when given (plain packages; dockerTools images carry their own).
    pub created: Option<String>,
    /// `--max-layers`, when given (plain packages; dockerTools images carry their own layering).
    pub max_layers: Option<usize>,
    pub compression: Compression,
    pub jobs: usize,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    pub cache: LayerCache,
    /// Rebuild layers that would be skipped, and reuse a blob only if identical.
    pub verify: bool,
    /// Manifest annotations given with `--annotation` (they win over the default ones).
    pub annotations: BTreeMap<String, String>,
    /// Annotate the manifest with the flake's provenance (`org.opencontainers.image.*`).
    pub default_annotations: bool,
}

/// The result of a successful push.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    /// `registry/repository@sha256:...`
    pub pinned: String,
    pub manifest_digest: Digest,
    /// The tags written (none: pushed by digest only).
    pub tags: Vec<String>,
    pub layers: Vec<LayerReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{} sets the image's configuration in Nix: change it there instead of with {}", "this dockerTools image", flags.join(", "))]
    ConfigWithImage { flags: Vec<&'static str> },
    #[error("{}", path.display())]
    Conf {
        path: PathBuf,
        #[source]
        source: ConfError,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    RootFs(#[from] crate::rootfs::RootFsError),
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

impl PushError {
    /// Whether this is the user's request contradicting itself or the image (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, PushError::ConfigWithImage { .. })
    }
}

/// Builds what `request.installable` needs and describes the image it would push, touching no
/// registry (`--dry-run`).
pub async fn dry_run(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<String, PushError> {
    reporter.phase(&format!("building {}", request.installable));
    let prepared = prepare(request, &reporter).await?;
    let tags = target_tags(
        &request.destination,
        &request.tags,
        prepared.image_tag.as_deref(),
    )?;
    let name = format!(
        "{}/{}",
        request.destination.registry(),
        request.destination.repository()
    );
    let names = match (tags.is_empty(), request.destination.digest()) {
        (true, Some(d)) => format!("{name}@{d}"),
        _ => tags
            .iter()
            .map(|t| format!("{name}:{t}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    Ok(format!("{names}\n{}", prepared.plan.describe()))
}

/// Builds `request.installable` and pushes its image.
pub async fn push(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<PushOutcome, PushError> {
    push_sharing(request, reporter, &mut SharedLayers::default()).await
}

/// Layers pushed earlier in one run (`--images`), and the registry they are on.
#[derive(Debug, Default)]
pub struct SharedLayers {
    registry: Option<String>,
    index: LayerIndex,
}

/// Like [`push`], for one image of several pushed in one run: layers in `shared` (pushed
/// earlier in the run, perhaps to another repository of the same registry) are reused (skipped
/// or mounted) rather than built again, and this image's layers are added to it.
pub async fn push_sharing(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
    shared: &mut SharedLayers,
) -> Result<PushOutcome, PushError> {
    // Prepare and connect at once: wrong credentials or an unreachable registry are reported
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
            ca_cert: request.ca_cert.clone(),
            credentials: credentials_for(request, reporter.as_ref()),
            reporter: reporter.clone(),
        },
    );
    let (prepared, client) = tokio::join!(prepare(request, &reporter), connect);
    let prepared = prepared?;
    let client = client?;
    let plan = &prepared.plan;
    let (paths, nar_size) = prepared.closure_size;
    reporter.phase(&format!(
        "{paths} store paths ({} MiB) in {} layers",
        nar_size / (1024 * 1024),
        plan.layers.len()
    ));

    let tags = target_tags(destination, &request.tags, prepared.image_tag.as_deref())?;
    let mut index = learn_layers(
        &client,
        request,
        tags.first().map(String::as_str),
        reporter.as_ref(),
    )
    .await;
    if shared.registry.as_deref() == Some(destination.registry()) {
        index.merge(&shared.index);
    }
    let options = UploadOptions {
        // The plan's own: the media types it names and the blobs must agree.
        compression: plan.compression,
        jobs: request.jobs,
        cache: request.cache.clone(),
        index,
        verify: request.verify,
    };
    let uploaded = upload_blobs(&client, plan, &options, reporter.clone()).await?;
    let digest = uploaded.documents.manifest_digest.clone();
    if let Some(expected) = destination.digest() {
        if *expected != digest {
            return Err(PushError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    // Last, and only now that every blob is in: the manifest, under each tag (or by digest).
    let targets = if tags.is_empty() {
        vec![digest.to_string()]
    } else {
        tags.clone()
    };
    for target in &targets {
        reporter.phase(&format!("writing manifest {digest} as {target}"));
        client
            .put_manifest(
                target,
                MANIFEST_MEDIA_TYPE,
                uploaded.documents.manifest.clone(),
                &digest,
            )
            .await?;
    }
    // `prepared` (and with it the GC roots) lives until the manifest is written.
    drop(prepared);
    if shared.registry.as_deref() != Some(destination.registry()) {
        *shared = SharedLayers {
            registry: Some(destination.registry().to_owned()),
            index: LayerIndex::default(),
        };
    }
    for layer in &uploaded.layers {
        shared.index.add(
            layer.key.clone(),
            KnownLayer {
                layer: CachedLayer {
                    digest: layer.digests.digest.clone(),
                    diff_id: layer.digests.diff_id.clone(),
                    size: layer.digests.size,
                    media_type: request.compression.media_type().to_owned(),
                },
                repository: client.repository().to_owned(),
            },
        );
    }
    Ok(PushOutcome {
        pinned: destination.pinned(&digest),
        manifest_digest: digest,
        tags,
        layers: uploaded.layers,
    })
}

/// The tags to write: the destination's and every `--tag`; if none, the image's own tag (unless
/// the destination names a digest: then none, the image is pushed by digest), else `latest`.
/// An image tag a registry would refuse is an error now, not after every blob is uploaded.
fn target_tags(
    destination: &Reference,
    extra: &[String],
    image_tag: Option<&str>,
) -> Result<Vec<String>, PushError> {
    let mut tags: Vec<String> = destination.tag().map(str::to_owned).into_iter().collect();
    for t in extra {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if !tags.is_empty() || destination.digest().is_some() {
        return Ok(tags);
    }
    match image_tag {
        Some(t) if !crate::reference::valid_tag(t) => Err(PushError::Unsupported(format!(
            "the image's own tag {t:?} is not a valid registry tag: name one in the destination"
        ))),
        t => Ok(vec![t.unwrap_or(DEFAULT_TAG).to_owned()]),
    }
}

/// Reads the manifests that may already name this image's layers: the tag about to be written
/// (the previous version, on a fresh CI runner), then each `--cache-from`. A manifest that cannot
/// be read teaches nothing; it never fails the push.
async fn learn_layers(
    client: &Client,
    request: &PushRequest,
    tag: Option<&str>,
    reporter: &dyn Reporter,
) -> LayerIndex {
    let mut index = LayerIndex::default();
    let mut sources: Vec<(String, String)> = Vec::new();
    if let Some(tag) = tag {
        sources.push((client.repository().to_owned(), tag.to_owned()));
    }
    for r in &request.cache_from {
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => DEFAULT_TAG.to_owned(),
        };
        sources.push((r.repository().to_owned(), reference));
    }
    for (repository, reference) in sources {
        match client.get_manifest(&repository, &reference).await {
            Ok(Some(bytes)) => {
                let n = index.learn(&bytes, &repository);
                if n > 0 {
                    reporter.phase(&format!("{repository}:{reference} names {n} known layers"));
                }
            }
            Ok(None) => {}
            Err(e) => reporter.phase(&format!(
                "not reusing layers of {repository}:{reference}: {e}"
            )),
        }
    }
    index
}

/// Credentials for the destination, the first source that has some: the ones given explicitly
/// (`--creds`, `--username` with `--password-stdin`, `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`),
/// then the stored ones (see [`stored_credentials`]).
fn credentials_for(request: &PushRequest, reporter: &dyn Reporter) -> Option<Credentials> {
    if let Some(c) = &request.credentials {
        return Some(c.clone());
    }
    stored_credentials(request.destination.registry(), reporter)
}

/// Credentials stored for `registry`: Docker's config (entries, then its credential helper),
/// then podman's auth files. A source that cannot be read is reported and skipped: the registry
/// will say if anonymous access is not enough.
pub fn stored_credentials(registry: &str, reporter: &dyn Reporter) -> Option<Credentials> {
    let files = registry::default_config_path()
        .into_iter()
        .chain(registry::podman_auth_paths());
    for path in files {
        match registry::docker_config_credentials(&path, registry) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => {}
            Err(e) => reporter.phase(&format!("ignoring stored credentials: {e}")),
        }
    }
    None
}
