//! Where cosign keeps signatures and attestations in a registry, so that cosign, sigstore-rs and
//! containers/image (`use-sigstore-attachments`) find them: an OCI image manifest under the tag
//! `sha256-<hex of the image's manifest digest>.sig` (or `.att`), one layer per signature (or
//! attestation), each layer's blob the signed payload with the signature in an annotation. A
//! new layer is added to the layers already there; the same one is never added twice.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::image::{OCI_CONFIG, OCI_MANIFEST};

/// The annotation holding a layer's base64 DER signature (empty on attestations: their
/// signatures are inside the DSSE envelope).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation naming an attestation's predicate type.
pub const ATTESTATION_PREDICATE_ANNOTATION: &str = "predicateType";

/// The tag of `image`'s signatures.
pub fn signature_tag(image: &Digest) -> String {
    format!("sha256-{}.sig", image.hex())
}

/// The tag of `image`'s attestations.
pub fn attestation_tag(image: &Digest) -> String {
    format!("sha256-{}.att", image.hex())
}

/// One layer of a `.sig` or `.att` manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLayer {
    pub media_type: String,
    pub blob: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl StoredLayer {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.blob)
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "size": self.blob.len(),
            "digest": self.digest().to_string(),
            "annotations": self.annotations,
        })
    }
}

/// The manifest and config blob to write when `layer` is added to `current` (the tag's manifest,
/// if any); `None` when `layer` is there already. Layers already there are kept as they are.
pub fn with_layer(current: Option<&[u8]>, layer: &StoredLayer) -> Option<(Vec<u8>, Vec<u8>)> {
    with_descriptors(current, &[layer.descriptor()])
}

/// The layers of a `.sig` / `.att` manifest, as descriptors.
pub fn layers_of(manifest: &[u8]) -> Vec<Value> {
    serde_json::from_slice::<Value>(manifest)
        .ok()
        .and_then(|m| m.get("layers").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Whether two layer descriptors are one signature: the same blob, the same annotations.
fn same_layer(a: &Value, b: &Value) -> bool {
    let annotations = |d: &Value| -> Option<BTreeMap<String, String>> {
        d.get("annotations")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
    };
    a.get("digest") == b.get("digest") && annotations(a) == annotations(b)
}

/// The manifest and config blob to write when the layer descriptors `incoming` (another
/// registry's signatures of the same image, say) join those of `current`; `None` when every one
/// is there already.
pub fn with_descriptors(current: Option<&[u8]>, incoming: &[Value]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut layers: Vec<Value> = current.map(layers_of).unwrap_or_default();
    let before = layers.len();
    for d in incoming {
        if !layers.iter().any(|l| same_layer(l, d)) {
            layers.push(d.clone());
        }
    }
    if layers.len() == before {
        return None;
    }
    // cosign's config: an empty image whose diff_ids are the layers' digests.
    let diff_ids: Vec<&Value> = layers.iter().filter_map(|d| d.get("digest")).collect();
    let config = crate::image::canonical_json(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }));
    let manifest = crate::image::canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": config.len(),
            "digest": Digest::of(&config).to_string(),
        },
        "layers": layers,
    }));
    Some((manifest, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(blob: &[u8], sig: &str) -> StoredLayer {
        StoredLayer {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            blob: blob.to_vec(),
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.into(), sig.into())]),
        }
    }

    #[test]
    fn a_layer_is_added_once_and_others_are_kept() {
        let (first, config) = with_layer(None, &layer(b"p", "A")).unwrap();
        let m: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(m["layers"][0]["annotations"][SIGNATURE_ANNOTATION], "A");
        assert_eq!(m["config"]["digest"], Digest::of(&config).to_string());
        assert_eq!(with_layer(Some(&first), &layer(b"p", "A")), None);
        // Another key's signature of the same payload is another layer.
        let (second, _) = with_layer(Some(&first), &layer(b"p", "B")).unwrap();
        let m: Value = serde_json::from_slice(&second).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 2);
        assert_eq!(m["layers"][0]["annotations"][SIGNATURE_ANNOTATION], "A");
        let image = Digest::of(b"image");
        assert_eq!(signature_tag(&image), format!("sha256-{}.sig", image.hex()));
        assert_eq!(
            attestation_tag(&image),
            format!("sha256-{}.att", image.hex())
        );
    }
}
