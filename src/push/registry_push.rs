//! One registry push once its images are prepared and the registry reached: what every step
//! after that (the unchanged check, the uploads, the manifests and tags) reads, in one place, and
//! what those steps say of the images.

use std::sync::Arc;

use super::documents::ImageSet;
use super::remote::Remote;
use super::{Prepared, PushError};
use crate::layer::LayerDigests;
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, LayerReport};
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::request::PushRequest;
use crate::stop::Stop;

/// A registry push with its images prepared and the registry reached.
pub(super) struct RegistryPush<'a, R: Remote> {
    pub request: &'a PushRequest,
    pub destination: &'a Reference,
    pub client: &'a R,
    pub prepared: &'a [Prepared],
    /// The tags to write (none: by digest only).
    pub tags: Vec<String>,
    pub reporter: Arc<dyn Reporter>,
    /// Stops this push's uploads (a child of the run's signal).
    pub stop: Stop,
}

impl<R: Remote> RegistryPush<'_, R> {
    /// The plans, in the request's order.
    pub fn plans(&self) -> Vec<&ImagePlan> {
        self.prepared.iter().map(|p| &p.plan).collect()
    }

    /// The images with their layers' blobs known.
    pub fn image_set(&self, layers: Vec<Vec<LayerDigests>>) -> ImageSet<'_> {
        ImageSet {
            plans: self.plans(),
            layers,
            multi_arch: self.request.is_multi_arch(),
        }
    }

    /// What the push says of each image, from its documents and its layers' reports.
    pub fn image_outcomes(
        &self,
        documents: &[ImageDocuments],
        layers: Vec<Vec<LayerReport>>,
    ) -> Vec<ImageOutcome> {
        self.request
            .images
            .iter()
            .zip(self.prepared)
            .zip(documents)
            .zip(layers)
            .map(|(((source, p), d), layers)| ImageOutcome {
                installable: source.installable.clone(),
                platform: PlatformSpec::of(&p.plan.platform).to_string(),
                manifest_digest: d.manifest_digest.clone(),
                config_digest: d.config_digest.clone(),
                layers,
                sbom_digest: None,
                provenance: None,
                base: p
                    .plan
                    .base
                    .as_ref()
                    .map(|b| format!("{}@{}", b.name, b.digest)),
            })
            .collect()
    }

    /// The error of documents that cannot be written in Docker schema 2 for this host.
    pub fn not_in_docker_format(&self, reason: crate::image::NotInDockerFormat) -> PushError {
        PushError::NotInDockerFormat {
            host: self.client.registry().to_owned(),
            reason,
        }
    }
}
