//! Reading what a registry holds, tolerantly: image manifests and indexes (OCI and Docker), the
//! parts of an image config that `inspect` shows, and the store paths that nixpush and nixpkgs'
//! dockerTools name in each layer's history entry. An image that says less is shown with less:
//! a missing or unexpected field is left out, never guessed and never an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::digest::Digest;
use crate::nix::{Platform, PlatformSpec};

/// The config fields shown, in the order shown; a field absent, null or empty is left out.
pub const SUMMARY_KEYS: [&str; 7] = [
    "Entrypoint",
    "Cmd",
    "Env",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
];

/// The prefix of the history comment nixpkgs' `stream_layered_image.py` writes for each layer,
/// a Python list repr: `store paths: ['/nix/store/aaa-x', '/nix/store/bbb-y']`. nixpush writes
/// the same.
const STORE_PATHS_COMMENT: &str = "store paths: [";

/// A content descriptor as a manifest or index writes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DescriptorDoc {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Index entries only.
    #[serde(default)]
    pub platform: Option<PlatformDoc>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A platform as an index entry or an image config states it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct PlatformDoc {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformDoc {
    /// Whether `spec` names this platform. `arm64` without a variant is `arm64/v8`, as
    /// containerd normalises it.
    pub fn matches(&self, spec: &PlatformSpec) -> bool {
        let variant = match (self.architecture.as_str(), &self.variant) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.clone(),
        };
        let spec = PlatformSpec {
            variant: match (spec.architecture.as_str(), &spec.variant) {
                ("arm64", None) => None,
                (_, v) => v.clone(),
            },
            ..spec.clone()
        };
        spec.matches(&Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant,
        })
    }
}

impl std::fmt::Display for PlatformDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |s: &str| if s.is_empty() { "unknown" } else { s }.to_owned();
        write!(f, "{}/{}", part(&self.os), part(&self.architecture))?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// An image manifest: a config and layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: DescriptorDoc,
    pub layers: Vec<DescriptorDoc>,
    pub annotations: BTreeMap<String, String>,
}

/// An index (OCI) or manifest list (Docker): one manifest per platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDoc {
    pub media_type: String,
    pub manifests: Vec<DescriptorDoc>,
    pub annotations: BTreeMap<String, String>,
}

impl IndexDoc {
    /// The first entry for `spec`.
    pub fn select(&self, spec: &PlatformSpec) -> Option<&DescriptorDoc> {
        self.manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(spec)))
    }

    /// The platforms the index has, in its order, for a message.
    pub fn platforms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.manifests {
            let p = m
                .platform
                .as_ref()
                .map_or_else(|| "no platform".to_owned(), ToString::to_string);
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// What a manifest fetched from a registry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    Image(ImageManifest),
    Index(IndexDoc),
}

impl Document {
    /// Reads an OCI image manifest or index, or a Docker schema 2 manifest or manifest list.
    /// The `mediaType` field decides; without one (it is optional in OCI documents) the shape
    /// does. The error says why the bytes are none of these, without quoting them.
    pub fn parse(bytes: &[u8]) -> Result<Document, String> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "schemaVersion")]
            schema_version: Option<u64>,
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            config: Option<DescriptorDoc>,
            layers: Option<Vec<DescriptorDoc>>,
            manifests: Option<Vec<DescriptorDoc>>,
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| format!("it is not the JSON of a manifest ({e})"))?;
        if raw.schema_version == Some(1) {
            return Err("Docker schema 1 manifests are not supported".into());
        }
        let media_type = match raw.media_type {
            Some(t) => t,
            None if raw.manifests.is_some() => OCI_INDEX.to_owned(),
            None if raw.config.is_some() => OCI_MANIFEST.to_owned(),
            None => return Err("it has no mediaType, config or manifests".into()),
        };
        match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => Ok(Document::Image(ImageManifest {
                config: raw
                    .config
                    .ok_or_else(|| format!("this {media_type} has no config"))?,
                layers: raw.layers.unwrap_or_default(),
                media_type,
                annotations: raw.annotations,
            })),
            OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(Document::Index(IndexDoc {
                manifests: raw
                    .manifests
                    .ok_or_else(|| format!("this {media_type} has no manifests"))?,
                media_type,
                annotations: raw.annotations,
            })),
            other => Err(format!("its media type {other:?} is not one nixpush reads")),
        }
    }
}

/// What `inspect` shows of an image config, read field by field so that an odd field costs
/// only itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigSummary {
    pub platform: Option<PlatformDoc>,
    pub created: Option<String>,
    /// The [`SUMMARY_KEYS`] present in the config's `config` object.
    pub run: BTreeMap<String, serde_json::Value>,
    /// `rootfs.diff_ids`, one per layer (`None`: not a valid sha256 digest).
    pub diff_ids: Vec<Option<Digest>>,
    /// The history entries that made a layer (`empty_layer` not true), with their comment.
    pub layer_comments: Vec<Option<String>>,
}

impl ConfigSummary {
    /// Reads an image config; only bytes that are not a JSON object are an error.
    pub fn parse(bytes: &[u8]) -> Result<ConfigSummary, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON ({e})"))?;
        let doc = value
            .as_object()
            .ok_or_else(|| "it is not a JSON object".to_owned())?;
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let platform = match (text(doc.get("os")), text(doc.get("architecture"))) {
            (None, None) => None,
            (os, architecture) => Some(PlatformDoc {
                os: os.unwrap_or_default(),
                architecture: architecture.unwrap_or_default(),
                variant: text(doc.get("variant")),
            }),
        };
        let mut run = BTreeMap::new();
        if let Some(config) = doc.get("config").and_then(|c| c.as_object()) {
            for key in SUMMARY_KEYS {
                match config.get(key) {
                    None | Some(serde_json::Value::Null) => {}
                    Some(serde_json::Value::String(s)) if s.is_empty() => {}
                    Some(serde_json::Value::Array(a)) if a.is_empty() => {}
                    Some(serde_json::Value::Object(o)) if o.is_empty() => {}
                    Some(v) => {
                        run.insert(key.to_owned(), v.clone());
                    }
                }
            }
        }
        let diff_ids = doc
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(|d| d.as_array())
            .map(|ids| {
                ids.iter()
                    .map(|d| d.as_str().and_then(|d| d.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        let layer_comments = doc
            .get("history")
            .and_then(|h| h.as_array())
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.get("empty_layer").and_then(|v| v.as_bool()) != Some(true))
                    .map(|e| text(e.get("comment")))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ConfigSummary {
            platform,
            created: text(doc.get("created")),
            run,
            diff_ids,
            layer_comments,
        })
    }

    /// The diff_id of layer `i`, when the config has one per layer.
    pub fn diff_id(&self, i: usize, layers: usize) -> Option<Digest> {
        if self.diff_ids.len() != layers {
            return None;
        }
        self.diff_ids[i].clone()
    }

    /// The store paths behind layer `i` of `layers`, as its history entry names them. History
    /// entries that made a layer match layers one to one, in order; when their count differs
    /// the pairing is unknown, and nothing is said.
    pub fn store_paths(&self, i: usize, layers: usize) -> Option<Vec<String>> {
        if self.layer_comments.len() != layers {
            return None;
        }
        self.layer_comments[i]
            .as_deref()
            .and_then(parse_store_paths_comment)
    }

    /// The base image member behind layer `i` of `layers`: nixpkgs names a `fromImage` layer
    /// by its member in the base archive (`store paths: ['<hex>/layer.tar']`).
    pub fn base_member(&self, i: usize, layers: usize) -> Option<String> {
        if self.layer_comments.len() != layers {
            return None;
        }
        let list = self.layer_comments[i]
            .as_deref()?
            .trim()
            .strip_prefix(STORE_PATHS_COMMENT)?
            .strip_suffix(']')?
            .trim();
        let quote = list.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let member = list.strip_prefix(quote)?.strip_suffix(quote)?;
        let plain = !member.is_empty()
            && !member.starts_with('/')
            && !member.contains(['\'', '"', '\\', ','])
            && !member.chars().any(char::is_whitespace);
        plain.then(|| member.to_owned())
    }
}

/// The store paths of a history comment `store paths: ['/nix/store/a', '/nix/store/b']` (a
/// Python list repr; an empty list is a layer without store paths). Any other comment, or an
/// item that is not a quoted absolute path, gives `None`.
pub fn parse_store_paths_comment(comment: &str) -> Option<Vec<String>> {
    let list = comment
        .trim()
        .strip_prefix(STORE_PATHS_COMMENT)?
        .strip_suffix(']')?;
    if list.trim().is_empty() {
        return Some(Vec::new());
    }
    // Store path names hold no quote, comma, space or backslash, so a plain split is exact.
    list.split(',')
        .map(|item| {
            let item = item.trim();
            let quote = item.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let path = item.strip_prefix(quote)?.strip_suffix(quote)?;
            let clean = path.starts_with('/')
                && !path.contains(['\'', '"', '\\'])
                && !path.chars().any(char::is_whitespace);
            clean.then(|| path.to_owned())
        })
        .collect()
}

/// The manifest digests an image index names (none for anything else).
pub fn index_children(bytes: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: Digest,
    }
    serde_json::from_slice::<Index>(bytes)
        .map(|i| {
            i.manifests
                .into_iter()
                .map(|m| m.digest.to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
