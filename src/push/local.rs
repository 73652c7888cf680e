//! A push to a local target: the same images, written to an OCI layout or a docker-archive.

use std::sync::Arc;

use super::documents::image_index;
use super::{prepare_all, tags_for, PushError};
use crate::destination::{
    write_image, write_images, Destination, LayerWork, LocalTarget, WrittenImage,
};
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, PushOutcome};
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{Phase, Reporter};
use crate::request::PushRequest;
use crate::stop::Stop;

/// Writes the image to a local target (an OCI layout or a docker-archive).
pub(super) async fn write_local(
    request: &PushRequest,
    target: &LocalTarget,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<PushOutcome, PushError> {
    reporter.phase(&Phase::Building {
        installables: request.installables(),
    });
    let prepared = prepare_all(request, &reporter).await?;
    let tags = tags_for(request, &prepared)?;
    let target = match target {
        LocalTarget::DockerArchive { path, name: None } => LocalTarget::DockerArchive {
            path: path.clone(),
            // The name the image gives itself (dockerTools' `repo_tag`, an archive's
            // `RepoTags`), else one made from the installable.
            name: Some(
                prepared[0]
                    .image_name
                    .clone()
                    .unwrap_or_else(|| default_archive_name(&request.images[0].installable)),
            ),
        },
        other => other.clone(),
    };
    let plans: Vec<&ImagePlan> = prepared.iter().map(|p| &p.plan).collect();
    let work = LayerWork {
        jobs: request.jobs,
        reporter: reporter.clone(),
        stop: stop.clone(),
    };
    let (written, index_digest) = if request.is_multi_arch() {
        let index = |w: &[WrittenImage]| {
            let documents: Vec<ImageDocuments> = w.iter().map(|w| w.documents.clone()).collect();
            image_index(&plans, &documents, Default::default())
        };
        let (written, digest) = write_images(&plans, index, &target, &tags, &work).await?;
        (written, Some(digest))
    } else {
        let written = write_image(plans[0], &target, &tags, &work).await?;
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
    let mut sbom_digests = vec![None; written.len()];
    if let (Some(format), LocalTarget::OciLayout { dir, .. }) = (request.sbom, &target) {
        for ((p, w), slot) in prepared.iter().zip(&written).zip(&mut sbom_digests) {
            *slot = Some(super::sbom::attach_to_layout(
                dir,
                p,
                &w.documents,
                format,
                reporter.as_ref(),
            )?);
        }
    }
    let mut images: Vec<ImageOutcome> = request
        .images
        .iter()
        .zip(&plans)
        .zip(written)
        .zip(sbom_digests)
        .map(|(((source, plan), w), sbom_digest)| ImageOutcome {
            installable: source.installable.clone(),
            platform: PlatformSpec::of(&plan.platform).to_string(),
            manifest_digest: w.documents.manifest_digest,
            config_digest: w.documents.config_digest,
            sbom_digest,
            provenance: None,
            base: None,
            layers: w.layers,
        })
        .collect();
    let mut signatures = Vec::new();
    if let LocalTarget::OciLayout { dir, .. } = &target {
        let identity = prepared[0]
            .image_name
            .clone()
            .unwrap_or_else(|| default_archive_name(&request.images[0].installable));
        signatures = super::layout_signing::sign_layout(
            dir,
            request,
            &prepared,
            &identity,
            index_digest.as_ref(),
            &mut images,
            reporter.as_ref(),
        )?;
    }
    Ok(PushOutcome {
        destination: destination.to_string(),
        reference: format!("{place}@{digest}"),
        digest: digest.clone(),
        tags,
        to_stdout: destination.is_stdout(),
        unchanged: false,
        signatures,
        mirrors: Vec::new(),
        images,
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
