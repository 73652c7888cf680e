//! An image archive Nix built (`dockerTools.buildImage`, `pullImage`, a built
//! `buildLayeredImage`) planned as the image it holds: its layers streamed out of the archive,
//! its config pushed byte for byte (so the config digest is the image ID `docker load` prints),
//! its platform from that config and its tag from `RepoTags`.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::error::PrepareError;
use super::options::PrepareOptions;
use super::prepared::{Alive, Prepared};
use crate::dockertools::{self, ArchiveImage};
use crate::known_layers::LayerCache;
use crate::layer::{ArchiveFile, LayerContent, LayerKey, LayerSpec};
use crate::nix::{Built, Closure, Platform, StorePath};
use crate::plan::{ConfigBytes, ImagePlan, DEFAULT_CREATED};

/// Plans the image `archive` (the output of `built`) holds.
pub(super) fn prepare_archive(
    options: &PrepareOptions,
    built: Built,
    archive: ArchiveImage,
) -> Result<Prepared, PrepareError> {
    let plan = archive_plan(options, &built.closure, &archive)?;
    let closure = built.closure.clone();
    let alive = Alive::Built {
        _built: vec![built],
    };
    Ok(archive_prepared(plan, &archive, closure, alive))
}

/// The image `archive` holds, planned: named and tagged as the archive names it.
pub(super) fn archive_prepared(
    plan: ImagePlan,
    archive: &ArchiveImage,
    closure: Closure,
    alive: Alive,
) -> Prepared {
    Prepared {
        plan,
        image_tag: archive.tag().map(str::to_owned),
        image_name: archive.name().map(str::to_owned),
        closure,
        license: None,
        flake: None,
        _alive: alive,
    }
}

/// The plan of the image `archive` holds: its layers as they are, its config byte for byte.
pub(super) fn archive_plan(
    options: &PrepareOptions,
    closure: &Closure,
    archive: &ArchiveImage,
) -> Result<ImagePlan, PrepareError> {
    options.refuse_config_flags("this image archive")?;
    let path = &archive.file.path;
    let store_path = closure
        .get(path)
        .ok_or_else(|| PrepareError::NotInOwnClosure { path: path.clone() })?;
    let layers = archive_layers(archive, store_path, options.compression);
    Ok(ImagePlan {
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
    })
}

/// The image archive `file` (the store path `store_path`) if it is one: from the index the
/// layer cache kept of it, or read whole (on a blocking thread) and its index kept, so an
/// unchanged push reads it only once.
pub(super) async fn read_archive_indexed(
    cache: &LayerCache,
    file: ArchiveFile,
    store_path: &StorePath,
) -> Result<Option<ArchiveImage>, PrepareError> {
    if let Some(index) = cache.archive_index(&store_path.path, &store_path.nar_hash) {
        if let Some(image) = ArchiveImage::from_index(file.clone(), &index) {
            return Ok(Some(image));
        }
    }
    let read = read_archive(file).await?;
    if let Some(index) = read.as_ref().and_then(ArchiveImage::index) {
        // A cache that cannot be written costs a read next time, nothing more.
        let _ = cache.put_archive_index(&store_path.path, &store_path.nar_hash, &index);
    }
    Ok(read)
}

/// `file`, read on a blocking thread, if it is an image archive.
pub(super) async fn read_archive(file: ArchiveFile) -> Result<Option<ArchiveImage>, PrepareError> {
    let read = tokio::task::spawn_blocking(move || dockertools::read_archive(&file))
        .await
        .map_err(|_| PrepareError::ReadStopped {
            what: "the image archive",
        })??;
    Ok(read)
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
                archive: archive.file.clone(),
                compression: archive.compression,
                member: l.member.clone(),
                diff_id: l.diff_id.clone(),
            },
        })
        .collect()
}
