//! An image archive Nix built (`dockerTools.buildImage`, `pullImage`, a built
//! `buildLayeredImage`) planned as the image it holds: its layers streamed out of the archive,
//! its config pushed byte for byte (so the config digest is the image ID `docker load` prints),
//! its platform from that config and its tag from `RepoTags`.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::error::PrepareError;
use super::options::PrepareOptions;
use super::prepared::{Alive, Prepared};
use crate::dockertools::ArchiveImage;
use crate::layer::{LayerContent, LayerKey, LayerSpec};
use crate::nix::{Built, Platform};
use crate::plan::{ConfigBytes, ImagePlan, DEFAULT_CREATED};

/// Plans the image `archive` (the output of `built`) holds.
pub(super) fn prepare_archive(
    options: &PrepareOptions,
    built: Built,
    archive: ArchiveImage,
) -> Result<Prepared, PrepareError> {
    options.refuse_config_flags()?;
    let store_path =
        built
            .closure
            .get(built.top())
            .ok_or_else(|| PrepareError::NotInOwnClosure {
                path: built.top().to_owned(),
            })?;
    let layers = archive_layers(&archive, store_path, options.compression);
    let plan = ImagePlan {
        layers,
        platform: Platform {
            os: archive.os.clone(),
            architecture: archive.architecture.clone(),
            variant: archive.variant.clone(),
        },
        created: archive
            .created
            .clone()
            .unwrap_or_else(|| DEFAULT_CREATED.to_owned()),
        config: serde_json::json!({}),
        compression: options.compression,
        annotations: BTreeMap::new(),
        config_bytes: ConfigBytes::Exact(Bytes::from(archive.config.clone())),
        base: None,
    };
    Ok(Prepared {
        plan,
        image_tag: archive.tag().map(str::to_owned),
        image_name: archive.name().map(str::to_owned),
        closure: built.closure.clone(),
        license: None,
        flake: None,
        _alive: Alive::Built {
            _built: vec![built],
        },
    })
}

/// One layer per member the archive names, in order, each keyed by the archive's NAR hash and
/// the member's name (the archive is immutable, so they decide the bytes).
pub(super) fn archive_layers(
    archive: &ArchiveImage,
    store_path: &crate::nix::StorePath,
    compression: crate::layer::Compression,
) -> Vec<LayerSpec> {
    archive
        .layers
        .iter()
        .map(|l| LayerSpec {
            key: LayerKey::of_archive_member(store_path, &l.member, compression),
            nar_size: l.size,
            content: LayerContent::ArchiveMember {
                archive: archive.path.clone(),
                compression: archive.compression,
                member: l.member.clone(),
                diff_id: l.diff_id.clone(),
            },
        })
        .collect()
}
