//! Where a layer's store paths are read from: the local store (a walk of `/nix/store`), or their
//! NARs (a binary cache, when the paths are not on this machine). Both give the same tar bytes.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// The NARs of store paths that are not in the local store. Blocking: called on a layer's
/// builder thread.
pub trait NarSource: Send + Sync {
    /// The NAR of `path`, checked as it is read: a reader of anything but exactly that NAR
    /// (its hash, its size) fails rather than ends.
    fn open_nar(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;

    /// Names below `path` (relative, `/`-separated) that its NAR must hold: what could not be
    /// checked before the NAR was read (a relative entrypoint, without the cache's listing).
    fn must_hold(&self, _path: &Path) -> Vec<String> {
        Vec::new()
    }
}

/// Where the store paths of a layer are read from.
#[derive(Clone, Default)]
pub enum StoreSource {
    /// The local store: the paths are valid here.
    #[default]
    Local,
    /// Their NARs, from a binary cache.
    Nars(Arc<dyn NarSource>),
}

impl fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSource::Local => f.write_str("Local"),
            StoreSource::Nars(_) => f.write_str("Nars"),
        }
    }
}

impl PartialEq for StoreSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreSource::Local, StoreSource::Local) => true,
            (StoreSource::Nars(a), StoreSource::Nars(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for StoreSource {}
