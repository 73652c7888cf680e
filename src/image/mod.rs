//! The JSON documents of an image, once each: the media types; the config, manifest and index
//! as nixpush writes them, deterministically (keys sorted, no wall clock unless asked) so the
//! same inputs give the same digests; and tolerant read models of what a registry holds. Own small types rather than `oci-spec`'s, whose labels and annotations live in
//! `HashMap`s: here every map is a `BTreeMap`, so the bytes are stable by construction.

pub mod artifact;
mod config;
mod format;
mod index;
mod manifest;
pub use nixpush_layer::media_types;
pub mod python_json;
pub mod read;

pub use config::{EmptyObject, HistoryEntry, ImageConfig, RunConfig};
pub use format::{ManifestFormat, NotInDockerFormat};
pub use index::{ImageIndex, IndexEntry};
pub use manifest::{Descriptor, Manifest};
pub use media_types::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
pub use read::index_children;

/// Serialises with keys sorted at every level (serde_json's `Value` map is a `BTreeMap`).
pub(crate) fn canonical_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("image documents always serialise");
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}

/// The short escape JSON writers share for a character (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\f`), if it has one: Python's `json.dumps` and Go's `encoding/json` both use these.
pub(crate) fn json_short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        _ => return None,
    })
}
