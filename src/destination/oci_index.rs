//! The `index.json` of an OCI image layout: which manifest each ref name (tag) points at. A
//! layout may hold other images (skopeo, umoci, an earlier nixpush run): their entries are kept
//! as they are, unknown fields included, and only entries with one of the ref names being
//! written are replaced.
//!
//! It also tells which layers the layout already holds: the layer descriptors of nixpush's
//! manifests carry their layer key, so an unchanged layer is found without reading the store.
//! The layout is the destination the user named, trusted as the destination repository is
//! trusted in a registry push.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::blob_dir::BlobDir;
use crate::digest::Digest;
use crate::image::{OCI_INDEX, OCI_MANIFEST};
use crate::known_layers::LearntLayers;

/// Annotation of an index entry: the name (tag) it is known by in the layout.
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// A manifest larger than this is not read for known layers (registries refuse larger ones).
const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// `existing` (the layout's current `index.json`, if any) with the manifest `digest` of `size`
/// bytes recorded under each of `tags`, or untagged when there are none. Fails, rather than
/// drop what it holds, when `existing` is not an index.
pub(crate) fn merged_index(
    existing: Option<&[u8]>,
    digest: &Digest,
    size: u64,
    tags: &[String],
) -> Result<Vec<u8>, serde_json::Error> {
    merged_index_of(existing, OCI_MANIFEST, digest, size, tags, None)
}

/// [`merged_index`] for a document of `media_type` (an image index, for a multi-arch image),
/// with its `artifactType` when it is an artifact (an SBOM attached to an image).
pub(crate) fn merged_index_of(
    existing: Option<&[u8]>,
    media_type: &str,
    digest: &Digest,
    size: u64,
    tags: &[String],
    artifact_type: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    use serde::de::Error as _;
    let mut index = match existing {
        Some(bytes) => serde_json::from_slice::<Value>(bytes)?,
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX }),
    };
    let Some(fields) = index.as_object_mut() else {
        return Err(serde_json::Error::custom("expected a JSON object"));
    };
    let manifests = fields
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(manifests) = manifests.as_array_mut() else {
        return Err(serde_json::Error::custom("`manifests` is not an array"));
    };
    let descriptor = |tag: Option<&String>| {
        let mut entry = Map::new();
        entry.insert("mediaType".into(), media_type.into());
        entry.insert("digest".into(), digest.to_string().into());
        entry.insert("size".into(), size.into());
        if let Some(t) = artifact_type {
            entry.insert("artifactType".into(), t.into());
        }
        if let Some(tag) = tag {
            entry.insert(
                "annotations".into(),
                json!({ REF_NAME_ANNOTATION: tag.as_str() }),
            );
        }
        Value::Object(entry)
    };
    if tags.is_empty() {
        // Untagged: one entry per manifest, however often it is written.
        manifests.retain(|m| ref_name(m).is_some() || m["digest"] != digest.to_string());
        manifests.push(descriptor(None));
    } else {
        manifests.retain(|m| !ref_name(m).is_some_and(|name| tags.iter().any(|t| t == name)));
        manifests.extend(tags.iter().map(|t| descriptor(Some(t))));
    }
    Ok(serde_json::to_vec(&index).expect("a JSON value always serialises"))
}

/// The ref name of an index entry, if it has one.
fn ref_name(entry: &Value) -> Option<&str> {
    entry["annotations"][REF_NAME_ANNOTATION].as_str()
}

/// The layers named by the image manifests of the layout at `layout` whose descriptors carry
/// nixpush's layer annotations. Whatever cannot be read teaches nothing.
pub(crate) fn known_layers(layout: &Path, blobs: &BlobDir) -> LearntLayers {
    let mut known = LearntLayers::default();
    let Ok(bytes) = std::fs::read(layout.join("index.json")) else {
        return known;
    };
    let Ok(index) = serde_json::from_slice::<Value>(&bytes) else {
        return known;
    };
    let source = layout.display().to_string();
    // Manifests, and those an image index in the layout names (a multi-arch image).
    let mut entries: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut i = 0;
    while i < entries.len() && i < MAX_LEARNED {
        let entry = &entries[i];
        i += 1;
        let is_index = entry["mediaType"] == OCI_INDEX;
        if entry["mediaType"] != OCI_MANIFEST && !is_index {
            continue;
        }
        let Some(digest) = entry["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            continue;
        };
        let mut document = Vec::new();
        let read = std::fs::File::open(blobs.path(&digest))
            .and_then(|f| f.take(MAX_MANIFEST_SIZE).read_to_end(&mut document));
        // Only a document whose bytes are its name is believed.
        if read.is_err() || Digest::of(&document) != digest {
            continue;
        }
        if is_index {
            if let Ok(nested) = serde_json::from_slice::<Value>(&document) {
                entries.extend(nested["manifests"].as_array().cloned().unwrap_or_default());
            }
        } else {
            known.learn(&document, &source);
        }
    }
    known
}

/// Most documents of a layout read to learn its layers.
const MAX_LEARNED: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(index: &[u8]) -> Vec<(Option<String>, String)> {
        let v: Value = serde_json::from_slice(index).unwrap();
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    ref_name(m).map(str::to_owned),
                    m["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_index_names_the_manifest_under_each_tag() {
        let d = Digest::of(b"m1");
        let out = merged_index(None, &d, 2, &["v1".into(), "latest".into()]).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(
            v["manifests"][0],
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": d.to_string(),
                "size": 2,
                "annotations": { REF_NAME_ANNOTATION: "v1" },
            })
        );
        assert_eq!(
            entries(&out),
            vec![
                (Some("v1".into()), d.to_string()),
                (Some("latest".into()), d.to_string())
            ]
        );
    }

    #[test]
    fn other_tags_and_unknown_fields_are_kept_and_the_same_tag_is_replaced() {
        let (old, new) = (Digest::of(b"old"), Digest::of(b"new"));
        let existing = format!(
            r#"{{"schemaVersion":2,"manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{old}","size":3,
                  "platform":{{"os":"linux","architecture":"arm64"}},
                  "annotations":{{"{REF_NAME_ANNOTATION}":"other"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{old}","size":3,
                  "annotations":{{"{REF_NAME_ANNOTATION}":"v1"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{old}","size":3}}
            ],"annotations":{{"keep":"me"}}}}"#
        );
        let out = merged_index(Some(existing.as_bytes()), &new, 3, &["v1".into()]).unwrap();
        assert_eq!(
            entries(&out),
            vec![
                (Some("other".into()), old.to_string()),
                (None, old.to_string()),
                (Some("v1".into()), new.to_string()),
            ]
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "arm64");
        assert_eq!(v["annotations"]["keep"], "me");
        // An index written by skopeo has no mediaType: none is added.
        assert!(v.get("mediaType").is_none());

        // Writing the same untagged manifest twice leaves one entry for it.
        let again = merged_index(Some(&out), &old, 3, &[]).unwrap();
        assert_eq!(
            entries(&again),
            vec![
                (Some("other".into()), old.to_string()),
                (Some("v1".into()), new.to_string()),
                (None, old.to_string()),
            ]
        );
    }

    #[test]
    fn something_that_is_not_an_index_is_refused_not_overwritten() {
        let d = Digest::of(b"m");
        for bad in [&b"[1,2]"[..], b"{\"manifests\":{}}", b"{trunc"] {
            assert!(merged_index(Some(bad), &d, 1, &["t".into()]).is_err());
        }
    }
}
