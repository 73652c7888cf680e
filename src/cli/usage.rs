//! Arguments that are wrong before anything runs: exit code 2.

use nixpush::destination::DestinationError;
use nixpush::plan::ConfigError;
use nixpush::reference::ReferenceError;

use super::choices::CompressionArg;

/// Arguments that are wrong before anything runs (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--created {0:?}: expected `now` or an RFC 3339 time such as 2024-05-01T12:00:00Z")]
    Created(String),
    #[error("--cache-from {0}: must be on the destination's registry (layers are reused by linking them there)")]
    CacheFromElsewhere(String),
    #[error(transparent)]
    Destination(DestinationError),
    #[error("--mount-from {0:?}: name a repository (REPO or HOST/REPO), without a tag or digest")]
    MountFrom(String),
    #[error("--platform {0:?}: expected OS/ARCH[/VARIANT]=INSTALLABLE, e.g. linux/arm64=.#packages.aarch64-linux.docker")]
    Platform(String),
    #[error(
        "with --platform, give only DESTINATION: the installables are in the --platform options"
    )]
    PlatformAndInstallable,
    #[error("{0} goes only to a registry, not to {1}")]
    RegistryOnly(&'static str, String),
    #[error("--sbom: {0} is a docker-archive, which cannot hold an attached SBOM: push to a registry or to oci:DIR")]
    NoReferrers(String),
    #[error("{0} holds one image, not an index: write a multi-arch image (--platform) to a registry or to oci:DIR")]
    MultiArchArchive(String),
    #[error("--json and {0} both write to standard output: write the archive to a file")]
    StdoutTwice(&'static str),
    #[error("--compression-level {level} does not fit --compression {}: {}", compression.name(), if range.is_empty() || range.end() == &0 { "it takes no level".to_owned() } else { format!("its levels are {} to {}", range.start(), range.end()) })]
    Level {
        compression: CompressionArg,
        level: u32,
        range: std::ops::RangeInclusive<u32>,
    },
    #[error("{}: {reason}", path.display())]
    ImagesFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("with --images, set {0} per image in the file")]
    FlagWithImages(&'static str),
    #[error("--tag {0:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")]
    Tag(String),
    #[error("{0}")]
    Credentials(&'static str),
    #[error("the installable is empty")]
    EmptyInstallable,
    #[error("--platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
    InspectPlatform(String),
    #[error(transparent)]
    TrustedKey(#[from] nixpush::binary_cache::BadKey),
    #[error("--substituter {0:?}: expected an http://, https://, s3:// or file:// URL of a binary cache")]
    Substituter(String),
    #[error("--substituter {0}")]
    S3Substituter(#[from] nixpush::binary_cache::S3UrlProblem),
    #[error("--system {0:?}: expected a Nix system such as x86_64-linux or aarch64-linux")]
    System(String),
    #[error(transparent)]
    Conflict(#[from] super::conflicts::Conflict),
}

impl From<DestinationError> for UsageError {
    fn from(e: DestinationError) -> Self {
        match e {
            DestinationError::Reference(r) => UsageError::Reference(r),
            other => UsageError::Destination(other),
        }
    }
}
