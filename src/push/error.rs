//! Why a push failed: every error of the layers below, and the request contradicting itself
//! or the image.

use std::path::PathBuf;

use crate::credentials::DockerConfigError;
use crate::destination::LocalError;
use crate::digest::Digest;
use crate::dockertools::{ArchiveError, ConfError};
use crate::layer::LayerFailure;
use crate::nix::NixError;
use crate::plan::ConfigError;
use crate::registry::RegistryError;
use crate::request::InvalidImageTag;

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
    RootFs(#[from] crate::plan::RootFsError),
    #[error(transparent)]
    ImageTag(#[from] InvalidImageTag),
    #[error(transparent)]
    Layer(#[from] LayerFailure),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Credentials(#[from] DockerConfigError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("the image's manifest digest is {actual}, not the {expected} the destination names")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("layer {layer}: its blob was announced as {expected} but is {actual}: the store path changed while it was read, or the layer cache is damaged")]
    KnownDigestWrong {
        layer: usize,
        expected: Digest,
        actual: Digest,
    },
    // Not a `source`: printed with its chain, the reason would be said twice.
    #[error("{host}: {reason}")]
    NotInDockerFormat {
        host: String,
        reason: crate::image::NotInDockerFormat,
    },
    #[error("the push was stopped")]
    Stopped,
    #[error("{installable} is an image for {actual}, not for the {expected} --platform names")]
    PlatformMismatch {
        installable: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Cache(#[from] crate::binary_cache::CacheError),
    #[error("{given} (--system, or --platform) contradicts {}, which was built for {known}", path.display())]
    SystemMismatch {
        path: PathBuf,
        given: String,
        known: String,
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
                | PushError::SystemMismatch { .. }
        )
    }
}
