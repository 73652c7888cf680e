//! An artifact attached to an image the OCI 1.1 way: an OCI *image* manifest whose
//! `artifactType` says what it is, whose config is the empty descriptor (`{}`), whose one layer
//! is the artifact's blob, and whose `subject` is the image manifest it belongs to. No
//! annotation, no time: the same artifact of the same image has the same digest anywhere. And the
//! referrers index the distribution spec's fallback tag (`sha256-<hex>`) holds on a registry
//! without the referrers API.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::media_types::{OCI_INDEX, OCI_MANIFEST};
use crate::digest::Digest;

/// The empty config's media type and bytes.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_BLOB: &[u8] = b"{}";

/// A descriptor's three facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Described {
    fn to_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.size})
    }
}

/// The artifact manifest of `blob` (of `artifact_type`) about `subject`.
pub fn artifact_manifest(artifact_type: &str, blob: &Described, subject: &Described) -> Vec<u8> {
    artifact_manifest_annotated(artifact_type, blob, &BTreeMap::new(), subject)
}

/// [`artifact_manifest`] with annotations on the blob's descriptor (a cosign signature's
/// `dev.cosignproject.cosign/signature`); none: no `annotations` key at all.
pub fn artifact_manifest_annotated(
    artifact_type: &str,
    blob: &Described,
    annotations: &BTreeMap<String, String>,
    subject: &Described,
) -> Vec<u8> {
    let empty = Described {
        media_type: EMPTY_MEDIA_TYPE.to_owned(),
        digest: Digest::of(EMPTY_BLOB),
        size: EMPTY_BLOB.len() as u64,
    };
    let mut layer = blob.to_json();
    if !annotations.is_empty() {
        layer["annotations"] = json!(annotations);
    }
    super::canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.to_json(),
        "layers": [layer],
        "subject": subject.to_json(),
    }))
}

/// The fallback tag of `subject`'s referrers: `sha256-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// `index` (the fallback tag's current index, if any) with `artifact` (an artifact manifest of
/// `artifact_type`) in it; `None` when it is there already.
pub fn with_referrer(
    index: Option<&[u8]>,
    artifact: &Described,
    artifact_type: &str,
) -> Option<Vec<u8>> {
    let mut manifests: Vec<Value> = index
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let digest = artifact.digest.to_string();
    if manifests
        .iter()
        .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
    {
        return None;
    }
    let mut entry = artifact.to_json();
    entry["artifactType"] = json!(artifact_type);
    manifests.push(entry);
    Some(super::canonical_json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(bytes: &[u8], media_type: &str) -> Described {
        Described {
            media_type: media_type.into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn the_artifact_names_its_subject_and_the_empty_config() {
        let subject = described(b"image", OCI_MANIFEST);
        let sbom = described(b"sbom", "application/spdx+json");
        let m: Value =
            serde_json::from_slice(&artifact_manifest("application/spdx+json", &sbom, &subject))
                .unwrap();
        assert_eq!(m["artifactType"], "application/spdx+json");
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["subject"]["digest"], subject.digest.to_string());
        assert!(m.get("annotations").is_none());
    }

    #[test]
    fn the_fallback_index_gains_an_entry_once() {
        let a = described(b"a", OCI_MANIFEST);
        let b = described(b"b", OCI_MANIFEST);
        let first = with_referrer(None, &a, "application/spdx+json").unwrap();
        assert_eq!(
            with_referrer(Some(&first), &a, "application/spdx+json"),
            None
        );
        let second = with_referrer(Some(&first), &b, "application/vnd.cyclonedx+json").unwrap();
        let v: Value = serde_json::from_slice(&second).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(v["manifests"][0]["artifactType"], "application/spdx+json");
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(
            referrers_tag(&a.digest),
            format!("sha256-{}", a.digest.hex())
        );
    }
}
