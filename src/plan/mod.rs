//! From a built closure to an `ImagePlan`: which store paths go in which layer, and the image
//! config around them. Pure data, but for `provenance.rs`, which asks `nix` and `git` about the
//! flake; nothing here touches the network or reads a store file.

mod base;
mod layering;
mod nixpkgs_config;
mod package;
mod popularity;
pub mod provenance;
mod rebased;
mod rootfs;
mod run_config;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;

pub use crate::time::{format_unix, is_rfc3339, parse_unix, rfc3339_now, unix_now};
pub use base::{
    run_config_on, BaseError, BaseImage, BaseLayer, BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION,
};
pub use layering::plain_layers;
pub use nixpkgs_config::{isoformat, NixpkgsConfig};
pub use package::{package_plan, Package, PackageLayout};
pub use popularity::by_popularity;
pub use rebased::{rebased_config, rebased_run_config, RebaseConfigError};
pub use rootfs::{root_entries, RootFsError};
pub use run_config::{ConfigError, ConfigFlags};

use crate::digest::Digest;
use crate::image::{
    Descriptor, HistoryEntry, ImageConfig, Manifest, ManifestFormat, NotInDockerFormat,
};
use crate::known_layers::{DIFF_ID_ANNOTATION, LAYER_KEY_ANNOTATION};
use crate::layer::{Compression, LayerContent, LayerDigests, LayerKey, LayerSpec, Owner};
use crate::nix::{Platform, StorePath};

/// Default for `--max-layers`: well under the 127 layers overlayfs-based runtimes stack reliably,
/// leaving room for a base image.
pub const DEFAULT_MAX_LAYERS: usize = 100;
/// `created` unless asked otherwise: dockerTools' default, so the image does not depend on when
/// it was pushed.
pub const DEFAULT_CREATED: &str = "1970-01-01T00:00:01Z";

/// Everything needed to push an image, decided before the first request.
#[derive(Clone, Debug)]
pub struct ImagePlan {
    pub layers: Vec<LayerSpec>,
    pub platform: Platform,
    pub created: String,
    /// The config's `config` object (Entrypoint, Env, ...).
    pub config: serde_json::Value,
    pub compression: Compression,
    /// The manifest's annotations (`--annotation`, and the flake's provenance).
    pub annotations: BTreeMap<String, String>,
    /// How the config blob is written.
    pub config_bytes: ConfigBytes,
    /// The registry image the layers go on top of (`--base`), once resolved.
    pub base: Option<BaseImage>,
}

/// How an image's config blob is written.
#[derive(Clone, Debug, Default)]
pub enum ConfigBytes {
    /// nixpush's own config document, from `created`, `config` and the layers (plain packages).
    #[default]
    Own,
    /// These bytes, as they are: an image archive's config, whose sha256 is the image ID
    /// `docker load` prints for the archive.
    Exact(Bytes),
    /// The config nixpkgs' stream script writes for a dockerTools image, once the diff_ids
    /// are known: the image ID of the tarball nixpkgs would build.
    Nixpkgs(NixpkgsConfig),
}

/// An image's config and manifest, as bytes with their digests: the same for every target.
#[derive(Clone, Debug)]
pub struct ImageDocuments {
    pub config: Bytes,
    pub config_digest: Digest,
    pub manifest: Bytes,
    pub manifest_digest: Digest,
}

impl ImagePlan {
    /// The image config once every layer's diff_id is known (in layer order).
    pub fn image_config(&self, diff_ids: Vec<crate::digest::Digest>) -> ImageConfig {
        let history = self
            .layers
            .iter()
            .map(|l| HistoryEntry {
                created: self.created.clone(),
                created_by: "nixpush".to_owned(),
                comment: Some(store_paths_comment(l.store_paths())),
            })
            .collect();
        let (base_diff_ids, base_history) = match &self.base {
            Some(base) => (base.diff_ids.clone(), base.history.clone()),
            None => Default::default(),
        };
        ImageConfig {
            created: self.created.clone(),
            architecture: self.platform.architecture.clone(),
            os: self.platform.os.clone(),
            variant: self.platform.variant.clone(),
            config: self.config.clone(),
            diff_ids: base_diff_ids.into_iter().chain(diff_ids).collect(),
            base_history,
            history,
        }
    }

    /// The same image on `base`: its layers first, its run config under the image's own, and
    /// the manifest annotations naming it.
    pub fn put_on(&mut self, base: BaseImage) {
        self.config = run_config_on(&base.config, &self.config);
        self.annotations
            .insert(BASE_NAME_ANNOTATION.to_owned(), base.name.clone());
        self.annotations
            .insert(BASE_DIGEST_ANNOTATION.to_owned(), base.digest.to_string());
        self.base = Some(base);
    }
}

impl ImagePlan {
    /// The config and manifest naming `layers` (the blobs of `self.layers`, in order).
    pub fn documents(&self, layers: &[LayerDigests]) -> ImageDocuments {
        self.documents_in(layers, ManifestFormat::Oci)
            .expect("every layer compression has an OCI media type")
    }

    /// The same, the manifest written in `format`: the config bytes do not change (so neither
    /// does the image ID); Docker schema 2 carries no annotations and no zstd layers.
    pub fn documents_in(
        &self,
        layers: &[LayerDigests],
        format: ManifestFormat,
    ) -> Result<ImageDocuments, NotInDockerFormat> {
        let annotated = format.has_annotations();
        let base_layers = match &self.base {
            None => Vec::new(),
            Some(base) => base
                .layers
                .iter()
                .map(|l| {
                    Ok(Descriptor {
                        media_type: format.layer_type(l.media_type)?.to_owned(),
                        digest: l.digest.clone(),
                        size: l.size,
                        annotations: BTreeMap::new(),
                    })
                })
                .collect::<Result<Vec<_>, NotInDockerFormat>>()?,
        };
        let config = match &self.config_bytes {
            ConfigBytes::Own => {
                let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
                Bytes::from(self.image_config(diff_ids).to_bytes())
            }
            ConfigBytes::Exact(bytes) => bytes.clone(),
            ConfigBytes::Nixpkgs(nixpkgs) => {
                let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
                Bytes::from(nixpkgs.to_bytes(&diff_ids))
            }
        };
        let config_digest = Digest::of(&config);
        // Each of the image's own layers says which layer key it was built for, so a later
        // push with an empty cache can skip it without building it (see `known_layers`).
        let own_layers = layers
            .iter()
            .zip(&self.layers)
            .map(|(l, spec)| {
                Ok(Descriptor {
                    media_type: format
                        .layer_type(spec.media_type(self.compression))?
                        .to_owned(),
                    digest: l.digest.clone(),
                    size: l.size,
                    annotations: if annotated {
                        let mut annotations = l.annotations.clone();
                        annotations.extend([
                            (LAYER_KEY_ANNOTATION.to_owned(), spec.key.to_string()),
                            (DIFF_ID_ANNOTATION.to_owned(), l.diff_id.to_string()),
                        ]);
                        annotations
                    } else {
                        BTreeMap::new()
                    },
                })
            })
            .collect::<Result<Vec<_>, NotInDockerFormat>>()?;
        let manifest = Manifest {
            media_type: format.manifest_type(),
            config: Descriptor {
                media_type: format.config_type().to_owned(),
                digest: config_digest.clone(),
                size: config.len() as u64,
                annotations: BTreeMap::new(),
            },
            // The base's layers first, as the base names them; then the image's own.
            layers: base_layers.into_iter().chain(own_layers).collect(),
            annotations: if annotated {
                self.annotations.clone()
            } else {
                BTreeMap::new()
            },
        };
        let manifest = Bytes::from(manifest.to_bytes());
        let manifest_digest = Digest::of(&manifest);
        Ok(ImageDocuments {
            config,
            config_digest,
            manifest,
            manifest_digest,
        })
    }

    /// A human-readable listing of the plan: platform, then each layer with its number, NAR
    /// size, key and store paths (what `--dry-run` prints).
    pub fn describe(&self) -> String {
        let p = &self.platform;
        let mut out = format!(
            "platform {}/{}{}, {} layers, created {}\n",
            p.os,
            p.architecture,
            p.variant
                .as_deref()
                .map(|v| format!("/{v}"))
                .unwrap_or_default(),
            self.layers.len(),
            self.created
        );
        for (i, layer) in self.layers.iter().enumerate() {
            let kind = match layer.content {
                LayerContent::StorePaths { .. } => "",
                LayerContent::Tarball { .. } => "  (tar from the store, as is)",
                LayerContent::Generated { .. } => "  (generated)",
                LayerContent::ArchiveMember { .. } => "  (layer of an image archive, as is)",
                LayerContent::Nix2ContainerTree { .. } => {
                    "  (nix2container's layer of these paths)"
                }
                LayerContent::Nix2ContainerFile { .. } => "  (nix2container's layer file, as is)",
            };
            out.push_str(&format!(
                "layer {}  {} bytes NAR  key {}{kind}\n",
                i + 1,
                layer.nar_size,
                layer.key
            ));
            for (j, path) in layer.store_paths().iter().enumerate() {
                out.push_str(&format!("  {}\n", path.display()));
                // A nix2container path's options, as its image JSON gives them.
                if let LayerContent::Nix2ContainerTree { tree, .. } = &layer.content {
                    let options = tree.options[j].clone().unwrap_or_default();
                    if !options.rewrite.regex.is_empty() {
                        let (regex, repl) = (&options.rewrite.regex, &options.rewrite.repl);
                        out.push_str(&format!("    rewrite {regex:?} -> {repl:?}\n"));
                    }
                    for p in &options.perms {
                        out.push_str(&format!(
                            "    perms {:?}: mode {:?} uid {} gid {}\n",
                            p.regex, p.mode, p.uid, p.gid
                        ));
                    }
                }
            }
            if let LayerContent::ArchiveMember { member, .. } = &layer.content {
                out.push_str(&format!("    {member}\n"));
            }
            if let LayerContent::Generated { entries } = &layer.content {
                for e in entries {
                    out.push_str(&format!("  /{}\n", e.path()));
                }
            }
        }
        out
    }
}

/// The history comment nixpkgs writes: `store paths: ['/nix/store/…', …]`.
fn store_paths_comment(paths: &[PathBuf]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
    format!("store paths: [{}]", quoted.join(", "))
}

/// A layer of `paths`, in that order, its `/nix/` and `/nix/store/` entries of mode
/// `nix_dirs_mode` (see [`crate::layer::NIX_DIRS_MODE`]).
pub fn store_paths_layer(
    paths: &[&StorePath],
    owner: &Owner,
    nix_dirs_mode: u32,
    compression: Compression,
) -> LayerSpec {
    LayerSpec {
        key: LayerKey::compute(paths.iter().copied(), owner, nix_dirs_mode, compression),
        nar_size: paths.iter().map(|p| p.nar_size).sum(),
        content: LayerContent::StorePaths {
            paths: paths.iter().map(|p| p.path.clone()).collect(),
            owner: owner.clone(),
            nix_dirs_mode,
            source: Default::default(),
        },
    }
}
