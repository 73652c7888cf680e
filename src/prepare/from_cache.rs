//! A store path that is not in the local store, planned from binary caches (`--substituter`):
//! its closure from the narinfos, its layers made from NARs only where the registry lacks them.
//! A plain package becomes the same image a push from the local store gives; a dockerTools
//! image (a conf.json, or a stream script referring to one) too, its conf read from the cache;
//! and an image archive (`buildImage`, `pullImage`, a conf's `fromImage`), read from its NAR.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::archive::{archive_plan, archive_prepared, read_archive_indexed};
use super::docker_tools::docker_tools_plan;
use super::error::PrepareError;
use super::options::PrepareOptions;
use super::platform::platform_of;
use super::prepared::{Alive, Prepared};
use crate::binary_cache::{BinaryCaches, CacheError, CachedClosure};
use crate::dockertools::{ArchiveImage, DockerToolsConf};
use crate::layer::{ArchiveFile, StoreSource};
use crate::nix::PlatformSpec;
use crate::plan::{package_plan, unix_now, ImagePlan, Package};
use crate::progress::{Phase, Reporter, Warning};

/// Largest NAR of a store path taken for a dockerTools conf.json.
const MAX_CONF_NAR: u64 = 1024 * 1024;

/// Names a store path holding an image archive has (`buildImage`, `pullImage`).
const ARCHIVE_SUFFIXES: [&str; 4] = [".tar", ".tar.gz", ".tgz", ".tar.zst"];

/// Plans the image of `path`, read from the binary caches the request names (or Nix's).
pub(super) async fn prepare_from_cache(
    options: &PrepareOptions,
    path: &Path,
    declared: Option<&PlatformSpec>,
    reporter: &Arc<dyn Reporter>,
) -> Result<Prepared, PrepareError> {
    let caches =
        BinaryCaches::open(&options.substituters, options.retry, &options.tls, path).await?;
    if !caches.passed_over.is_empty() {
        reporter.warning(&Warning::StorePassedOver {
            message: format!(
                "passing over substituters nixpush cannot read (not HTTP(S), S3 or file:// binary caches, or not usable here): {}",
                caches.passed_over.join(", ")
            ),
        });
    }
    reporter.phase(&Phase::ReadingFromCaches {
        path: path.to_owned(),
        caches: caches.names(),
    });
    let cached = caches.closure(&[path.to_owned()]).await?;
    // An image archive is told by its content, read only for a path named like one (the
    // NAR of any other top is never opened just to look).
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        if let Some(archive) = cached_archive(options, &cached, path).await? {
            let mut plan = archive_plan(options, &cached.closure, &archive)?;
            read_from_cache(&mut plan, &cached, BTreeMap::new());
            let closure = cached.closure.clone();
            return Ok(archive_prepared(plan, &archive, closure, Alive::Nothing));
        }
    }
    if let Some((conf_path, conf)) = docker_tools_conf(&cached, path).await? {
        return prepare_conf(options, &cached, &conf_path, &conf).await;
    }
    if !options.contents.is_empty() {
        return Err(PrepareError::ContentsFromCache);
    }
    let platform = platform_of(options, path, cached.system_of(path), declared)?;
    // A relative entrypoint is looked up in the cache's listing; where there is none, it is
    // checked while the top path's NAR is read for its layer (never fetched for this alone).
    let mut must_hold = BTreeMap::new();
    if let Some(relative) = options.config.relative_entrypoint() {
        match cached.holds(path, relative).await? {
            Some(true) => {}
            Some(false) => return Err(options.config.missing_entrypoint(path).into()),
            None => {
                // As the NAR names it: no `.` or empty parts; with `..` it cannot be told.
                let parts: Vec<&str> = relative
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .collect();
                if !parts.contains(&"..") {
                    reporter.phase(&Phase::EntrypointCheckedLater {
                        path: path.to_owned(),
                        entrypoint: relative.to_owned(),
                    });
                    must_hold.insert(path.to_owned(), vec![parts.join("/")]);
                }
            }
        }
    }
    let config = options.config.resolve_unchecked(path);
    let package = Package {
        closure: &cached.closure,
        outputs: &[path.to_owned()],
        contents_tops: &[],
        platform,
        config,
    };
    let mut plan = package_plan(package, &options.package_layout())?;
    read_from_cache(&mut plan, &cached, must_hold);
    Ok(Prepared {
        plan,
        image_tag: None,
        image_name: None,
        closure: cached.closure.clone(),
        license: None,
        flake: None,
        _alive: Alive::Nothing,
    })
}

/// The image archive `path` from the caches, if it is one: its index from the layer cache when
/// it was read before, else its NAR read whole.
async fn cached_archive(
    options: &PrepareOptions,
    cached: &CachedClosure,
    path: &Path,
) -> Result<Option<ArchiveImage>, PrepareError> {
    let store_path = cached
        .closure
        .get(path)
        .ok_or_else(|| PrepareError::NotInOwnClosure {
            path: path.to_owned(),
        })?;
    let file = ArchiveFile {
        path: path.to_owned(),
        source: StoreSource::Nars(cached.nars(BTreeMap::new())),
    };
    read_archive_indexed(&options.cache, file, store_path).await
}

/// Every store path of the plan read from the caches.
fn read_from_cache(
    plan: &mut ImagePlan,
    cached: &CachedClosure,
    must_hold: BTreeMap<PathBuf, Vec<String>>,
) {
    let source = StoreSource::Nars(cached.nars(must_hold));
    for layer in &mut plan.layers {
        layer.read_from(&source);
    }
}

/// The dockerTools conf `path` is, or refers to (a stream script), read from the cache.
async fn docker_tools_conf(
    cached: &CachedClosure,
    path: &Path,
) -> Result<Option<(PathBuf, DockerToolsConf)>, PrepareError> {
    let mut candidates: Vec<PathBuf> = vec![path.to_owned()];
    if let Some(top) = cached.closure.get(path) {
        candidates.extend(top.references.iter().cloned());
    }
    for candidate in candidates {
        // A conf.json is one small file: a path merely named so is no image.
        let small = cached
            .closure
            .get(&candidate)
            .is_some_and(|p| p.nar_size <= MAX_CONF_NAR);
        if !candidate.to_string_lossy().ends_with("-conf.json") || !small {
            continue;
        }
        let bytes = match cached.read_file(&candidate).await {
            Ok(bytes) => bytes,
            // A directory, not a file.
            Err(CacheError::Nar { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        if !crate::dockertools::is_conf_shaped(&bytes) {
            continue;
        }
        let conf =
            DockerToolsConf::parse(&bytes, unix_now()).map_err(|source| PrepareError::Conf {
                path: candidate.clone(),
                source,
            })?;
        return Ok(Some((candidate, conf)));
    }
    Ok(None)
}

/// A dockerTools image from its conf: the layers nixpkgs would make, read from the caches.
async fn prepare_conf(
    options: &PrepareOptions,
    cached: &CachedClosure,
    conf_path: &Path,
    conf: &DockerToolsConf,
) -> Result<Prepared, PrepareError> {
    options.refuse_config_flags("this dockerTools image")?;
    let base = match &conf.from_image {
        Some(path) => Some(
            cached_archive(options, cached, path)
                .await?
                .ok_or_else(|| PrepareError::BaseNotArchive {
                    path: path.to_owned(),
                })?,
        ),
        None => None,
    };
    // The conf refers to every store path it names. The customisation layer's checksum is
    // read from its NAR with its tar, only if that layer is built.
    let closure = cached.closure.below(&[conf_path.to_owned()]);
    let mut plan = docker_tools_plan(conf, &closure, None, base.as_ref(), options)?;
    read_from_cache(&mut plan, cached, BTreeMap::new());
    Ok(Prepared {
        plan,
        image_tag: conf.tag.clone(),
        image_name: conf.name.clone(),
        closure,
        license: None,
        flake: None,
        _alive: Alive::Nothing,
    })
}
