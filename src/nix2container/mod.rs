//! Images nix2container's `buildImage` describes: no tarball, but an image JSON (`version` 1,
//! `image-config`, `layers` with their store paths and precomputed digests, `arch`, `created`),
//! which its `copyToRegistry` pushes through a patched skopeo. Recognised by content, never by
//! name; read into the layers nixpush streams (nix2container's tar of each layer's paths, or a
//! `layer-path` file as it is) and the config bytes its `nix:` transport would hand skopeo.

mod go_config;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Digest;
use crate::layer::{go_regex, PathOptions, TreeSpec};

/// Most bytes of an image JSON read (one with thousands of store paths is a few MiB).
const MAX_IMAGE_JSON: u64 = 64 * 1024 * 1024;
/// The media type nix2container gives a layer it makes from store paths.
pub const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// What an image JSON says, ready to push.
#[derive(Clone, Debug)]
pub struct Nix2ContainerImage {
    /// The image JSON's store path.
    pub path: PathBuf,
    pub layers: Vec<Nix2ContainerLayer>,
    /// The JSON's `arch` (GOARCH, as OCI names architectures).
    pub arch: String,
    /// The JSON's `created`, as written.
    pub created: Option<String>,
    /// The config blob, byte for byte as nix2container's transport makes it.
    pub config: Vec<u8>,
}

/// One layer of the image JSON.
#[derive(Clone, Debug)]
pub struct Nix2ContainerLayer {
    /// The JSON's `digest`: the blob as nix2container sends it.
    pub digest: Digest,
    /// The JSON's `diff_ids`: the sha256 of its tar.
    pub diff_id: Digest,
    pub size: u64,
    pub content: LayerSource,
}

/// Where a layer's tar comes from.
#[derive(Clone, Debug)]
pub enum LayerSource {
    /// nix2container's file tree of these store paths.
    Paths(TreeSpec),
    /// A file in the store (`layer-path`): a tar, or a compressed one (a `fromImage` base's).
    File(PathBuf),
}

/// Why an image JSON cannot be pushed.
#[derive(Debug, thiserror::Error)]
pub enum Nix2ContainerError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} looks like nix2container's image JSON but does not read as one: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("{} is nix2container's image JSON version {version}; nixpush reads version 1", path.display())]
    Version { path: PathBuf, version: i64 },
    #[error("nix2container's image JSON: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
struct ImageJson {
    version: i64,
    #[serde(rename = "image-config", default)]
    image_config: serde_json::Value,
    /// `null` when nix2container wrote an image without layers.
    #[serde(default)]
    layers: Option<Vec<LayerJson>>,
    #[serde(default)]
    arch: String,
    #[serde(default)]
    created: Option<String>,
}

#[derive(Deserialize)]
struct LayerJson {
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    diff_ids: String,
    #[serde(default)]
    paths: Option<Vec<PathJson>>,
    #[serde(rename = "layer-path", default)]
    layer_path: String,
    #[serde(rename = "History", default)]
    history: serde_json::Value,
}

#[derive(Deserialize)]
struct PathJson {
    path: PathBuf,
    #[serde(default)]
    options: Option<PathOptions>,
}

/// The image `path` describes, if it is nix2container's image JSON: a file holding a JSON
/// object with `version`, `image-config`, `layers` and `arch`. Anything else is `None`.
pub fn read_image(path: &Path) -> Result<Option<Nix2ContainerImage>, Nix2ContainerError> {
    let read_err = |source| Nix2ContainerError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() || meta.len() > MAX_IMAGE_JSON {
        return Ok(None);
    }
    // A file that does not open with `{` is not read further (a package's one big binary).
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = vec![0u8; 512];
    let n = file.read(&mut bytes).map_err(read_err)?;
    bytes.truncate(n);
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(None);
    }
    file.take(MAX_IMAGE_JSON)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&bytes) else {
        return Ok(None);
    };
    if !["version", "image-config", "layers", "arch"]
        .iter()
        .all(|k| object.contains_key(*k))
    {
        return Ok(None);
    }
    let malformed = |reason: String| Nix2ContainerError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let json: ImageJson = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| malformed(e.to_string()))?;
    if json.version != 1 {
        return Err(Nix2ContainerError::Version {
            path: path.to_owned(),
            version: json.version,
        });
    }
    let json_layers = json.layers.unwrap_or_default();
    let mut layers = Vec::with_capacity(json_layers.len());
    let mut history = Vec::with_capacity(json_layers.len());
    for (i, layer) in json_layers.into_iter().enumerate() {
        let n = i + 1;
        let digest: Digest = layer
            .digest
            .parse()
            .map_err(|_| malformed(format!("layer {n}'s digest {:?} is not one", layer.digest)))?;
        let diff_id: Digest = layer.diff_ids.parse().map_err(|_| {
            malformed(format!(
                "layer {n}'s diff_ids {:?} is not a digest",
                layer.diff_ids
            ))
        })?;
        // As nix2container's transport does: a layer file first, else the paths.
        let content = if !layer.layer_path.is_empty() {
            LayerSource::File(PathBuf::from(layer.layer_path))
        } else {
            let paths = layer.paths.unwrap_or_default();
            if paths.is_empty() {
                return Err(malformed(format!(
                    "layer {n} names neither paths nor a layer-path"
                )));
            }
            if digest != diff_id {
                return Err(malformed(format!(
                    "layer {n} of store paths has digest {digest} but diff_ids {diff_id} (an uncompressed tar has one)"
                )));
            }
            for p in &paths {
                let options = p.options.clone().unwrap_or_default();
                let regexes = std::iter::once(options.rewrite.regex.as_str())
                    .filter(|r| !r.is_empty())
                    .chain(options.perms.iter().map(|p| p.regex.as_str()));
                for regex in regexes {
                    go_regex(regex).map_err(|e| {
                        malformed(format!(
                            "layer {n}'s regex {regex:?} for {} does not compile: {e}",
                            p.path.display()
                        ))
                    })?;
                }
            }
            LayerSource::Paths(TreeSpec {
                options: paths.iter().map(|p| p.options.clone()).collect(),
                paths: paths.into_iter().map(|p| p.path).collect(),
            })
        };
        history.push((diff_id.to_string(), layer.history));
        layers.push(Nix2ContainerLayer {
            digest,
            diff_id,
            size: layer.size,
            content,
        });
    }
    let config = go_config::config_bytes(
        &json.image_config,
        &json.arch,
        json.created.as_deref(),
        &history,
    )?;
    Ok(Some(Nix2ContainerImage {
        path: path.to_owned(),
        layers,
        arch: json.arch,
        created: json.created,
        config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Option<Nix2ContainerImage>, Nix2ContainerError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.json");
        std::fs::write(&path, json).unwrap();
        read_image(&path)
    }

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn image(layers: &str) -> String {
        format!(
            r#"{{"version": 1, "image-config": {{}}, "layers": [{layers}], "arch": "amd64", "created": null}}"#
        )
    }

    #[test]
    fn only_nix2containers_image_json_is_recognised() {
        assert!(read("#!/bin/sh\n").unwrap().is_none());
        assert!(read(r#"{"store_layers": [], "customisation_layer": ""}"#)
            .unwrap()
            .is_none());
        let read = read(&image("")).unwrap().unwrap();
        assert!(read.layers.is_empty());
        assert_eq!(read.arch, "amd64");
        // An image without layers, as nix2container writes it (`"layers": null`).
        let empty = r#"{"version": 1, "image-config": {"Cmd": ["/bin/sh"]}, "layers": null, "arch": "arm64", "created": "0001-01-01T00:00:00Z"}"#;
        let image = super::tests::read(empty).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(image.config).unwrap(),
            r#"{"created":"0001-01-01T00:00:00Z","architecture":"arm64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"","diff_ids":null}}"#
        );
    }

    #[test]
    fn what_cannot_be_pushed_is_named() {
        let cases = [
            (
                r#"{"version": 2, "image-config": {}, "layers": [], "arch": "amd64"}"#.to_owned(),
                "version 2",
            ),
            (
                image(&format!(
                    r#"{{"digest": "{DIGEST}", "diff_ids": "{DIGEST}"}}"#
                )),
                "names neither paths nor a layer-path",
            ),
            (
                image(&format!(
                    r#"{{"digest": "{DIGEST}", "diff_ids": "{DIGEST}", "paths": [{{"path": "/nix/store/x", "options": {{"rewrite": {{"regex": "(", "repl": ""}}}}}}]}}"#
                )),
                "does not compile",
            ),
            (
                image(r#"{"digest": "sha256:nope", "diff_ids": "x", "paths": []}"#),
                "is not one",
            ),
        ];
        for (json, says) in cases {
            let error = read(&json).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }
}
