//! Progress as the library reports it. The library calls a `Reporter`; the binary decides how to
//! draw it (plain lines on stderr, or nothing). Nothing here writes to a terminal.

use crate::digest::Digest;

/// What happened to one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerAction {
    /// The registry already had the blob: nothing was read or sent.
    Skipped,
    /// The blob was built and sent.
    Pushed,
    /// The registry linked the blob from another repository (cross-repository mount).
    Mounted,
}

/// Events of a push, in the order they happen for each layer.
pub trait Reporter: Send + Sync {
    /// A phase of the push begins ("building", "connecting", ...).
    fn phase(&self, _message: &str) {}
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
