//! The orchestrator: prepare the image (Nix) while connecting to the registry, upload every blob,
//! and only then write the manifest under its tags — so a tag never points at an image whose
//! blobs are not all in the registry. A multi-arch push uploads each platform's image (its
//! manifest by digest), then writes the index that names them, under the tags, last.

mod attachments;
mod attestations;
mod base;
mod copy;
mod copy_attachments;
mod copying;
mod documents;
mod error;
mod fallback_tag;
mod finish;
mod layout_signing;
mod learn;
mod local;
mod manifest_format;
mod mirrors;
mod rebase;
mod referrer;
mod registry;
mod registry_push;
mod remote;
mod reuse;
mod sbom;
mod signatures;
mod unchanged;
mod upload;
mod upload_options;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

pub use copy::{copy, CopyOutcome, CopyRequest};
pub use copying::{CopyCounts, CopyError};
pub use error::PushError;
pub use mirrors::push_mirrors;
pub use rebase::{rebase, RebaseError, RebaseOutcome, RebaseRequest};

use crate::destination::{Destination, LocalTarget};
use crate::known_layers::LearntLayers;
use crate::outcome::PushOutcome;
use crate::prepare::Prepared;
use crate::progress::{Phase, Reporter};
use crate::request::{target_tags, PushRequest};
use crate::stop::Stop;
use local::write_local;
use registry::push_to_registry;

/// Builds what the request needs and describes the images it would push, touching no registry
/// (`--dry-run`).
///
/// Boxed: an `async fn`'s future is compiled again in every crate that awaits it, so the
/// binary and each test binary would compile the whole push once more (docs/benchmarks.md).
pub fn dry_run(
    request: &PushRequest,
    reporter: Arc<dyn Reporter>,
) -> LocalBoxFuture<'_, Result<String, PushError>> {
    Box::pin(async move {
        reporter.phase(&Phase::Building {
            installables: request.installables(),
        });
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
        if let Some(base) = &request.base {
            // A dry run reaches no registry: the base is read when the image is pushed.
            out.push_str(&format!("on base {base} (read when pushing)\n"));
        }
        for p in &prepared {
            out.push_str(&p.plan.describe());
        }
        Ok(out)
    })
}

/// Builds the request's images and pushes them; `stop` ends the push early (Ctrl-C).
///
/// Boxed: an `async fn`'s future is compiled again in every crate that awaits it, so the
/// binary and each test binary would compile the whole push once more (docs/benchmarks.md).
pub fn push<'a>(
    request: &'a PushRequest,
    reporter: Arc<dyn Reporter>,
    stop: &'a Stop,
) -> LocalBoxFuture<'a, Result<PushOutcome, PushError>> {
    Box::pin(
        async move { push_sharing(request, reporter, &mut SharedLayers::default(), stop).await },
    )
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
///
/// Boxed: an `async fn`'s future is compiled again in every crate that awaits it, so the
/// binary and each test binary would compile the whole push once more (docs/benchmarks.md).
pub fn push_sharing<'a>(
    request: &'a PushRequest,
    reporter: Arc<dyn Reporter>,
    shared: &'a mut SharedLayers,
    stop: &'a Stop,
) -> LocalBoxFuture<'a, Result<PushOutcome, PushError>> {
    Box::pin(async move {
        match &request.destination {
            Destination::Registry(destination) => {
                push_to_registry(request, destination, reporter, shared, stop).await
            }
            Destination::Local(target) => write_local(request, target, reporter, stop).await,
        }
    })
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
