//! Progress as the library reports it: typed events through the `Reporter` trait. The binary
//! decides how to draw them (bars, lines on stderr, or nothing); nothing here writes anywhere.

use crate::digest::Digest;
use crate::outcome::LayerAction;

/// Events of a push, in the order they happen for each layer.
pub trait Reporter: Send + Sync {
    /// A phase of the push begins ("building", "connecting", ...).
    fn phase(&self, _message: &str) {}
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
        self.0.phase(what);
    }

    fn detail(&self, message: &str) {
        self.0.detail(message);
    }
}
