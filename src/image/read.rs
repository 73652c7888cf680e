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
mod tests {
    use super::*;
    use crate::image::media_types::OCI_CONFIG;

    fn digest(s: &str) -> Digest {
        Digest::of(s.as_bytes())
    }

    #[test]
    fn reads_store_paths_comments() {
        assert_eq!(
            parse_store_paths_comment("store paths: ['/nix/store/aaa-x', '/nix/store/bbb-y']"),
            Some(vec!["/nix/store/aaa-x".into(), "/nix/store/bbb-y".into()])
        );
        assert_eq!(
            parse_store_paths_comment("store paths: [\"/nix/store/aaa-x\"]"),
            Some(vec!["/nix/store/aaa-x".into()])
        );
        assert_eq!(parse_store_paths_comment("store paths: []"), Some(vec![]));
        // Another store directory is still a list of absolute paths.
        assert_eq!(
            parse_store_paths_comment("store paths: ['/gnu/store/x']"),
            Some(vec!["/gnu/store/x".into()])
        );
        for other in [
            "",
            "buildkit.dockerfile.v0",
            "store paths: ",
            "store paths: ['/nix/store/a'",
            "store paths: [/nix/store/a]",
            "store paths: ['nix/store/a']",
            "store paths: ['/nix/store/a\"]",
            "store paths: ['/nix/store/a', ]",
            "store paths: ['/nix/store/a b']",
            "Store Paths: ['/nix/store/a']",
        ] {
            assert_eq!(parse_store_paths_comment(other), None, "{other:?}");
        }
    }

    #[test]
    fn pairs_history_with_layers_or_says_nothing() {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:01Z",
               "config":{{"Entrypoint":["/bin/app"],"Cmd":null,"Env":[],"WorkingDir":"","Labels":{{"a":"b"}}}},
               "rootfs":{{"type":"layers","diff_ids":["{}","{}"]}},
               "history":[{{"created_by":"ENV x","empty_layer":true}},
                          {{"comment":"store paths: ['/nix/store/a-x']"}},
                          {{"comment":"COPY . /"}}]}}"#,
            digest("1"),
            digest("2")
        );
        let c = ConfigSummary::parse(config.as_bytes()).unwrap();
        assert_eq!(c.platform.as_ref().unwrap().to_string(), "linux/amd64");
        assert_eq!(c.created.as_deref(), Some("1970-01-01T00:00:01Z"));
        assert_eq!(
            c.run.keys().collect::<Vec<_>>(),
            ["Entrypoint", "Labels"],
            "null and empty fields are left out"
        );
        assert_eq!(c.store_paths(0, 2), Some(vec!["/nix/store/a-x".into()]));
        assert_eq!(c.store_paths(1, 2), None, "another comment");
        assert_eq!(c.diff_id(1, 2), Some(digest("2")));
        // One layer more than the history says: no pairing at all.
        assert_eq!(c.store_paths(0, 3), None);
        assert_eq!(c.diff_id(0, 3), None);
    }

    #[test]
    fn odd_configs_say_less_and_garbage_is_an_error() {
        let c = ConfigSummary::parse(
            br#"{"created":5,"os":"linux","history":"x","rootfs":{"diff_ids":["md5:1"]},"config":[]}"#,
        )
        .unwrap();
        assert_eq!(c.created, None);
        assert_eq!(c.platform.unwrap().to_string(), "linux/unknown");
        assert!(c.run.is_empty() && c.layer_comments.is_empty());
        assert_eq!(c.diff_ids, vec![None]);
        assert_eq!(
            ConfigSummary::parse(b"{}").unwrap(),
            ConfigSummary::default()
        );
        assert!(ConfigSummary::parse(b"[1]").is_err());
        assert!(ConfigSummary::parse(b"<html>").is_err());
    }

    #[test]
    fn reads_manifests_of_both_kinds() {
        let (c, l) = (digest("config"), digest("layer"));
        for media_type in [Some(OCI_MANIFEST), Some(DOCKER_MANIFEST), None] {
            let field = media_type
                .map(|t| format!(r#""mediaType":"{t}","#))
                .unwrap_or_default();
            let json = format!(
                r#"{{"schemaVersion":2,{field}"config":{{"mediaType":"{OCI_CONFIG}","digest":"{c}","size":10}},
                   "layers":[{{"mediaType":"x","digest":"{l}","size":5,"annotations":{{"k":"v"}},"urls":["u"]}}],
                   "annotations":{{"a":"b"}}}}"#
            );
            let Document::Image(m) = Document::parse(json.as_bytes()).unwrap() else {
                panic!("not read as an image: {json}")
            };
            assert_eq!(m.media_type, media_type.unwrap_or(OCI_MANIFEST));
            assert_eq!((m.config.digest, m.config.size), (c.clone(), 10));
            assert_eq!(m.layers.len(), 1);
            assert_eq!(m.layers[0].annotations["k"], "v");
            assert_eq!(m.annotations["a"], "b");
        }
    }

    #[test]
    fn reads_indexes_and_picks_platforms() {
        let (a, b, u) = (digest("a"), digest("b"), digest("u"));
        for media_type in [Some(OCI_INDEX), Some(DOCKER_MANIFEST_LIST), None] {
            let field = media_type
                .map(|t| format!(r#""mediaType":"{t}","#))
                .unwrap_or_default();
            let json = format!(
                r#"{{"schemaVersion":2,{field}"manifests":[
                    {{"mediaType":"{OCI_MANIFEST}","digest":"{a}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
                    {{"mediaType":"{OCI_MANIFEST}","digest":"{b}","size":2,"platform":{{"os":"linux","architecture":"arm64","os.features":["x"]}}}},
                    {{"mediaType":"{OCI_MANIFEST}","digest":"{u}","size":3,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
            );
            let Document::Index(ix) = Document::parse(json.as_bytes()).unwrap() else {
                panic!("not read as an index: {json}")
            };
            assert_eq!(ix.media_type, media_type.unwrap_or(OCI_INDEX));
            let pick = |s: &str| {
                ix.select(&PlatformSpec::parse(s).unwrap())
                    .map(|m| m.digest.clone())
            };
            assert_eq!(pick("linux/amd64"), Some(a.clone()));
            assert_eq!(pick("linux/arm64"), Some(b.clone()));
            assert_eq!(pick("linux/arm64/v8"), Some(b.clone()), "arm64 means v8");
            assert_eq!(pick("linux/arm64/v9"), None);
            assert_eq!(pick("linux/amd64/v2"), None);
            assert_eq!(pick("windows/amd64"), None);
            assert_eq!(
                ix.platforms(),
                ["linux/amd64", "linux/arm64", "unknown/unknown"]
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_manifest() {
        for bad in [
            &b"<html>"[..],
            br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#,
            br#"{"schemaVersion":2}"#,
            br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
            br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
            br#"{"mediaType":"application/vnd.cncf.helm.chart","config":{}}"#,
            br#"{"manifests":[{"digest":"md5:x","size":1}]}"#,
        ] {
            assert!(
                Document::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let schema1 = Document::parse(br#"{"schemaVersion":1}"#).unwrap_err();
        assert!(schema1.contains("schema 1"), "{schema1}");
    }
}
