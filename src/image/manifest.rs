//! The OCI image manifest: config and layer descriptors. The registry stores the exact bytes
//! sent, so the manifest's digest is the sha256 of `to_bytes()`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::canonical_json;
use crate::digest::Digest;

/// A content descriptor: what a manifest says of each blob it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// OCI's, or Docker schema 2's (see [`super::ManifestFormat`]).
    pub media_type: &'static str,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            #[serde(rename = "schemaVersion")]
            schema_version: u32,
            #[serde(rename = "mediaType")]
            media_type: &'static str,
            config: &'a Descriptor,
            layers: &'a [Descriptor],
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            annotations: &'a BTreeMap<String, String>,
        }
        canonical_json(&Doc {
            schema_version: 2,
            media_type: self.media_type,
            config: &self.config,
            layers: &self.layers,
            annotations: &self.annotations,
        })
    }
}
