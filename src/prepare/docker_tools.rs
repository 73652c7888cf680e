//! A dockerTools image planned from its conf.json: one layer per `store_layers` entry (files
//! owned and dated as the conf says, the `/nix` entries as the conf's nixpkgs era wrote them),
//! the customisation layer's tar as it is, a `fromImage` base's layers first, and the config
//! nixpkgs' script would write, byte for byte.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::archive::{archive_layers, read_archive};
use super::error::PrepareError;
use super::options::PrepareOptions;
use super::prepared::{Alive, Prepared};
use crate::digest::Digest;
use crate::dockertools::{ArchiveImage, ConfSource, DockerToolsConf};
use crate::layer::{ArchiveFile, LayerContent, LayerKey, LayerSpec};
use crate::nix::{self, Closure, GcRoots, Platform};
use crate::plan::{store_paths_layer, unix_now, ConfigBytes, ImagePlan, NixpkgsConfig};
use crate::progress::{Phase, Reporter};

/// Realises the conf (kept alive by a GC root), reads it and plans its image, a `fromImage`
/// base's layers first.
pub(super) async fn prepare_docker_tools(
    options: &PrepareOptions,
    source: ConfSource,
    reporter: &Arc<dyn Reporter>,
) -> Result<Prepared, PrepareError> {
    let mut roots = GcRoots::new()?;
    let conf_path = match source {
        ConfSource::Derivation(drv) => {
            reporter.phase(&Phase::BuildingImageDescription {
                drv: drv.to_string(),
            });
            roots
                .realise(&drv)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    nix::NixError::Unexpected(format!("realising {drv} produced no output"))
                })?
        }
        ConfSource::StorePath(path) => {
            roots.realise(&path.to_string_lossy()).await?;
            path
        }
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| PrepareError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let conf = DockerToolsConf::parse(&read(&conf_path)?, unix_now()).map_err(|source| {
        PrepareError::Conf {
            path: conf_path.clone(),
            source,
        }
    })?;
    options.refuse_config_flags("this dockerTools image")?;
    // The conf refers to every store path it names, so its closure holds them all, NAR hashes
    // included, and rooting the conf keeps them alive.
    let closure = nix::closure_of(std::slice::from_ref(&conf_path)).await?;
    let checksum_path = conf.customisation_layer.join("checksum");
    let checksum = String::from_utf8_lossy(&read(&checksum_path)?)
        .trim()
        .to_owned();
    let diff_id: Digest =
        format!("sha256:{checksum}")
            .parse()
            .map_err(|_| PrepareError::BadChecksum {
                path: checksum_path.clone(),
            })?;
    let base = match &conf.from_image {
        Some(path) => Some(base_image(path).await?),
        None => None,
    };
    let plan = docker_tools_plan(&conf, &closure, Some(diff_id), base.as_ref(), options)?;
    Ok(Prepared {
        plan,
        image_tag: conf.tag.clone(),
        image_name: conf.name.clone(),
        closure: closure.clone(),
        license: None,
        flake: None,
        _alive: Alive::Roots { _roots: roots },
    })
}

/// Reads the base image archive a conf names (`fromImage`, usually a `pullImage` result).
async fn base_image(path: &Path) -> Result<ArchiveImage, PrepareError> {
    read_archive(ArchiveFile::local(path))
        .await?
        .ok_or_else(|| PrepareError::BaseNotArchive {
            path: path.to_owned(),
        })
}

/// The layers nixpkgs would make: a base image's first, as they are in its archive; one per
/// `store_layers` entry in that order (files owned and dated as the conf says); then the
/// customisation layer's tar as it is. The config is the one nixpkgs' script writes.
pub(super) fn docker_tools_plan(
    conf: &DockerToolsConf,
    closure: &Closure,
    customisation_diff_id: Option<Digest>,
    base: Option<&ArchiveImage>,
    options: &PrepareOptions,
) -> Result<ImagePlan, PrepareError> {
    let lookup = |p: &Path| {
        closure
            .get(p)
            .ok_or_else(|| PrepareError::NotInConfClosure { path: p.to_owned() })
    };
    let mut layers = Vec::with_capacity(conf.store_layers.len() + 1);
    let mut comments = Vec::with_capacity(conf.store_layers.len() + 1);
    if let Some(base) = base {
        let archive = lookup(&base.file.path)?;
        layers.extend(archive_layers(base, archive, options.compression));
        comments.extend(
            base.layers
                .iter()
                .map(|l| NixpkgsConfig::comment(std::slice::from_ref(&l.member))),
        );
    }
    let as_strings = |paths: &[std::path::PathBuf]| -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    };
    for paths in &conf.store_layers {
        comments.push(NixpkgsConfig::comment(&as_strings(paths)));
        let paths = paths
            .iter()
            .map(|p| lookup(p))
            .collect::<Result<Vec<_>, _>>()?;
        layers.push(store_paths_layer(
            &paths,
            &conf.owner,
            conf.nix_dirs_mode,
            options.compression,
        ));
    }
    let custom = lookup(&conf.customisation_layer)?;
    comments.push(NixpkgsConfig::comment(&as_strings(std::slice::from_ref(
        &conf.customisation_layer,
    ))));
    let nixpkgs = NixpkgsConfig {
        created: conf.created_iso.clone(),
        architecture: conf.architecture.clone(),
        // The script writes `linux`, whatever the conf says.
        os: "linux".to_owned(),
        config: NixpkgsConfig::config_entries(
            &conf.config_in_order,
            base.map(|b| b.env.as_slice()),
        ),
        comments,
    };
    layers.push(LayerSpec {
        key: LayerKey::of_tarball(custom, options.compression),
        nar_size: custom.nar_size,
        content: LayerContent::Tarball {
            store_path: custom.path.clone(),
            diff_id: customisation_diff_id,
            source: Default::default(),
        },
    });
    Ok(ImagePlan {
        layers,
        platform: Platform {
            os: conf.os.clone(),
            architecture: conf.architecture.clone(),
            variant: None,
        },
        created: conf.created.clone(),
        config: conf.config.clone(),
        compression: options.compression,
        annotations: BTreeMap::new(),
        config_bytes: ConfigBytes::Nixpkgs(nixpkgs),
        base: None,
    })
}
