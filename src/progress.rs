//! Progress as the library reports it: typed events through the `Reporter` trait. The binary
//! decides how to draw them (bars, lines on stderr, or nothing); nothing here writes anywhere.

use crate::digest::Digest;
use crate::outcome::LayerAction;

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
