//! Progress as the library reports it: typed events through the `Reporter` trait. The binary
//! decides how to draw them (bars, lines on stderr, or nothing); nothing here writes anywhere.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::outcome::LayerAction;

/// Events of a push, in the order they happen for each layer.
pub trait Reporter: Send + Sync {
    /// A phase of the push begins (building, connecting, writing a tag, ...).
    fn phase(&self, _phase: &Phase) {}
    /// Something went wrong that the push works around: it goes on, perhaps slower or with
    /// less, and the user should know (`--json` lists them as `warnings`).
    fn warning(&self, _warning: &Warning) {}
    /// Work on layer `index` (0-based, of `total`) begins.
    fn layer_started(&self, _index: usize, _total: usize, _description: &str) {}
    /// `bytes` more compressed bytes of layer `index` were handed to the network.
    fn layer_bytes(&self, _index: usize, _bytes: u64) {}
    /// An upload attempt failed and will be retried: bytes counted for it are taken back.
    fn layer_retry(&self, _index: usize, _reason: &str) {}
    fn layer_done(&self, _index: usize, _action: &LayerAction, _digest: &Digest, _size: u64) {}
    /// A request is being retried.
    fn retrying(&self, _reason: &str) {}
    /// What only `--verbose` shows: each registry request and its answer, where credentials
    /// came from. Never a secret.
    fn detail(&self, _message: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {}

/// A phase of a push, as the library reports it; its `Display` is the line a person reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Phase {
    #[error("building {installables}")]
    Building { installables: String },
    /// Building, and connecting to the registry meanwhile.
    #[error("building {installables} and connecting to {registry}")]
    BuildingAndConnecting {
        installables: String,
        registry: String,
    },
    /// What one platform's image is made of.
    #[error("{platform}: {paths} store paths ({mib} MiB) in {layers} layers")]
    ImageSize {
        platform: String,
        paths: usize,
        mib: u64,
        layers: usize,
    },
    /// A manifest read before uploading names this many known layers.
    #[error("{manifest} names {count} known layers")]
    KnownLayers { manifest: String, count: usize },
    /// One platform's manifest of a multi-arch image, by digest.
    #[error("writing the {platform} manifest")]
    WritingManifest { platform: String },
    /// The document the tags name, under `tag` (none: by its digest).
    #[error("writing {digest} as {}", tag.as_deref().unwrap_or("its digest"))]
    WritingTag { digest: Digest, tag: Option<String> },
    /// The tag already names exactly this image.
    #[error("{tag} already names {digest}: unchanged, nothing sent")]
    Unchanged { tag: String, digest: Digest },
    #[error("attached the SBOM ({artifact_type}) {artifact} to {subject}")]
    SbomAttached {
        artifact_type: String,
        artifact: Digest,
        subject: Digest,
    },
    /// A manifest's signature stored under its `.sig` tag (`added`: false when it was there).
    #[error("{} {subject} under {tag}", if *added { "signed" } else { "already signed:" })]
    Signed {
        subject: Digest,
        tag: String,
        added: bool,
    },
    /// SLSA provenance attached to an image manifest (cosign's `.att` tag and a referrer).
    #[error("attached {} SLSA provenance {artifact} to {subject}", if *signed { "signed" } else { "unsigned" })]
    ProvenanceAttached {
        artifact: Digest,
        subject: Digest,
        signed: bool,
    },
    /// `--base`: the base's reference read once, every platform on this version of it.
    #[error("base {base} is {digest}")]
    BaseResolved { base: String, digest: Digest },
    /// `nixpush copy`, and a base's layers: a blob brought to the destination (`how`: streamed
    /// or mounted).
    #[error("{how} {digest}")]
    BlobCopied { digest: Digest, how: String },
    /// `nixpush copy`: an attachment (a referrer of that artifact type, or a cosign tag) carried.
    #[error("copied {what} {digest}")]
    AttachmentCopied { what: String, digest: Digest },
    /// A store path not in the local store, read from binary caches.
    #[error("{} is not in the local store: reading it from {caches}", path.display())]
    ReadingFromCaches { path: PathBuf, caches: String },
    /// A relative entrypoint the cache cannot show before the layer is made.
    #[error("{} has no listing in the cache: --entrypoint {entrypoint} is checked as its layer is made (not when the registry already has it)", path.display())]
    EntrypointCheckedLater { path: PathBuf, entrypoint: String },
    #[error("building the dockerTools image description {drv}")]
    BuildingImageDescription { drv: String },
    #[error("measuring the layers (a docker-archive entry needs its size first)")]
    MeasuringLayers,
    #[error("writing the docker-archive to {target}")]
    WritingArchive { target: String },
    #[error("writing the OCI image layout {}", dir.display())]
    WritingLayout { dir: PathBuf },
    /// Something new learnt of a host (what it refuses), remembered for the next push.
    #[error("{what}")]
    HostLearnt { what: String },
}

/// What went wrong without failing the push. Each kind is its own variant, so a reader of
/// `--json` can tell one from another (its `kind`) and from a phase.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// A source of stored credentials could not be read; the next one is tried.
    #[error("ignoring {from}: {reason}")]
    CredentialsIgnored { from: String, reason: String },
    /// A manifest that might have named known layers could not be read.
    #[error("not reusing layers of {manifest}: {reason}")]
    NotReusing { manifest: String, reason: String },
    /// The local layer cache could not be written: the next push only goes slower.
    #[error("could not write the layer cache: {reason}")]
    CacheNotWritten { reason: String },
    /// A cached blob for a layer is not what the store gives now: it is built and sent.
    #[error("layer {layer}: the cached digest is not what the store gives; streaming it")]
    CachedDigestWrong { layer: usize },
    /// `--verify` rebuilt a layer and found another blob than the known one.
    #[error("layer {layer}: --verify: {known} is not what the store gives; building it")]
    VerifyMismatch { layer: usize, known: Digest },
    /// The flake's provenance could not be learnt: the image carries no such annotations.
    #[error("no provenance annotations: {reason}")]
    NoProvenance { reason: String },
    /// A store Nix is configured with is not a binary cache nixpush reads; it is passed over.
    #[error("{message}")]
    StorePassedOver { message: String },
    /// `--provenance` without `--sign-key`: the attestation is attached unsigned.
    #[error("the provenance is unsigned (no --sign-key): verifiers cannot tell who attached it")]
    UnsignedProvenance,
}

impl Warning {
    /// A short stable name for machines (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::CredentialsIgnored { .. } => "credentials-ignored",
            Warning::NotReusing { .. } => "not-reusing",
            Warning::CacheNotWritten { .. } => "cache-not-written",
            Warning::CachedDigestWrong { .. } => "cached-digest-wrong",
            Warning::VerifyMismatch { .. } => "verify-mismatch",
            Warning::NoProvenance { .. } => "no-provenance",
            Warning::StorePassedOver { .. } => "store-passed-over",
            Warning::UnsignedProvenance => "unsigned-provenance",
        }
    }
}

/// A reporter as the HTTP side's [`Notices`](crate::http::Notices): retries, what a host was
/// seen to refuse (a phase line), and `--verbose` request details.
pub struct HttpNotices(pub std::sync::Arc<dyn Reporter>);

impl crate::http::Notices for HttpNotices {
    fn retrying(&self, reason: &str) {
        self.0.retrying(reason);
    }

    fn learnt(&self, what: &str) {
        self.0.phase(&Phase::HostLearnt {
            what: what.to_owned(),
        });
    }

    fn detail(&self, message: &str) {
        self.0.detail(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_read_as_lines_for_people() {
        let d = Digest::of(b"manifest");
        assert_eq!(
            Phase::WritingTag {
                digest: d.clone(),
                tag: None
            }
            .to_string(),
            format!("writing {d} as its digest")
        );
        assert_eq!(
            Phase::WritingTag {
                digest: d.clone(),
                tag: Some("v1".into())
            }
            .to_string(),
            format!("writing {d} as v1")
        );
        assert_eq!(
            Phase::ImageSize {
                platform: "linux/amd64".into(),
                paths: 12,
                mib: 3,
                layers: 4
            }
            .to_string(),
            "linux/amd64: 12 store paths (3 MiB) in 4 layers"
        );
        assert_eq!(
            Phase::Unchanged {
                tag: "v1".into(),
                digest: d.clone()
            }
            .to_string(),
            format!("v1 already names {d}: unchanged, nothing sent")
        );
    }
}
