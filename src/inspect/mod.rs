//! `nixpush inspect REF`: what an image in a registry is made of, read with pull access only.
//! The manifest or index, each layer's digest and size, the store paths behind each layer when
//! the image's history names them (nixpush and nixpkgs' dockerTools both write them), and a
//! summary of the config. It works on any image: what an image does not say is left out.
//!
//! Everything read is checked against its digest: the manifest against the one asked for (or
//! the index entry that named it), the config blob against the manifest's descriptor.

mod referrers;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use serde::Serialize;

pub use crate::image::read::{parse_store_paths_comment, PlatformDoc};
use crate::image::read::{ConfigSummary, DescriptorDoc, Document, ImageManifest, IndexDoc};

use crate::digest::Digest;
use crate::nix::PlatformSpec;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{Access, Client, Credentials, RegistryError};

/// Largest config blob read. Configs of images with long histories run to some hundreds of KiB;
/// this is far past any real one, and bounds what a broken registry can make us hold.
const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// A checked `inspect` request.
#[derive(Clone, Debug)]
pub struct InspectRequest {
    pub reference: Reference,
    /// For an index: also inspect the image for this platform.
    pub platform: Option<PlatformSpec>,
    /// Credentials given explicitly (they win over the stored ones).
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    /// Read the attached SBOM (`inspect --sbom`).
    pub sbom: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::DockerConfigError),
    #[error("no SBOM is attached to {0}")]
    NoSbom(String),
    #[error("{0} is an index: name the image whose SBOM to print with --platform")]
    SbomOfIndex(String),
    #[error("no manifest at {0} (no such tag, digest or repository)")]
    NotFound(String),
    #[error("the manifest at {reference} cannot be read: {reason}")]
    Manifest { reference: String, reason: String },
    #[error("the registry sent a manifest of digest {actual} for {reference}")]
    WrongManifest { reference: String, actual: Digest },
    #[error("{reference} is an index with no image for {wanted}; it has {available}")]
    NoSuchPlatform {
        reference: String,
        wanted: PlatformSpec,
        available: String,
    },
    #[error("the image at {reference} is for {actual}, not {wanted}")]
    OtherPlatform {
        reference: String,
        actual: PlatformDoc,
        wanted: PlatformSpec,
    },
    #[error("the index entry {reference} is itself an index: nested indexes are not followed")]
    NestedIndex { reference: String },
    #[error("the config blob {digest} of {reference} is not in the registry")]
    MissingConfig { reference: String, digest: Digest },
    #[error("the config blob {digest} of {reference} cannot be read: {reason}")]
    Config {
        reference: String,
        digest: Digest,
        reason: String,
    },
}

/// What `inspect` found; serialised as is for `--json` (the shape is in docs/usage.md).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// `registry/repository@sha256:...` of the manifest or index read.
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    /// When the reference names an index (or Docker manifest list).
    pub index: Option<IndexSummary>,
    /// When the reference names an image, or an index and `--platform` picked one of its images.
    pub image: Option<ImageSummary>,
    /// What is attached to the image (or to the index, when no image was picked).
    pub referrers: Vec<referrers::Referrer>,
    /// The attached SBOM's bytes (`inspect --sbom`).
    #[serde(skip)]
    pub sbom: Option<bytes::Bytes>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexSummary {
    pub manifests: Vec<IndexEntry>,
    pub annotations: BTreeMap<String, String>,
}

/// One manifest of an index.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub platform: Option<PlatformDoc>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// `registry/repository@sha256:...` of this image's manifest.
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    /// From the config (`os`, `architecture`, `variant`).
    pub platform: Option<PlatformDoc>,
    pub created: Option<String>,
    pub config_digest: Digest,
    pub config_media_type: String,
    /// The run settings present in the config: Entrypoint, Cmd, Env, WorkingDir, User,
    /// ExposedPorts, Labels, as the config writes them. Empty when the config is not an image
    /// config (an artifact), which is then not read.
    pub config: BTreeMap<String, serde_json::Value>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<LayerSummary>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    pub digest: Digest,
    /// Compressed size in bytes: what the registry stores.
    pub size: u64,
    pub media_type: String,
    /// From the config's `rootfs.diff_ids`, when it has one per layer.
    pub diff_id: Option<Digest>,
    /// The store paths the layer's history entry names; `None` when it names none (an image
    /// not made by nixpush or dockerTools), empty for a layer of no store path.
    pub store_paths: Option<Vec<String>>,
    /// For a layer of a dockerTools `fromImage` base: its member in the base image archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_image_member: Option<String>,
    /// The layer descriptor's annotations (nixpush's `dev.nixpush.layer.key` and `.diff-id`).
    pub annotations: BTreeMap<String, String>,
}

impl Inspection {
    /// The human-readable description (what `inspect` prints without `--json`).
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// One JSON document, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an inspection always serialises")
    }
}

/// Reads the image (or index) `request.reference` names.
///
/// Boxed, as `push` is: the binary awaits it (docs/benchmarks.md).
pub fn inspect(
    request: &InspectRequest,
    reporter: Arc<dyn Reporter>,
) -> LocalBoxFuture<'_, Result<Inspection, InspectError>> {
    Box::pin(inspect_unboxed(request, reporter))
}

async fn inspect_unboxed(
    request: &InspectRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<Inspection, InspectError> {
    let reference = &request.reference;
    let reach = crate::credentials::Reach {
        insecure: request.insecure,
        ca_cert: request.ca_cert.clone(),
        retry: Default::default(),
    };
    let client: Client = crate::credentials::connect::<InspectError>(
        reference,
        request.credentials.as_ref(),
        Access::Pull,
        &reach,
        &reporter,
    )
    .await?;
    // A digest wins over a tag; neither means `latest`, as `docker pull` has it.
    let target = reference.manifest_target();
    let shown = match (reference.digest(), reference.tag()) {
        (None, None) => format!("{reference}:{target}"),
        _ => reference.to_string(),
    };
    let (digest, document) = fetch(&client, &target, reference.digest(), &shown).await?;
    let pinned = reference.pinned(&digest);
    let mut inspection = match document {
        Document::Image(manifest) => {
            let image = inspect_image(&client, reference, digest.clone(), manifest).await?;
            if let (Some(wanted), Some(actual)) = (&request.platform, &image.platform) {
                if !actual.matches(wanted) {
                    return Err(InspectError::OtherPlatform {
                        reference: shown,
                        actual: actual.clone(),
                        wanted: wanted.clone(),
                    });
                }
            }
            Inspection {
                reference: pinned,
                digest,
                media_type: image.media_type.clone(),
                index: None,
                image: Some(image),
                referrers: Vec::new(),
                sbom: None,
            }
        }
        Document::Index(index) => {
            let image = match &request.platform {
                None => None,
                Some(wanted) => {
                    let entry =
                        index
                            .select(wanted)
                            .ok_or_else(|| InspectError::NoSuchPlatform {
                                reference: shown.clone(),
                                wanted: wanted.clone(),
                                available: index.platforms().join(", "),
                            })?;
                    let entry_ref = reference.pinned(&entry.digest);
                    let (_, document) = fetch(
                        &client,
                        &entry.digest.to_string(),
                        Some(&entry.digest),
                        &entry_ref,
                    )
                    .await?;
                    let Document::Image(manifest) = document else {
                        return Err(InspectError::NestedIndex {
                            reference: entry_ref,
                        });
                    };
                    Some(inspect_image(&client, reference, entry.digest.clone(), manifest).await?)
                }
            };
            Inspection {
                reference: pinned,
                digest,
                media_type: index.media_type.clone(),
                index: Some(index_summary(index)),
                image,
                referrers: Vec::new(),
                sbom: None,
            }
        }
    };
    // What is attached to the image shown (a platform's, when one was picked).
    let (subject, subject_ref) = match &inspection.image {
        Some(image) => (image.digest.clone(), reference.pinned(&image.digest)),
        None => (inspection.digest.clone(), inspection.reference.clone()),
    };
    inspection.referrers = referrers::referrers_of(&client, &subject).await?;
    if request.sbom {
        if inspection.image.is_none() {
            return Err(InspectError::SbomOfIndex(subject_ref));
        }
        inspection.sbom = Some(referrers::attached_sbom(&client, &subject, &subject_ref).await?);
    }
    Ok(inspection)
}

/// Gets and reads the manifest at `target` (a tag or digest); `expected` is the digest it must
/// have, when one is known. `shown` names it in errors.
async fn fetch(
    client: &Client,
    target: &str,
    expected: Option<&Digest>,
    shown: &str,
) -> Result<(Digest, Document), InspectError> {
    let bytes = client
        .get_manifest(client.repository(), target)
        .await?
        .ok_or_else(|| InspectError::NotFound(shown.to_owned()))?;
    let digest = Digest::of(&bytes);
    if expected.is_some_and(|e| *e != digest) {
        return Err(InspectError::WrongManifest {
            reference: shown.to_owned(),
            actual: digest,
        });
    }
    let document = Document::parse(&bytes).map_err(|reason| InspectError::Manifest {
        reference: shown.to_owned(),
        reason,
    })?;
    Ok((digest, document))
}

/// An image manifest with its config read (when it is an image config) and each layer's store
/// paths found.
async fn inspect_image(
    client: &Client,
    reference: &Reference,
    digest: Digest,
    manifest: ImageManifest,
) -> Result<ImageSummary, InspectError> {
    let pinned = reference.pinned(&digest);
    let config_digest = manifest.config.digest.clone();
    let config = match manifest.config.media_type.as_str() {
        crate::image::media_types::OCI_CONFIG | crate::image::media_types::DOCKER_CONFIG => {
            let bytes = client
                .get_blob(&config_digest, MAX_CONFIG_BYTES)
                .await?
                .ok_or_else(|| InspectError::MissingConfig {
                    reference: pinned.clone(),
                    digest: config_digest.clone(),
                })?;
            ConfigSummary::parse(&bytes).map_err(|reason| InspectError::Config {
                reference: pinned.clone(),
                digest: config_digest.clone(),
                reason,
            })?
        }
        // An artifact's config says nothing inspect shows.
        _ => ConfigSummary::default(),
    };
    let count = manifest.layers.len();
    let layers = manifest
        .layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| LayerSummary {
            diff_id: config.diff_id(i, count),
            store_paths: config.store_paths(i, count),
            base_image_member: config.base_member(i, count),
            digest: l.digest,
            size: l.size,
            media_type: l.media_type,
            annotations: l.annotations,
        })
        .collect();
    Ok(ImageSummary {
        reference: pinned,
        digest,
        media_type: manifest.media_type,
        platform: config.platform,
        created: config.created,
        config_digest,
        config_media_type: manifest.config.media_type,
        config: config.run,
        annotations: manifest.annotations,
        layers,
    })
}

fn index_summary(index: IndexDoc) -> IndexSummary {
    IndexSummary {
        manifests: index
            .manifests
            .into_iter()
            .map(|m: DescriptorDoc| IndexEntry {
                digest: m.digest,
                media_type: m.media_type,
                size: m.size,
                platform: m.platform,
                annotations: m.annotations,
            })
            .collect(),
        annotations: index.annotations,
    }
}
