//! Local targets, for trying an image before publishing it: an OCI image layout directory
//! (`oci:DIR[:TAG]`) or a docker-archive stream (`docker-archive:-`, `docker-archive:FILE`). The
//! layers, config and manifest are the very ones a registry push makes; only where the bytes go
//! differs.

use std::path::PathBuf;
use std::sync::Arc;

use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::Reporter;
use crate::push::PushError;
use crate::upload::LayerReport;

/// Where a local image goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalTarget {
    /// An OCI image layout directory (created if missing; other images in it are kept).
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// A docker-archive (`docker save`'s format) written to `path`, or to stdout when `None`.
    DockerArchive {
        path: Option<PathBuf>,
        /// `name[:tag]` recorded in the archive's `RepoTags`, when given.
        name: Option<String>,
    },
}

/// The image as written: the same documents and layer blobs a registry push makes.
#[derive(Clone, Debug)]
pub struct WrittenImage {
    pub documents: ImageDocuments,
    pub layers: Vec<LayerReport>,
}

/// Writes `plan`'s image to `target`; `tags` are the names it gets there (the layout's
/// `org.opencontainers.image.ref.name`s, the archive's `RepoTags` tags).
pub async fn write_image(
    plan: &ImagePlan,
    target: &LocalTarget,
    tags: &[String],
    jobs: usize,
    reporter: Arc<dyn Reporter>,
) -> Result<WrittenImage, PushError> {
    let _ = (plan, tags, jobs, reporter);
    Err(PushError::Unsupported(format!(
        "{target:?}: local targets are not written yet"
    )))
}
