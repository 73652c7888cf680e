//! The orchestrator: prepare the image (Nix) while connecting to the registry, upload every blob,
//! and only then write the manifest under its tags — so a tag never points at an image whose
//! blobs are not all in the registry. A multi-arch push uploads each platform's image (its
//! manifest by digest), then writes the index that names them, under the tags, last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::{CachedLayer, LayerCache};
use crate::credential_store::{CredentialStore, OsKeyring, StoreError};
use crate::destination::Destination;
use crate::digest::Digest;
use crate::dockertools::ConfError;
use crate::image::{ImageIndex, IndexEntry, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::layer::{Compression, LayerError};
use crate::layer_index::{KnownLayer, LayerIndex};
use crate::local::{write_image, write_images, LocalTarget, WrittenImage};
use crate::nix::{NixError, PlatformSpec};
use crate::outcome::{ImageOutcome, PushOutcome};
use crate::plan::{ConfigError, ConfigFlags, ImageDocuments, ImagePlan};
use crate::prepare::{prepare, FlakeProvenance, Prepared};
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{self, Client, ConnectOptions, Credentials, RegistryError};
use crate::upload::{upload_blobs, UploadMode, UploadOptions};

/// The tag used when neither the destination nor the image names one.
pub const DEFAULT_TAG: &str = "latest";

/// One image to build: an installable, and the platform `--platform` says it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSource {
    pub installable: String,
    pub platform: Option<PlatformSpec>,
}

/// A checked push request: everything the user asked for, validated before any I/O.
#[derive(Clone, Debug)]
pub struct PushRequest {
    /// The image to push, or one per platform (`--platform`: pushed under one index).
    pub images: Vec<ImageSource>,
    pub nix_args: Vec<String>,
    pub destination: Destination,
    pub config: ConfigFlags,
    /// Installables whose top-level directories are linked into `/` (plain packages only).
    pub contents: Vec<String>,
    /// Images (on the destination's registry) whose layers may be reused.
    pub cache_from: Vec<Reference>,
    /// Repositories (on the destination's registry) known blobs may be mounted from.
    pub mount_from: Vec<String>,
    /// How blobs go up (`--upload`).
    pub upload: UploadMode,
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

impl PushRequest {
    fn is_multi_arch(&self) -> bool {
        self.images.len() > 1 || self.images.iter().any(|i| i.platform.is_some())
    }

    fn installables(&self) -> String {
        self.images
            .iter()
            .map(|i| i.installable.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
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
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    #[error("the image's manifest digest is {actual}, not the {expected} the destination names")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("layer {layer}: its blob was announced as {expected} but is {actual}: the store path changed while it was read, or the layer cache is damaged")]
    KnownDigestWrong {
        layer: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("{installable} is an image for {actual}, not for the {expected} --platform names")]
    PlatformMismatch {
        installable: String,
        expected: String,
        actual: String,
    },
    #[error("--platform {first} and --platform {second} build images for the same platform ({platform})")]
    SamePlatform {
        first: String,
        second: String,
        platform: String,
    },
}

impl PushError {
    /// Whether this is the user's request contradicting itself or the image (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            PushError::ConfigWithImage { .. }
                | PushError::PlatformMismatch { .. }
                | PushError::SamePlatform { .. }
        )
    }
}

/// Builds what the request needs and describes the images it would push, touching no registry
/// (`--dry-run`).
pub async fn dry_run(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<String, PushError> {
    reporter.phase(&format!("building {}", request.installables()));
    let prepared = prepare_all(request, &reporter).await?;
    let tags = tags_for(request, &prepared)?;
    let names = match &request.destination {
        Destination::Registry(r) => {
            let name = format!("{}/{}", r.registry(), r.repository());
            match (tags.is_empty(), r.digest()) {
                (true, Some(d)) => format!("{name}@{d}"),
                _ => tags
                    .iter()
                    .map(|t| format!("{name}:{t}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            }
        }
        local => format!("{local} (tags: {})", tags.join(" ")),
    };
    let mut out = names;
    out.push('\n');
    for p in &prepared {
        out.push_str(&p.plan.describe());
    }
    Ok(out)
}

/// Builds the request's images and pushes them.
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

/// Like [`push`], for one request of several pushed in one run: layers in `shared` (pushed
/// earlier in the run, perhaps to another repository of the same registry) are reused (skipped
/// or mounted) rather than built again, and this push's layers are added to it.
pub async fn push_sharing(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
    shared: &mut SharedLayers,
) -> Result<PushOutcome, PushError> {
    match &request.destination {
        Destination::Registry(destination) => {
            push_to_registry(request, destination, reporter, shared).await
        }
        Destination::Local(target) => write_local(request, target, reporter).await,
    }
}

/// Prepares every image of the request in turn, refusing two for one platform.
async fn prepare_all(
    request: &PushRequest,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<Prepared>, PushError> {
    let mut prepared: Vec<Prepared> = Vec::with_capacity(request.images.len());
    let mut provenance = FlakeProvenance::default();
    for image in &request.images {
        let p = prepare(request, image, reporter, &mut provenance).await?;
        if let Some(i) = prepared
            .iter()
            .position(|q| q.plan.platform == p.plan.platform)
        {
            return Err(PushError::SamePlatform {
                first: request.images[i].installable.clone(),
                second: image.installable.clone(),
                platform: PlatformSpec::of(&p.plan.platform).to_string(),
            });
        }
        prepared.push(p);
    }
    Ok(prepared)
}

/// The tags the request writes: see [`target_tags`]. A multi-arch image has no one image tag.
fn tags_for(request: &PushRequest, prepared: &[Prepared]) -> Result<Vec<String>, PushError> {
    let image_tag = match prepared {
        [one] if !request.is_multi_arch() => one.image_tag.as_deref(),
        _ => None,
    };
    let (tag, by_digest) = match &request.destination {
        Destination::Registry(r) => (r.tag(), r.digest().is_some()),
        Destination::Local(LocalTarget::OciLayout { tag, .. }) => (tag.as_deref(), false),
        Destination::Local(LocalTarget::DockerArchive { .. }) => (None, false),
    };
    target_tags(tag, by_digest, &request.tags, image_tag)
}

async fn push_to_registry(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
    shared: &mut SharedLayers,
) -> Result<PushOutcome, PushError> {
    // Prepare and connect at once: wrong credentials or an unreachable registry are reported
    // without waiting for a long build, and a build error still comes first.
    reporter.phase(&format!(
        "building {} and connecting to {}",
        request.installables(),
        destination.registry()
    ));
    let connect = async {
        let credentials = credentials_for(request, destination, reporter.clone()).await;
        Client::connect(
            destination,
            ConnectOptions {
                insecure: request.insecure,
                ca_cert: request.ca_cert.clone(),
                credentials,
                reporter: reporter.clone(),
                access: registry::Access::PullPush,
            },
        )
        .await
    };
    let (prepared, client) = tokio::join!(prepare_all(request, &reporter), connect);
    let prepared = prepared?;
    let client = client?;
    for p in &prepared {
        let (paths, nar_size) = p.closure_size;
        reporter.phase(&format!(
            "{}: {paths} store paths ({} MiB) in {} layers",
            PlatformSpec::of(&p.plan.platform),
            nar_size / (1024 * 1024),
            p.plan.layers.len()
        ));
    }

    let tags = tags_for(request, &prepared)?;
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
    let multi_arch = request.is_multi_arch();
    let mut images = Vec::with_capacity(prepared.len());
    let mut documents_of = Vec::with_capacity(prepared.len());
    let mut single = None;
    for (source, p) in request.images.iter().zip(&prepared) {
        let plan = &p.plan;
        let options = UploadOptions {
            // The plan's own: the media types it names and the blobs must agree.
            compression: plan.compression,
            jobs: request.jobs,
            cache: request.cache.clone(),
            index: index.clone(),
            verify: request.verify,
            mount_from: request.mount_from.clone(),
            upload: request.upload,
        };
        let uploaded = upload_blobs(&client, plan, &options, reporter.clone()).await?;
        let documents = uploaded.documents;
        if multi_arch {
            // By digest: untagged until the index that names it is written.
            let digest = &documents.manifest_digest;
            reporter.phase(&format!(
                "writing the {} manifest {digest}",
                PlatformSpec::of(&plan.platform)
            ));
            client
                .put_manifest(
                    &digest.to_string(),
                    MANIFEST_MEDIA_TYPE,
                    documents.manifest.clone(),
                    digest,
                )
                .await?;
        }
        // Layers of one platform's image may serve the next (a shared customisation layer).
        for layer in &uploaded.layers {
            index.add(
                layer.key.clone(),
                known_layer(layer, plan.compression, client.repository()),
            );
        }
        documents_of.push(documents.clone());
        images.push(ImageOutcome {
            installable: source.installable.clone(),
            platform: PlatformSpec::of(&plan.platform).to_string(),
            manifest_digest: documents.manifest_digest.clone(),
            config_digest: documents.config_digest.clone(),
            layers: uploaded.layers,
        });
        single = Some(documents.manifest);
    }
    if !multi_arch {
        // One image: its manifest is what the tags name.
        let manifest = single.expect("a request has at least one image");
        return finish_registry_push(
            request,
            destination,
            &client,
            (manifest, MANIFEST_MEDIA_TYPE),
            tags,
            images,
            None,
            prepared,
            shared,
            &reporter,
        )
        .await;
    }
    let plans: Vec<&ImagePlan> = prepared.iter().map(|p| &p.plan).collect();
    let index_bytes = Bytes::from(image_index(&plans, &documents_of));
    let index_digest = Digest::of(&index_bytes);
    finish_registry_push(
        request,
        destination,
        &client,
        (index_bytes, INDEX_MEDIA_TYPE),
        tags,
        images,
        Some(index_digest),
        prepared,
        shared,
        &reporter,
    )
    .await
}

/// The last step of a registry push, once every blob (and each platform's manifest) is in:
/// the top manifest or index, under each tag (or by digest).
#[allow(clippy::too_many_arguments)]
async fn finish_registry_push(
    request: &PushRequest,
    destination: &Reference,
    client: &Client,
    (top, media_type): (Bytes, &'static str),
    tags: Vec<String>,
    images: Vec<ImageOutcome>,
    index_digest: Option<Digest>,
    prepared: Vec<Prepared>,
    shared: &mut SharedLayers,
    reporter: &Arc<dyn Reporter>,
) -> Result<PushOutcome, PushError> {
    let digest = Digest::of(&top);
    if let Some(expected) = destination.digest() {
        if *expected != digest {
            return Err(PushError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    let targets = if tags.is_empty() {
        vec![digest.to_string()]
    } else {
        tags.clone()
    };
    for target in &targets {
        reporter.phase(&format!("writing {digest} as {target}"));
        client
            .put_manifest(target, media_type, top.clone(), &digest)
            .await?;
    }
    // `prepared` (and with it the GC roots) lives until the tags are written.
    drop(prepared);
    if shared.registry.as_deref() != Some(destination.registry()) {
        *shared = SharedLayers {
            registry: Some(destination.registry().to_owned()),
            index: LayerIndex::default(),
        };
    }
    for image in &images {
        for layer in &image.layers {
            shared.index.add(
                layer.key.clone(),
                known_layer(layer, request.compression, client.repository()),
            );
        }
    }
    Ok(PushOutcome {
        destination: destination.to_string(),
        reference: destination.pinned(&digest),
        digest,
        tags,
        to_stdout: false,
        images,
        index_digest,
    })
}

/// The OCI index naming each platform's image (`documents[i]` is `plans[i]`'s), as bytes: the
/// same for a registry and an OCI layout.
fn image_index(plans: &[&ImagePlan], documents: &[ImageDocuments]) -> Vec<u8> {
    ImageIndex {
        manifests: plans
            .iter()
            .zip(documents)
            .map(|(plan, d)| IndexEntry {
                digest: d.manifest_digest.clone(),
                size: d.manifest.len() as u64,
                platform: plan.platform.clone(),
            })
            .collect(),
        // The provenance is the flake's, the same for every platform: the first image's.
        annotations: plans
            .first()
            .map(|p| p.annotations.clone())
            .unwrap_or_default(),
    }
    .to_bytes()
}

fn known_layer(
    layer: &crate::upload::LayerReport,
    compression: Compression,
    repository: &str,
) -> KnownLayer {
    KnownLayer {
        layer: CachedLayer {
            digest: layer.digests.digest.clone(),
            diff_id: layer.digests.diff_id.clone(),
            size: layer.digests.size,
            media_type: compression.media_type().to_owned(),
        },
        repository: repository.to_owned(),
    }
}

/// Writes the image to a local target (an OCI layout or a docker-archive).
async fn write_local(
    request: &PushRequest,
    target: &LocalTarget,
    reporter: Arc<dyn Reporter>,
) -> Result<PushOutcome, PushError> {
    reporter.phase(&format!("building {}", request.installables()));
    let prepared = prepare_all(request, &reporter).await?;
    let tags = tags_for(request, &prepared)?;
    let target = match target {
        LocalTarget::DockerArchive { path, name: None } => LocalTarget::DockerArchive {
            path: path.clone(),
            name: Some(default_archive_name(&request.images[0].installable)),
        },
        other => other.clone(),
    };
    let plans: Vec<&ImagePlan> = prepared.iter().map(|p| &p.plan).collect();
    let (written, index_digest) = if request.is_multi_arch() {
        let index = |w: &[WrittenImage]| {
            let documents: Vec<ImageDocuments> = w.iter().map(|w| w.documents.clone()).collect();
            image_index(&plans, &documents)
        };
        let (written, digest) = write_images(
            &plans,
            index,
            &target,
            &tags,
            request.jobs,
            reporter.clone(),
        )
        .await?;
        (written, Some(digest))
    } else {
        let written = write_image(plans[0], &target, &tags, request.jobs, reporter.clone()).await?;
        (vec![written], None)
    };
    let digest = index_digest
        .clone()
        .unwrap_or_else(|| written[0].documents.manifest_digest.clone());
    let destination = Destination::Local(target.clone());
    let place = match &target {
        LocalTarget::OciLayout { dir, .. } => format!("oci:{}", dir.display()),
        LocalTarget::DockerArchive { path, .. } => format!(
            "docker-archive:{}",
            path.as_ref()
                .map_or("-".to_owned(), |p| p.display().to_string())
        ),
    };
    Ok(PushOutcome {
        destination: destination.to_string(),
        reference: format!("{place}@{digest}"),
        digest: digest.clone(),
        tags,
        to_stdout: destination.is_stdout(),
        images: request
            .images
            .iter()
            .zip(&plans)
            .zip(written)
            .map(|((source, plan), w)| ImageOutcome {
                installable: source.installable.clone(),
                platform: PlatformSpec::of(&plan.platform).to_string(),
                manifest_digest: w.documents.manifest_digest,
                config_digest: w.documents.config_digest,
                layers: w.layers,
            })
            .collect(),
        index_digest,
    })
}

/// The name a docker-archive gives its image when none is asked for: `localhost/` and the
/// installable's attribute (or store path) name, as podman names local images.
fn default_archive_name(installable: &str) -> String {
    let base = match installable.rsplit_once('#') {
        Some((_, attr)) => attr.rsplit('.').next().unwrap_or(attr),
        None => installable
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(installable),
    };
    // A store path name loses its hash.
    let base = match base.split_once('-') {
        Some((hash, rest)) if hash.len() == 32 => rest,
        _ => base,
    };
    let name: String = base
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("localhost/{}", if name.is_empty() { "image" } else { name })
}

/// The tags to write: the destination's and every `--tag`; if none, the image's own tag (unless
/// the destination names a digest: then none, the image is pushed by digest), else `latest`.
/// An image tag a registry would refuse is an error now, not after every blob is uploaded.
fn target_tags(
    tag: Option<&str>,
    by_digest: bool,
    extra: &[String],
    image_tag: Option<&str>,
) -> Result<Vec<String>, PushError> {
    let mut tags: Vec<String> = tag.map(str::to_owned).into_iter().collect();
    for t in extra {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if !tags.is_empty() || by_digest {
        return Ok(tags);
    }
    match image_tag {
        Some(t) if !crate::reference::valid_tag(t) => Err(PushError::Unsupported(format!(
            "the image's own tag {t:?} is not a valid registry tag: name one in the destination"
        ))),
        t => Ok(vec![t.unwrap_or(DEFAULT_TAG).to_owned()]),
    }
}

/// Most manifests of an index read to learn their layers.
const MAX_LEARNED_MANIFESTS: usize = 16;

/// Reads the manifests that may already name this image's layers: the tag about to be written
/// (the previous version, on a fresh CI runner; each platform's manifest when it is an index),
/// then each `--cache-from`. A manifest that cannot be read teaches nothing; it never fails the
/// push.
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
    let mut read = 0;
    while let Some((repository, reference)) = (!sources.is_empty()).then(|| sources.remove(0)) {
        match client.get_manifest(&repository, &reference).await {
            Ok(Some(bytes)) => {
                read += 1;
                let n = index.learn(&bytes, &repository);
                if n > 0 {
                    reporter.phase(&format!("{repository}:{reference} names {n} known layers"));
                }
                for child in index_children(&bytes) {
                    if read + sources.len() < MAX_LEARNED_MANIFESTS {
                        sources.push((repository.clone(), child));
                    }
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

/// The manifest digests an image index names (none for anything else).
fn index_children(bytes: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: Digest,
    }
    serde_json::from_slice::<Index>(bytes)
        .map(|i| {
            i.manifests
                .into_iter()
                .map(|m| m.digest.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Credentials for the destination, the first source that has some: the ones given explicitly
/// (`--creds`, `--username` with `--password-stdin`, `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`),
/// then the stored ones (see [`stored_credentials`]).
async fn credentials_for(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
) -> Option<Credentials> {
    let explicit = request.credentials.clone();
    let registry = destination.registry().to_owned();
    // The keyring (D-Bus) and credential helpers (a child process) block: off the async
    // threads, so the build started beside this goes on meanwhile.
    tokio::task::spawn_blocking(move || {
        let found = first_credentials(
            explicit.as_ref(),
            OsKeyring::shared(),
            stored_files(),
            &registry,
            reporter.as_ref(),
        );
        if found.is_none() {
            reporter.detail(&format!(
                "credentials: none stored for {registry}; anonymous"
            ));
        }
        found
    })
    .await
    .unwrap_or(None)
}

/// Credentials stored for `registry`: the OS keyring (`nixpush login`), then Docker's config
/// (entries, then its credential helper), then podman's auth files. A source that cannot be
/// read is reported and skipped (a machine without a keyring silently): the registry will say
/// if anonymous access is not enough.
pub fn stored_credentials(registry: &str, reporter: &dyn Reporter) -> Option<Credentials> {
    first_credentials(
        None,
        OsKeyring::shared(),
        stored_files(),
        registry,
        reporter,
    )
}

/// Docker's config, then podman's auth files.
fn stored_files() -> impl Iterator<Item = PathBuf> {
    registry::default_config_path()
        .into_iter()
        .chain(registry::podman_auth_paths())
}

/// The first credentials of: `explicit`, the `keyring`'s entry for `registry`, the
/// Docker-format auth `files` in order.
pub(crate) fn first_credentials(
    explicit: Option<&Credentials>,
    keyring: &dyn CredentialStore,
    files: impl IntoIterator<Item = PathBuf>,
    registry: &str,
    reporter: &dyn Reporter,
) -> Option<Credentials> {
    if let Some(c) = explicit {
        reporter.detail("credentials: given on the command line or in NIXPUSH_USERNAME");
        return Some(c.clone());
    }
    match keyring.get(registry) {
        Ok(Some(c)) => {
            reporter.detail(&format!(
                "credentials for {registry}: the keyring (user {})",
                c.username
            ));
            return Some(c);
        }
        Ok(None) => {}
        Err(e @ StoreError::NoService(_)) => reporter.detail(&format!("credentials: {e}")),
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            reporter.phase(&format!("ignoring the keyring: {e}{cause}"));
        }
    }
    for path in files {
        match registry::docker_config_credentials(&path, registry) {
            Ok(Some(c)) => {
                reporter.detail(&format!(
                    "credentials for {registry}: {} (user {})",
                    path.display(),
                    c.username
                ));
                return Some(c);
            }
            Ok(None) => {}
            Err(e) => reporter.phase(&format!("ignoring stored credentials: {e}")),
        }
    }
    None
}
