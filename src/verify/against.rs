//! `verify --against INSTALLABLE`: whether the registry's image is exactly what the installable
//! gives, shown rather than claimed. The installable's image is made locally (into a throw-away
//! OCI layout, through the same pipeline as a push, the layer cache helping) and its config and
//! layers' diff_ids are compared with the registry's config; no layer blob is downloaded. The
//! config names every layer's uncompressed digest, so an equal config is an equal filesystem
//! and configuration, whatever the compression the image was pushed with.

use serde_json::Value;

use super::VerifyError;
use crate::digest::Digest;
use crate::image::read::Document;
use crate::nix::PlatformSpec;
use crate::outcome::ImageOutcome;
use crate::registry::Client;

/// The most an image config may weigh.
const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// What the comparison found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reproduction {
    /// The config (and so every layer) is the installable's.
    Reproduced { config: Digest, layers: usize },
    /// The first layer whose diff_id differs (0-based), with the store paths the installable
    /// puts in it.
    LayerDiffers {
        layer: usize,
        store_paths: Vec<String>,
        registry: Option<Digest>,
        local: Digest,
    },
    /// Every layer is the same, the configuration is not.
    ConfigDiffers { registry: Digest, local: Digest },
}

impl std::fmt::Display for Reproduction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reproduction::Reproduced { config, layers } => {
                write!(f, "reproduced: the same config {config} and {layers} layers")
            }
            Reproduction::LayerDiffers {
                layer,
                store_paths,
                registry,
                local,
            } => write!(
                f,
                "not reproduced: layer {} ({}) is {} in the registry, {local} from the installable",
                layer + 1,
                if store_paths.is_empty() { "the root filesystem".to_owned() } else { store_paths.join(", ") },
                registry.as_ref().map_or("missing".to_owned(), |d| d.to_string()),
            ),
            Reproduction::ConfigDiffers { registry, local } => write!(
                f,
                "not reproduced: the layers are the same, the config is not ({registry} in the registry, {local} from the installable)"
            ),
        }
    }
}

/// The decision, given the registry's config blob (`registry_config`, of digest
/// `registry_digest`) and the image the installable gives.
pub fn compare(
    registry_digest: &Digest,
    registry_config: &[u8],
    local: &ImageOutcome,
) -> Reproduction {
    if *registry_digest == local.config_digest {
        return Reproduction::Reproduced {
            config: registry_digest.clone(),
            layers: local.layers.len(),
        };
    }
    let diff_ids: Vec<Option<Digest>> = serde_json::from_slice::<Value>(registry_config)
        .ok()
        .and_then(|c| {
            c.pointer("/rootfs/diff_ids")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default()
        .iter()
        .map(|d| d.as_str().and_then(|d| d.parse().ok()))
        .collect();
    for (i, layer) in local.layers.iter().enumerate() {
        let theirs = diff_ids.get(i).cloned().flatten();
        if theirs.as_ref() != Some(&layer.digests.diff_id) {
            return Reproduction::LayerDiffers {
                layer: i,
                store_paths: layer
                    .store_paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                registry: theirs,
                local: layer.digests.diff_id.clone(),
            };
        }
    }
    Reproduction::ConfigDiffers {
        registry: registry_digest.clone(),
        local: local.config_digest.clone(),
    }
}

/// The registry's config for the image `manifest` (of `reference`) names, for `local`'s
/// platform when it is an index: (its digest, its bytes).
pub(super) async fn registry_config(
    client: &Client,
    manifest: &[u8],
    reference: &str,
    local: &ImageOutcome,
) -> Result<(Digest, Vec<u8>), VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable {
        reference: reference.to_owned(),
        reason,
    };
    let image = match Document::parse(manifest).map_err(&unreadable)? {
        Document::Image(image) => image,
        Document::Index(index) => {
            let platform = PlatformSpec::parse(&local.platform)
                .ok_or_else(|| unreadable(format!("platform {}", local.platform)))?;
            let entry = index
                .select(&platform)
                .ok_or_else(|| unreadable(format!("no image for {}", local.platform)))?;
            let bytes = client
                .get_manifest(client.repository(), &entry.digest.to_string())
                .await?
                .ok_or_else(|| unreadable(format!("{} is missing", entry.digest)))?;
            match Document::parse(&bytes).map_err(&unreadable)? {
                Document::Image(image) => image,
                Document::Index(_) => return Err(unreadable("a nested index".into())),
            }
        }
    };
    let digest = image.config.digest.clone();
    let config = client
        .get_blob(&digest, MAX_CONFIG_BYTES)
        .await?
        .ok_or_else(|| unreadable(format!("its config {digest} is missing")))?;
    Ok((digest, config.to_vec()))
}
