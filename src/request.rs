//! What a push is asked to do: the checked request the command line (or any other caller)
//! builds before any I/O, and the rule for which tags it writes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::destination::Destination;
use crate::known_layers::LayerCache;
use crate::layer::Compression;
use crate::plan::ConfigFlags;
pub use crate::prepare::ImageSource;
use crate::prepare::PrepareOptions;
use crate::reference::{valid_tag, Reference, DEFAULT_TAG};
use crate::registry::{Credentials, RetryPolicy};

/// A checked push request: everything the user asked for, validated before any I/O.
#[derive(Clone, Debug)]
pub struct PushRequest {
    /// The image to push, or one per platform (`--platform`: pushed under one index).
    pub images: Vec<ImageSource>,
    pub nix_args: Vec<String>,
    pub destination: Destination,
    pub config: ConfigFlags,
    /// Installables whose top-level directories are linked into `/` (plain packages only).
    pub contents: Vec<String>,
    /// Images (on the destination's registry) whose layers may be reused.
    pub cache_from: Vec<Reference>,
    /// Repositories (on the destination's registry) known blobs may be mounted from.
    pub mount_from: Vec<String>,
    /// How blobs go up (`--upload`).
    pub upload: UploadMode,
    /// Attach an SBOM of the image's closure in this format (`--sbom`).
    pub sbom: Option<crate::sbom::SbomFormat>,
    /// Sign every manifest the push writes with this key (`--sign-key`), before any tag moves.
    pub signer: Option<std::sync::Arc<crate::signing::Signer>>,
    /// Attach SLSA provenance to each image manifest (`--provenance`): signed with `signer`,
    /// unsigned without one.
    pub provenance: bool,
    /// More registries to put the same image in (`--mirror`), each once the destination
    /// holds it: copied, not rebuilt.
    pub mirrors: Vec<crate::reference::Reference>,
    /// The registry image a plain package's layers go on top of (`--base`), by tag or digest.
    pub base: Option<crate::reference::Reference>,
    /// The manifests' media types (`--format`); `None`: OCI unless the registry refuses it.
    pub format: Option<crate::image::ManifestFormat>,
    /// More tags for the same manifest (`--tag`), beside the destination's.
    pub tags: Vec<String>,
    /// Credentials given explicitly (they win over every stored ones).
    pub credentials: Option<Credentials>,
    /// `--created`, when given (plain packages; dockerTools images carry their own).
    pub created: Option<String>,
    /// `--max-layers`, when given (plain packages; dockerTools images carry their own layering).
    pub max_layers: Option<usize>,
    pub compression: Compression,
    /// `--compression` was given (an image kind with a default of its own follows it only then).
    pub compression_chosen: bool,
    pub jobs: usize,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    /// How long to keep trying, and how long a silent registry is waited for.
    pub retry: RetryPolicy,
    pub cache: LayerCache,
    /// Rebuild layers that would be skipped, and reuse a blob only if identical.
    pub verify: bool,
    /// Where store paths missing from the local store are read from (`--substituter`).
    pub substituters: crate::binary_cache::SubstituterSettings,
    /// The Nix system of the store paths, when no derivation says (`--system`).
    pub system: Option<String>,
    /// Manifest annotations given with `--annotation` (they win over the default ones).
    pub annotations: BTreeMap<String, String>,
    /// Annotate the manifest with the flake's provenance (`org.opencontainers.image.*`).
    pub default_annotations: bool,
}

impl PushRequest {
    pub fn is_multi_arch(&self) -> bool {
        self.images.len() > 1 || self.images.iter().any(|i| i.platform.is_some())
    }

    /// What preparing the images reads of the request.
    pub fn prepare_options(&self) -> PrepareOptions {
        PrepareOptions {
            nix_args: self.nix_args.clone(),
            config: self.config.clone(),
            contents: self.contents.clone(),
            created: self.created.clone(),
            max_layers: self.max_layers,
            compression: self.compression,
            compression_chosen: self.compression_chosen,
            sbom: self.sbom.is_some(),
            provenance: self.provenance,
            substituters: self.substituters.clone(),
            retry: self.retry,
            tls: crate::http::TlsOptions {
                insecure: self.insecure,
                ca_cert: self.ca_cert.clone(),
            },
            system: self.system.clone(),
            annotations: self.annotations.clone(),
            default_annotations: self.default_annotations,
            on_base: self.base.is_some(),
            cache: self.cache.clone(),
        }
    }

    pub fn installables(&self) -> String {
        self.images
            .iter()
            .map(|i| i.installable.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a layer's blob goes up (`--upload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// Monolithic when the digest is known beforehand (the local cache), else streaming.
    #[default]
    Auto,
    /// Always one streaming `PATCH`, the digest learned as the bytes go.
    Streaming,
    /// Always one `PUT ?digest=` with a `Content-Length`: a layer whose digest is not known is
    /// built once more, without sending, to learn it (nothing is written to disk).
    Monolithic,
}

/// The image names a tag for itself that no registry would take.
#[derive(Debug, thiserror::Error)]
#[error("the image's own tag {0:?} is not a valid registry tag: name one in the destination")]
pub struct InvalidImageTag(pub String);

/// The tags to write: the destination's and every `--tag`; if none, the image's own tag (unless
/// the destination names a digest: then none, the image is pushed by digest), else `latest`.
/// An image tag a registry would refuse is an error now, not after every blob is uploaded.
pub fn target_tags(
    tag: Option<&str>,
    by_digest: bool,
    extra: &[String],
    image_tag: Option<&str>,
) -> Result<Vec<String>, InvalidImageTag> {
    let mut tags: Vec<String> = tag.map(str::to_owned).into_iter().collect();
    for t in extra {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    if !tags.is_empty() || by_digest {
        return Ok(tags);
    }
    match image_tag {
        Some(t) if !valid_tag(t) => Err(InvalidImageTag(t.to_owned())),
        t => Ok(vec![t.unwrap_or(DEFAULT_TAG).to_owned()]),
    }
}
