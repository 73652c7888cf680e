//! A nix2container image (its `buildImage` output: an image JSON) planned as `copyToRegistry`
//! would push it: each layer nix2container's tar of its store paths (or its `layer-path` file),
//! checked against the JSON's digest as it streams, keyed by that digest; the config blob its
//! transport makes, byte for byte; the platform from the JSON's `arch`. The layers go
//! uncompressed, as nix2container sends them, unless `--compression` says otherwise.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::error::PrepareError;
use super::options::PrepareOptions;
use super::prepared::{Alive, Prepared};
use crate::dockertools::Evaluated;
use crate::image::media_types::{OCI_LAYER_GZIP, OCI_LAYER_ZSTD};
use crate::layer::{ArchiveCompression, AsIsBlob, Compression, LayerContent, LayerKey, LayerSpec};
use crate::nix::{Built, Platform};
use crate::nix2container::{LayerSource, Nix2ContainerImage};
use crate::plan::{ConfigBytes, ImagePlan, DEFAULT_CREATED};

/// Plans the image the JSON `image` (the output of `built`) describes.
pub(super) fn prepare_nix2container(
    options: &PrepareOptions,
    built: Built,
    image: Nix2ContainerImage,
    evaluated: &Evaluated,
) -> Result<Prepared, PrepareError> {
    options.refuse_config_flags("this nix2container image")?;
    let compression = if options.compression_chosen {
        options.compression
    } else {
        Compression::None
    };
    let mut layers = Vec::with_capacity(image.layers.len());
    for layer in image.layers {
        let content = match layer.content {
            LayerSource::Paths(tree) => LayerContent::Nix2ContainerTree {
                tree,
                diff_id: layer.digest.clone(),
            },
            LayerSource::File(path) => {
                // A compressed file (a pulled base's blob) goes as it is, unless --compression
                // says how every layer goes.
                let as_is = match compressed_media_type(&path) {
                    Some(media_type) if !options.compression_chosen => Some(AsIsBlob {
                        digest: layer.digest.clone(),
                        media_type,
                    }),
                    _ => None,
                };
                LayerContent::Nix2ContainerFile {
                    path,
                    diff_id: layer.diff_id,
                    as_is,
                }
            }
        };
        let spec = LayerSpec {
            key: LayerKey::of_nix2container(&layer.digest, compression),
            nar_size: layer.size,
            content,
        };
        // Every path the JSON names must be here to be read (a JSON added to the store by hand
        // does not keep them alive).
        for path in spec.store_paths() {
            if std::fs::symlink_metadata(path).is_err() {
                return Err(PrepareError::Nix2ContainerPathMissing {
                    json: image.path.clone(),
                    path: path.clone(),
                });
            }
        }
        layers.push(spec);
    }
    let plan = ImagePlan {
        layers,
        platform: Platform {
            os: "linux".to_owned(),
            architecture: image.arch,
            variant: None,
        },
        created: image.created.unwrap_or_else(|| DEFAULT_CREATED.to_owned()),
        config: serde_json::json!({}),
        compression,
        annotations: BTreeMap::new(),
        config_bytes: ConfigBytes::Exact(Bytes::from(image.config)),
        base: None,
    };
    Ok(Prepared {
        plan,
        // Named as `copyToRegistry` names it: `imageName:imageTag` (the tag, by default, the
        // hash of the JSON's store path).
        image_tag: evaluated.image_tag.clone(),
        image_name: evaluated.image_name.clone(),
        closure: built.closure.clone(),
        license: None,
        flake: None,
        _alive: Alive::Built {
            _built: vec![built],
        },
    })
}

/// The media type of a layer file that is compressed (gzip or zstd, told by its first bytes).
fn compressed_media_type(path: &std::path::Path) -> Option<&'static str> {
    match ArchiveCompression::of_file(path).ok()? {
        ArchiveCompression::Gzip => Some(OCI_LAYER_GZIP),
        ArchiveCompression::Zstd => Some(OCI_LAYER_ZSTD),
        ArchiveCompression::None => None,
    }
}
