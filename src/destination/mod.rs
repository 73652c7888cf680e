//! Where an image goes other than a registry, for trying it before publishing: an OCI image
//! layout directory (`oci:DIR[:TAG]`) or a docker-archive stream (`docker-archive:-`,
//! `docker-archive:FILE`). The layers, config and manifest are the very ones a registry push
//! makes; only where the bytes go differs. Nothing here knows of the push that drives it.
//!
//! Both writers leave nothing half-written behind: every file is written under a temporary name
//! and renamed into place whole, and a failed or interrupted write stops every layer still being
//! built (a child of the run's [`Stop`]) and waits for it, so its temporary file is gone before the error is
//! returned.

mod blob_dir;
mod docker_archive;
mod measure;
mod oci_index;
mod oci_layout;
mod output;
mod target;

use std::path::PathBuf;
use std::sync::Arc;

use crate::layer::LayerFailure;
use crate::outcome::LayerReport;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::Reporter;
use crate::stop::Stop;

pub use target::{Destination, DestinationError};

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

/// Attaches an artifact (its blobs and its manifest, whose `subject` names an image of the
/// layout) to the OCI layout at `dir`; returns the artifact manifest's digest.
pub fn attach_to_layout(
    dir: &std::path::Path,
    blobs: &[&[u8]],
    manifest: &[u8],
    artifact_type: &str,
) -> Result<crate::digest::Digest, LocalError> {
    oci_layout::attach(dir, blobs, manifest, artifact_type)
}

/// The image as written: the same documents and layer blobs a registry push makes.
#[derive(Clone, Debug)]
pub struct WrittenImage {
    pub documents: ImageDocuments,
    pub layers: Vec<LayerReport>,
}

/// Why a local image could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Layer(#[from] LayerFailure),
    #[error("a docker-archive holds no image index: write a multi-arch image to a registry or an OCI layout (oci:DIR)")]
    NoIndex,
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an OCI image index; not overwriting it", path.display())]
    BadIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the docker-archive to standard output")]
    Stdout(#[source] std::io::Error),
    #[error("writing was stopped")]
    Cancelled,
    #[error("a local writer stopped unexpectedly")]
    Panicked,
}

/// Writes `plan`'s image to `target`; `tags` are the names it gets there (the layout's
/// `org.opencontainers.image.ref.name`s, the archive's `RepoTags` tags).
pub async fn write_image(
    plan: &ImagePlan,
    target: &LocalTarget,
    tags: &[String],
    work: &LayerWork,
) -> Result<WrittenImage, LocalError> {
    match target {
        // `tag` is among `tags` already: the caller works out every name the image gets.
        LocalTarget::OciLayout { dir, tag: _ } => oci_layout::write(plan, dir, tags, work).await,
        LocalTarget::DockerArchive { path, name } => {
            let repo_tags = docker_archive::repo_tags(name.as_deref(), tags);
            docker_archive::write(plan, path.as_deref(), &repo_tags, work).await
        }
    }
}

/// Writes a multi-arch image to `target`: each platform's image, then the image index `index`
/// makes from them, under `tags`. Only an OCI layout can hold one; a docker-archive holds
/// images, not indexes.
pub async fn write_images(
    plans: &[&ImagePlan],
    index: impl FnOnce(&[WrittenImage]) -> Vec<u8>,
    target: &LocalTarget,
    tags: &[String],
    work: &LayerWork,
) -> Result<(Vec<WrittenImage>, crate::digest::Digest), LocalError> {
    match target {
        LocalTarget::OciLayout { dir, tag: _ } => {
            oci_layout::write_multi(plans, index, dir, tags, work).await
        }
        LocalTarget::DockerArchive { .. } => Err(LocalError::NoIndex),
    }
}

/// How the layers of a write are worked on: how many at once, who hears of their progress, and
/// the signal that stops them (the write runs under a child of it).
#[derive(Clone)]
pub struct LayerWork {
    pub jobs: usize,
    pub reporter: Arc<dyn Reporter>,
    pub stop: Stop,
}

#[cfg(test)]
pub(crate) mod test_plan {
    //! A small image plan that needs no Nix: generated layers only.

    use std::collections::BTreeMap;

    use crate::layer::{Compression, LayerContent, LayerKey, LayerSpec, RootEntry};
    use crate::nix::Platform;
    use crate::plan::ImagePlan;

    /// A layer of a few generated files; `seed` makes its content (and key) distinct.
    pub fn layer(seed: u8, big: bool) -> LayerSpec {
        // Pseudo-random bytes do not compress: a big layer spans many compressor chunks.
        let mut state = seed as u32 + 1;
        let noise: Vec<u8> = (0..if big { 300_000 } else { 100 })
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect();
        LayerSpec {
            content: LayerContent::Generated {
                entries: vec![
                    RootEntry::Directory {
                        path: "etc".into(),
                        mode: 0o755,
                    },
                    RootEntry::File {
                        path: format!("etc/file-{seed}"),
                        mode: 0o644,
                        content: noise,
                    },
                    RootEntry::Symlink {
                        path: "bin".into(),
                        target: "/nix/store/x-app/bin".into(),
                    },
                ],
            },
            key: LayerKey::parse(&format!("{seed:02x}").repeat(32)).unwrap(),
            nar_size: 0,
        }
    }

    pub fn plan(compression: Compression) -> ImagePlan {
        ImagePlan {
            layers: vec![layer(1, true), layer(2, false), layer(3, false)],
            platform: Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
            },
            created: "1970-01-01T00:00:01Z".into(),
            config: serde_json::json!({"Entrypoint": ["/bin/app"]}),
            compression,
            annotations: BTreeMap::new(),
            config_bytes: Default::default(),
            base: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_error_keeps_its_causes_in_the_message() {
        let e = LocalError::Write {
            path: "/x/index.json".into(),
            source: std::io::Error::other("disk full"),
        };
        // The binary prints the whole chain (`{:#}`), as for every other error.
        let e = anyhow::Error::new(e);
        assert_eq!(format!("{e:#}"), "cannot write /x/index.json: disk full");
    }
}
