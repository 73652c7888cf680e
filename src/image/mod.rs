//! The JSON documents of an image: the OCI image config and the OCI image manifest, written
//! deterministically (keys sorted, no wall clock unless asked) so the same inputs give the same
//! digests. Own small types rather than `oci-spec`'s, whose labels and annotations live in
//! `HashMap`s: here every map is a `BTreeMap`, so the bytes are stable by construction.

mod config;
mod index;
mod manifest;

pub use config::{EmptyObject, HistoryEntry, ImageConfig, RunConfig};
pub use index::{ImageIndex, IndexEntry, INDEX_MEDIA_TYPE};
pub use manifest::{Descriptor, Manifest, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// Serialises with keys sorted at every level (serde_json's `Value` map is a `BTreeMap`).
pub(crate) fn canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("image documents always serialise");
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}
