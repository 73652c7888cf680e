//! Image layers made from store paths: what goes in a layer (`LayerSpec`), the exact tar bytes,
//! compression, hashing, and the key that names a layer's content before it is built.

mod compress;
mod key;
mod stream;
mod tar;
mod walk;

use std::path::PathBuf;

pub use compress::{Compression, DEFAULT_GZIP_LEVEL};
pub use key::LayerKey;
pub use stream::{build_layer, open_layer, LayerDigests, LayerStream};
pub use tar::Owner;
pub use walk::write_layer_tar;

/// Version of the tar rules above; part of every layer key, so a change in bytes can never be
/// mistaken for a layer built under the old rules.
pub const TAR_RULES_VERSION: u32 = 1;

/// The store paths of one layer, in order, and the ownership every entry gets.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub paths: Vec<PathBuf>,
    pub owner: Owner,
    pub key: LayerKey,
    /// Sum of the paths' NAR sizes: roughly the uncompressed size.
    pub nar_size: u64,
}

/// What can go wrong while making a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read store path {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} changed while it was being read", path.display())]
    Changed { path: PathBuf },
    #[error("{} is neither a file, a directory nor a symlink", path.display())]
    Unsupported { path: PathBuf },
    #[error("layer output failed")]
    Sink(#[source] std::io::Error),
    #[error("layer builder stopped unexpectedly")]
    Panicked,
}
