//! The `--json` document: what a push did, for machines (its shape is documented in
//! docs/usage.md; field names are camelCase and never removed).

use std::path::PathBuf;

use serde::Serialize;

use nixpush::digest::Digest;
use nixpush::outcome::{LayerAction, PushOutcome};
use nixpush::progress::Warning;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    images: Vec<ImageDoc<'a>>,
    /// Each `--mirror` of each push: its reference, or why it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mirrors: Vec<MirrorDoc<'a>>,
    /// What went wrong without failing the push, in the order it happened.
    warnings: Vec<WarningDoc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MirrorDoc<'a> {
    destination: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WarningDoc {
    kind: &'static str,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageDoc<'a> {
    destination: &'a str,
    reference: &'a str,
    installable: &'a str,
    platform: &'a str,
    manifest_digest: &'a Digest,
    config_digest: &'a Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_digest: Option<&'a Digest>,
    tags: &'a [String],
    /// The tag already named exactly this image: nothing was sent.
    unchanged: bool,
    /// The artifact manifest of the SBOM attached to the image (`--sbom`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sbom_digest: Option<&'a Digest>,
    /// The SLSA provenance attached to the image (`--provenance`).
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<ProvenanceDoc<'a>>,
    /// The registry image it was put on (`--base`), `name@digest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    /// Every manifest of the push signed (`--sign-key`), with its `.sig` tag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    signatures: Vec<SignatureDoc<'a>>,
    layers: Vec<LayerDoc<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProvenanceDoc<'a> {
    digest: &'a Digest,
    signed: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignatureDoc<'a> {
    subject: &'a Digest,
    tag: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerDoc<'a> {
    digest: &'a Digest,
    size: u64,
    diff_id: &'a Digest,
    store_paths: &'a [PathBuf],
    action: &'static str,
    bytes_sent: u64,
}

/// The `--json` document for every destination pushed: one `images` entry per image (a
/// multi-arch push gives one per platform, sharing `indexDigest` and `reference`), and the
/// run's `warnings`.
pub fn json_document(outcomes: &[PushOutcome], warnings: &[Warning]) -> String {
    let images = outcomes
        .iter()
        .flat_map(|o| {
            o.images.iter().map(move |image| ImageDoc {
                destination: &o.destination,
                reference: &o.reference,
                installable: &image.installable,
                platform: &image.platform,
                manifest_digest: &image.manifest_digest,
                config_digest: &image.config_digest,
                index_digest: o.index_digest.as_ref(),
                tags: &o.tags,
                unchanged: o.unchanged,
                sbom_digest: image.sbom_digest.as_ref(),
                provenance: image
                    .provenance
                    .as_ref()
                    .map(|(digest, signed)| ProvenanceDoc {
                        digest,
                        signed: *signed,
                    }),
                base: image.base.as_deref(),
                signatures: o
                    .signatures
                    .iter()
                    .map(|(subject, tag)| SignatureDoc { subject, tag })
                    .collect(),
                layers: image
                    .layers
                    .iter()
                    .map(|l| LayerDoc {
                        digest: &l.digests.digest,
                        size: l.digests.size,
                        diff_id: &l.digests.diff_id,
                        store_paths: &l.store_paths,
                        action: action_name(&l.action),
                        bytes_sent: l.bytes_sent,
                    })
                    .collect(),
            })
        })
        .collect();
    let warnings = warnings
        .iter()
        .map(|w| WarningDoc {
            kind: w.kind(),
            message: w.to_string(),
        })
        .collect();
    let mirrors = outcomes
        .iter()
        .flat_map(|o| &o.mirrors)
        .map(|m| MirrorDoc {
            destination: &m.destination,
            reference: m.result.as_ref().ok().map(String::as_str),
            error: m.result.as_ref().err().map(String::as_str),
        })
        .collect();
    serde_json::to_string_pretty(&Document {
        images,
        mirrors,
        warnings,
    })
    .expect("the outcome always serialises")
}

fn action_name(action: &LayerAction) -> &'static str {
    match action {
        LayerAction::Skipped => "skipped",
        LayerAction::Pushed => "pushed",
        LayerAction::Mounted => "mounted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixpush::layer::{LayerDigests, LayerKey};
    use nixpush::outcome::{ImageOutcome, LayerReport};

    #[test]
    fn one_entry_per_platform_image_sharing_the_index() {
        let layer = LayerReport {
            key: LayerKey::parse(&"a".repeat(64)).unwrap(),
            digests: LayerDigests {
                diff_id: Digest::of(b"tar"),
                digest: Digest::of(b"blob"),
                size: 4,
                annotations: Default::default(),
            },
            store_paths: vec!["/nix/store/aaa-x".into()],
            action: LayerAction::Mounted,
            bytes_sent: 0,
            fixed_media_type: None,
        };
        let image = |p: &str| ImageOutcome {
            installable: format!(".#{p}"),
            platform: p.to_owned(),
            manifest_digest: Digest::of(p.as_bytes()),
            config_digest: Digest::of(b"config"),
            layers: vec![layer.clone()],
            sbom_digest: None,
            provenance: None,
            base: None,
        };
        let outcome = PushOutcome {
            destination: "r.io/a:1".into(),
            reference: "r.io/a@sha256:x".into(),
            digest: Digest::of(b"index"),
            tags: vec!["1".into()],
            to_stdout: false,
            images: vec![image("linux/amd64"), image("linux/arm64")],
            index_digest: Some(Digest::of(b"index")),
            unchanged: true,
            signatures: Vec::new(),
            mirrors: Vec::new(),
        };
        let warnings = [Warning::CachedDigestWrong { layer: 3 }];
        let v: serde_json::Value =
            serde_json::from_str(&json_document(&[outcome], &warnings)).unwrap();
        let images = v["images"].as_array().unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[1]["platform"], "linux/arm64");
        assert_eq!(images[0]["indexDigest"], images[1]["indexDigest"]);
        assert_eq!(images[0]["layers"][0]["action"], "mounted");
        assert_eq!(images[0]["layers"][0]["storePaths"][0], "/nix/store/aaa-x");
        assert_eq!(images[0]["layers"][0]["bytesSent"], 0);
        assert_eq!(images[0]["tags"][0], "1");
        assert_eq!(images[1]["unchanged"], true);
        // Warnings apart from the images, each with a kind a machine can match.
        assert_eq!(v["warnings"][0]["kind"], "cached-digest-wrong");
        assert_eq!(
            v["warnings"][0]["message"],
            "layer 3: the cached digest is not what the store gives; streaming it"
        );
    }
}
