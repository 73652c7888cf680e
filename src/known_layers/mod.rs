//! What is known about layer blobs without reading the store: the local cache (what this
//! machine pushed or saw), layers learnt from manifests already in a registry, and the blobs a
//! nix2container image JSON declares. Each answers
//! "which blob holds the layer with this key"; a HEAD or a mount confirms it before use.

mod cache;
mod declared;
mod manifests;

pub use cache::{CacheEntry, KnownBlob, LayerCache};
pub use declared::declared_blob;
pub use manifests::{KnownLayer, LearntLayers, DIFF_ID_ANNOTATION, LAYER_KEY_ANNOTATION};
