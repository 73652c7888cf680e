//! The orchestrator: prepare the image (Nix) while connecting to the registry, upload every blob,
//! and only then write the manifest under its tags — so a tag never points at an image whose
//! blobs are not all in the registry. A multi-arch push uploads each platform's image (its
//! manifest by digest), then writes the index that names them, under the tags, last.

mod error;
mod local;
mod manifest_format;
mod registry;
mod reuse;
mod sbom;
mod stop;
mod unchanged;
mod upload;

use std::sync::Arc;

pub use error::PushError;
pub use stop::{interrupt, is_interrupted};

use crate::destination::{Destination, LocalTarget};
use crate::image::{ImageIndex, IndexEntry, ManifestFormat};
use crate::known_layers::LearntLayers;
use crate::outcome::PushOutcome;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::prepare::Prepared;
use crate::progress::Reporter;
use crate::request::{target_tags, PushRequest};
use local::write_local;
use registry::push_to_registry;

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
    learnt: LearntLayers,
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

/// Prepares every image of the request in turn (see [`crate::prepare::prepare_all`]).
async fn prepare_all(
    request: &PushRequest,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<Prepared>, PushError> {
    let options = request.prepare_options();
    Ok(crate::prepare::prepare_all(&options, &request.images, reporter).await?)
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
    Ok(target_tags(tag, by_digest, &request.tags, image_tag)?)
}

/// The OCI index naming each platform's image (`documents[i]` is `plans[i]`'s), as bytes: the
/// same for a registry and an OCI layout.
fn image_index(
    plans: &[&ImagePlan],
    documents: &[ImageDocuments],
    format: ManifestFormat,
) -> Vec<u8> {
    ImageIndex {
        format,
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
