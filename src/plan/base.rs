//! A base image from a registry (`--base`): the layers, diff_ids and history a plain package's
//! image goes on top of, and how its run config and the image's own flags are laid together
//! (the way docker and ko do: the image's own settings win, `--entrypoint` without `--cmd`
//! drops the base's `Cmd`). Pure data: `push/base.rs` fetches it.

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::image::media_types::{
    DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
};
use crate::image::read::ImageManifest;
use crate::nix::Platform;

/// The annotations naming an image's base (OCI image spec, pre-defined annotation keys).
pub const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// One platform's base image, resolved to a digest.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseImage {
    /// The reference as given (`registry/repo:tag`), recorded in the manifest.
    pub name: String,
    /// The digest of this platform's base manifest.
    pub digest: Digest,
    pub layers: Vec<BaseLayer>,
    /// The base config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// The base config's `history`, as it is.
    pub history: Vec<Value>,
    /// The base config's `config` object (`Env`, `Cmd`, ...).
    pub config: Value,
    pub platform: Platform,
}

/// A base layer's blob, named as the image's manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseLayer {
    /// Its OCI media type (a Docker one is the same bytes under another name).
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
}

/// Why a registry image cannot be a base.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BaseError {
    #[error("its config is not an image config: {0}")]
    Config(String),
    #[error("its manifest names {layers} layers and its config {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("its layer {digest} is of media type {media_type:?}, not a tar layer")]
    LayerType { digest: Digest, media_type: String },
}

impl BaseImage {
    /// The base `name` whose manifest (of digest `digest`) is `manifest` and config `config`.
    pub fn read(
        name: &str,
        digest: Digest,
        manifest: &ImageManifest,
        config: &[u8],
    ) -> Result<BaseImage, BaseError> {
        let doc: Value =
            serde_json::from_slice(config).map_err(|e| BaseError::Config(e.to_string()))?;
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let diff_ids: Vec<Digest> = doc
            .pointer("/rootfs/diff_ids")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| BaseError::Config(format!("rootfs.diff_ids: {e}")))?
            .unwrap_or_default();
        if diff_ids.len() != manifest.layers.len() {
            return Err(BaseError::LayerCount {
                layers: manifest.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers = manifest
            .layers
            .iter()
            .map(|l| {
                Ok(BaseLayer {
                    media_type: oci_layer_type(&l.media_type).ok_or_else(|| {
                        BaseError::LayerType {
                            digest: l.digest.clone(),
                            media_type: l.media_type.clone(),
                        }
                    })?,
                    digest: l.digest.clone(),
                    size: l.size,
                })
            })
            .collect::<Result<_, BaseError>>()?;
        Ok(BaseImage {
            name: name.to_owned(),
            digest,
            layers,
            diff_ids,
            history: match doc.get("history") {
                Some(Value::Array(h)) => h.clone(),
                _ => Vec::new(),
            },
            config: match doc.get("config") {
                Some(c @ Value::Object(_)) => c.clone(),
                _ => Value::Object(Map::new()),
            },
            platform: Platform {
                os: text("os").unwrap_or_default(),
                architecture: text("architecture").unwrap_or_default(),
                variant: text("variant"),
            },
        })
    }
}

/// The OCI media type of a layer of media type `given` (Docker's names for the same bytes
/// included); `None` for anything that is not a tar layer.
fn oci_layer_type(given: &str) -> Option<&'static str> {
    match given {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(OCI_LAYER_GZIP),
        OCI_LAYER | DOCKER_LAYER => Some(OCI_LAYER),
        OCI_LAYER_ZSTD => Some(OCI_LAYER_ZSTD),
        _ => None,
    }
}

/// The run config of an image on a base: the base's `config` object with `own` (the image's
/// own settings, only those given) laid over it. `Env` entries replace the base's of the same
/// name and add the others; `Labels` and `ExposedPorts` are merged, the image's winning; an own
/// `Entrypoint` without an own `Cmd` drops the base's `Cmd` (docker's rule); anything else the
/// image sets replaces the base's, and what it does not set is the base's.
pub fn run_config_on(base: &Value, own: &Value) -> Value {
    let mut out = base.as_object().cloned().unwrap_or_default();
    let Some(own) = own.as_object() else {
        return Value::Object(out);
    };
    for (key, value) in own {
        match key.as_str() {
            "Env" => {
                let mut env = strings(out.get("Env"));
                for entry in strings(Some(value)) {
                    let name = entry.split('=').next().unwrap_or_default().to_owned();
                    env.retain(|e| e.split('=').next() != Some(name.as_str()));
                    env.push(entry);
                }
                out.insert(key.clone(), Value::from(env));
            }
            "Labels" | "ExposedPorts" => {
                let mut merged = out
                    .get(key)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(more) = value.as_object() {
                    merged.extend(more.clone());
                }
                out.insert(key.clone(), Value::Object(merged));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if own.contains_key("Entrypoint") && !own.contains_key("Cmd") {
        out.remove("Cmd");
    }
    Value::Object(out)
}

/// The strings of a JSON array (anything else: none).
fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_images_own_settings_are_laid_over_the_bases() {
        let base = json!({
            "Env": ["PATH=/usr/bin:/bin", "LANG=C"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
            "User": "0",
            "Labels": {"vendor": "base", "keep": "yes"},
            "ExposedPorts": {"22/tcp": {}},
            "StopSignal": "SIGTERM"
        });
        let own = json!({
            "Entrypoint": ["/nix/store/x-app/bin/app"],
            "Env": ["LANG=C.UTF-8", "APP=1"],
            "Labels": {"vendor": "app"},
            "ExposedPorts": {"80/tcp": {}}
        });
        assert_eq!(
            run_config_on(&base, &own),
            json!({
                "Entrypoint": ["/nix/store/x-app/bin/app"],
                "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "APP=1"],
                "WorkingDir": "/",
                "User": "0",
                "Labels": {"vendor": "app", "keep": "yes"},
                "ExposedPorts": {"22/tcp": {}, "80/tcp": {}},
                "StopSignal": "SIGTERM"
            })
        );
    }

    #[test]
    fn an_own_cmd_is_kept_and_nothing_own_leaves_the_base_as_it_is() {
        let base = json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]});
        let own = json!({"Entrypoint": ["/app"], "Cmd": ["--serve"]});
        assert_eq!(
            run_config_on(&base, &own),
            json!({"Entrypoint": ["/app"], "Cmd": ["--serve"]})
        );
        assert_eq!(run_config_on(&base, &json!({})), base);
        assert_eq!(
            run_config_on(&base, &json!({"Cmd": ["date"]})),
            json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["date"]})
        );
    }

    fn manifest(layers: &[(&str, &str)]) -> ImageManifest {
        ImageManifest {
            media_type: crate::image::media_types::OCI_MANIFEST.into(),
            config: descriptor("c", OCI_LAYER),
            layers: layers.iter().map(|(d, t)| descriptor(d, t)).collect(),
            annotations: Default::default(),
        }
    }

    fn descriptor(content: &str, media_type: &str) -> crate::image::read::DescriptorDoc {
        crate::image::read::DescriptorDoc {
            media_type: media_type.into(),
            digest: Digest::of(content.as_bytes()),
            size: 3,
            platform: None,
            annotations: Default::default(),
        }
    }

    #[test]
    fn a_base_is_read_from_its_manifest_and_config() {
        let config = json!({
            "architecture": "arm64", "variant": "v8", "os": "linux",
            "config": {"Env": ["A=1"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"t1"), Digest::of(b"t2")]},
            "history": [{"created_by": "a"}, {"created_by": "b", "empty_layer": true}, {"created_by": "c"}]
        });
        let m = manifest(&[("l1", DOCKER_LAYER_GZIP), ("l2", OCI_LAYER_GZIP)]);
        let base = BaseImage::read(
            "r/base:1",
            Digest::of(b"m"),
            &m,
            config.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(base.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(base.layers[1].digest, Digest::of(b"l2"));
        assert_eq!(base.diff_ids, [Digest::of(b"t1"), Digest::of(b"t2")]);
        assert_eq!(base.history.len(), 3);
        assert_eq!(base.config, json!({"Env": ["A=1"]}));
        assert_eq!(base.platform.variant.as_deref(), Some("v8"));
    }

    #[test]
    fn a_base_whose_layers_and_diff_ids_disagree_or_are_not_tars_is_refused() {
        let config = json!({"rootfs": {"diff_ids": [Digest::of(b"t1")]}}).to_string();
        let two = manifest(&[("l1", OCI_LAYER_GZIP), ("l2", OCI_LAYER_GZIP)]);
        assert_eq!(
            BaseImage::read("b", Digest::of(b"m"), &two, config.as_bytes()),
            Err(BaseError::LayerCount {
                layers: 2,
                diff_ids: 1
            })
        );
        let odd = manifest(&[("l1", "application/vnd.in-toto+json")]);
        assert!(matches!(
            BaseImage::read("b", Digest::of(b"m"), &odd, config.as_bytes()),
            Err(BaseError::LayerType { .. })
        ));
        assert!(matches!(
            BaseImage::read("b", Digest::of(b"m"), &odd, b"not json"),
            Err(BaseError::Config(_))
        ));
    }
}
