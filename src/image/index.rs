//! The OCI image index: one manifest per platform under one name (multi-arch). Clients pick
//! the entry whose `platform` matches theirs, so each entry's platform is the one its image's
//! config declares.

use std::collections::BTreeMap;

use serde::Serialize;

use super::canonical_json;
use crate::digest::Digest;
use crate::nix::Platform;

/// One image of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub digest: Digest,
    pub size: u64,
    pub platform: Platform,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageIndex {
    /// OCI's index, or Docker's manifest list (no annotations there).
    pub format: super::ManifestFormat,
    pub manifests: Vec<IndexEntry>,
    pub annotations: BTreeMap<String, String>,
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

impl ImageIndex {
    pub fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct PlatformDoc<'a> {
            architecture: &'a str,
            os: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            variant: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct EntryDoc<'a> {
            #[serde(rename = "mediaType")]
            media_type: &'static str,
            digest: &'a Digest,
            size: u64,
            platform: PlatformDoc<'a>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            #[serde(rename = "schemaVersion")]
            schema_version: u32,
            #[serde(rename = "mediaType")]
            media_type: &'static str,
            manifests: Vec<EntryDoc<'a>>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            annotations: &'a BTreeMap<String, String>,
        }
        canonical_json(&Doc {
            schema_version: 2,
            media_type: self.format.index_type(),
            manifests: self
                .manifests
                .iter()
                .map(|m| EntryDoc {
                    media_type: self.format.manifest_type(),
                    digest: &m.digest,
                    size: m.size,
                    platform: PlatformDoc {
                        architecture: &m.platform.architecture,
                        os: &m.platform.os,
                        variant: m.platform.variant.as_deref(),
                    },
                })
                .collect(),
            // A manifest list has no annotations.
            annotations: if self.format.has_annotations() {
                &self.annotations
            } else {
                &EMPTY
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::media_types::OCI_INDEX;

    #[test]
    fn entries_carry_their_platform_and_keys_are_sorted() {
        let index = ImageIndex {
            format: Default::default(),
            manifests: vec![
                IndexEntry {
                    digest: Digest::of(b"amd64"),
                    size: 10,
                    platform: Platform::from_nix_system("x86_64-linux").unwrap(),
                },
                IndexEntry {
                    digest: Digest::of(b"arm64"),
                    size: 11,
                    platform: Platform::from_nix_system("aarch64-linux").unwrap(),
                },
            ],
            annotations: [("a.b".to_owned(), "c".to_owned())].into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&index.to_bytes()).unwrap();
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        assert!(v["manifests"][0]["platform"].get("variant").is_none());
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
        assert_eq!(v["manifests"][1]["size"], 11);
        assert_eq!(v["annotations"]["a.b"], "c");
        let text = String::from_utf8(index.to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"annotations":"#), "{text}");
    }
}
