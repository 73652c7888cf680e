//! What is known of layers before any is built: layer key -> blob, learned from manifests that
//! nixpush pushed earlier. Every layer descriptor nixpush writes carries its layer key and diff_id
//! as annotations, so a fresh CI runner with an empty local cache can read the destination tag's
//! current manifest (and `--cache-from` manifests) and skip every unchanged layer without reading
//! a byte of the store.
//!
//! Trust: an annotation is taken only from the destination repository and from repositories the
//! user names; a HEAD (or a mount) then proves the blob exists. It does not prove the blob holds
//! those store paths; `--no-cache` with a fresh destination rebuilds everything.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::known_layers::KnownBlob;
use crate::layer::LayerKey;

/// Annotation on a layer descriptor: the layer key the blob was built for.
pub const LAYER_KEY_ANNOTATION: &str = "dev.nixpush.layer.key";
/// Annotation on a layer descriptor: the blob's uncompressed digest (its diff_id).
pub const DIFF_ID_ANNOTATION: &str = "dev.nixpush.layer.diff-id";

/// A layer learned from a manifest, and the repository its blob was seen in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownLayer {
    pub layer: KnownBlob,
    pub repository: String,
}

/// Layer key -> a known blob. The first source to name a key wins (the destination is read
/// first).
#[derive(Clone, Debug, Default)]
pub struct LearntLayers {
    known: BTreeMap<LayerKey, KnownLayer>,
}

impl LearntLayers {
    pub fn get(&self, key: &LayerKey) -> Option<&KnownLayer> {
        self.known.get(key)
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Records a layer known some other way (pushed earlier in the same run); an entry already
    /// there is kept.
    pub fn add(&mut self, key: LayerKey, known: KnownLayer) {
        self.known.entry(key).or_insert(known);
    }

    /// Adds every entry of `other` not already known.
    pub fn merge(&mut self, other: &LearntLayers) {
        for (k, v) in &other.known {
            self.add(k.clone(), v.clone());
        }
    }

    /// Learns the annotated layers of a manifest from `repository`. Anything that is not an
    /// image manifest with nixpush's annotations (an index, a foreign image) teaches nothing.
    pub fn learn(&mut self, manifest: &[u8], repository: &str) -> usize {
        #[derive(serde::Deserialize)]
        struct Manifest {
            #[serde(default)]
            layers: Vec<Layer>,
        }
        #[derive(serde::Deserialize)]
        struct Layer {
            #[serde(rename = "mediaType")]
            media_type: String,
            digest: String,
            size: u64,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        let Ok(m) = serde_json::from_slice::<Manifest>(manifest) else {
            return 0;
        };
        let mut learned = 0;
        for l in m.layers {
            let key = l
                .annotations
                .get(LAYER_KEY_ANNOTATION)
                .and_then(|k| LayerKey::parse(k));
            let diff_id = l
                .annotations
                .get(DIFF_ID_ANNOTATION)
                .and_then(|d| d.parse::<Digest>().ok());
            let (Some(key), Some(diff_id), Ok(digest)) = (key, diff_id, l.digest.parse::<Digest>())
            else {
                continue;
            };
            self.known.entry(key).or_insert_with(|| {
                learned += 1;
                KnownLayer {
                    layer: KnownBlob {
                        digest,
                        diff_id,
                        size: l.size,
                        media_type: l.media_type,
                        // What else the descriptor says of the blob (zstd:chunked's table of
                        // contents) goes with it wherever it is named again.
                        annotations: l
                            .annotations
                            .into_iter()
                            .filter(|(k, _)| k != LAYER_KEY_ANNOTATION && k != DIFF_ID_ANNOTATION)
                            .collect(),
                    },
                    repository: repository.to_owned(),
                }
            });
        }
        learned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_annotated_layers_only() {
        let key = "a".repeat(64);
        let (d, t) = (Digest::of(b"blob"), Digest::of(b"tar"));
        let manifest = format!(
            r#"{{"schemaVersion":2,"layers":[
                {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":4,
                  "annotations":{{"{LAYER_KEY_ANNOTATION}":"{key}","{DIFF_ID_ANNOTATION}":"{t}"}}}},
                {{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":4}},
                {{"mediaType":"x","digest":"{d}","size":4,"annotations":{{"{LAYER_KEY_ANNOTATION}":"short","{DIFF_ID_ANNOTATION}":"{t}"}}}}
            ]}}"#
        );
        let mut index = LearntLayers::default();
        assert_eq!(index.learn(manifest.as_bytes(), "org/app"), 1);
        let known = index.get(&LayerKey::parse(&key).unwrap()).unwrap();
        assert_eq!(
            (
                known.layer.digest.clone(),
                known.layer.diff_id.clone(),
                known.layer.size
            ),
            (d, t, 4)
        );
        assert_eq!(known.repository, "org/app");
        // The first source wins; garbage teaches nothing.
        assert_eq!(index.learn(manifest.as_bytes(), "other"), 0);
        assert_eq!(
            index
                .get(&LayerKey::parse(&key).unwrap())
                .unwrap()
                .repository,
            "org/app"
        );
        assert_eq!(index.learn(b"{\"manifests\":[]}", "x"), 0);
        assert_eq!(index.learn(b"<html>", "x"), 0);
        assert_eq!(index.len(), 1);
    }
}
