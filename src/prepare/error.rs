//! Why an image could not be prepared: Nix, the dockerTools conf, the image archive, the binary
//! caches, or the request contradicting the image.

use std::path::PathBuf;

use crate::binary_cache::CacheError;
use crate::dockertools::{ArchiveError, ConfError};
use crate::nix::NixError;
use crate::plan::{ConfigError, RootFsError};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Nix(#[from] NixError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    RootFs(#[from] RootFsError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Nix2Container(#[from] crate::nix2container::Nix2ContainerError),
    #[error("{} names {}, which is not in the local store", json.display(), path.display())]
    Nix2ContainerPathMissing { json: PathBuf, path: PathBuf },
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
    /// The blocking task reading an image archive ended without an answer.
    #[error("reading {what} stopped")]
    ReadStopped { what: &'static str },
    #[error("{} is not a hex sha256", path.display())]
    BadChecksum { path: PathBuf },
    #[error("the base image (fromImage) {} is not an image archive", path.display())]
    BaseNotArchive { path: PathBuf },
    /// A dockerTools conf naming a store path its own closure lacks.
    #[error("the image names {}, which is not in its conf's closure", path.display())]
    NotInConfClosure { path: PathBuf },
    #[error("{} is not in its own closure", path.display())]
    NotInOwnClosure { path: PathBuf },
    #[error("cannot tell which system {} was built for: its derivation is not at hand; give --system (e.g. x86_64-linux)", path.display())]
    UnknownSystem { path: PathBuf },
    #[error("--contents with a store path read from a binary cache is not supported yet")]
    ContentsFromCache,
    #[error("{kind} sets the image's configuration in Nix: change it there instead of with {}", flags.join(", "))]
    ConfigWithImage {
        kind: &'static str,
        flags: Vec<&'static str>,
    },
    #[error("{installable} is an image for {actual}, not for the {expected} --platform names")]
    PlatformMismatch {
        installable: String,
        expected: String,
        actual: String,
    },
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

impl PrepareError {
    /// Whether this is the user's request contradicting itself or the image (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            PrepareError::ConfigWithImage { .. }
                | PrepareError::PlatformMismatch { .. }
                | PrepareError::SamePlatform { .. }
                | PrepareError::SystemMismatch { .. }
        )
    }
}
