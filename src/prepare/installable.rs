//! From an installable to a prepared image: ask Nix what the installable is (a store path only
//! binary caches hold, a dockerTools image, an image archive, or a plain package), hand it to
//! the file that prepares that kind, check its platform and annotate it with the flake's
//! provenance.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::docker_tools::prepare_docker_tools;
use super::error::PrepareError;
use super::from_cache::prepare_from_cache;
use super::options::{ImageSource, PrepareOptions};
use super::package::prepare_package;
use super::prepared::Prepared;
use super::provenance::FlakeProvenance;
use crate::dockertools::{self, ConfError, ConfSource};
use crate::nix::PlatformSpec;
use crate::progress::Reporter;

/// Builds what `image.installable` needs and plans its image, checking it is for the platform
/// the request says, and annotating it with the flake's provenance.
pub(super) async fn prepare(
    options: &PrepareOptions,
    image: &ImageSource,
    reporter: &Arc<dyn Reporter>,
    provenance: &mut FlakeProvenance,
) -> Result<Prepared, PrepareError> {
    let installable = image.installable.as_str();
    // The flake's metadata (and its checkout's origin) is asked of Nix and git while the
    // installable is evaluated and built: neither waits for the other.
    let learn = async {
        if options.default_annotations || options.provenance {
            provenance
                .learn(installable, &options.nix_args, reporter)
                .await;
        }
    };
    let (evaluated, prepared) = tokio::join!(
        prepare_image(options, installable, image.platform.as_ref(), reporter),
        learn
    )
    .0?;
    let mut prepared = prepared;
    if let Some(expected) = &image.platform {
        if !expected.matches(&prepared.plan.platform) {
            return Err(PrepareError::PlatformMismatch {
                installable: installable.to_owned(),
                expected: expected.to_string(),
                actual: PlatformSpec::of(&prepared.plan.platform).to_string(),
            });
        }
    }
    let mut annotations = if options.default_annotations {
        provenance.annotations(installable, evaluated.version.as_deref())
    } else {
        BTreeMap::new()
    };
    annotations.extend(options.annotations.clone());
    prepared.plan.annotations = annotations;
    prepared.license = evaluated.license.clone();
    if options.provenance {
        prepared.flake = provenance.metadata(installable).cloned();
    }
    Ok(prepared)
}

/// Evaluates the installable (which kind of image, its version and system, in one `nix eval`),
/// builds it and plans its image.
async fn prepare_image(
    options: &PrepareOptions,
    installable: &str,
    declared: Option<&PlatformSpec>,
    reporter: &Arc<dyn Reporter>,
) -> Result<(dockertools::Evaluated, Prepared), PrepareError> {
    // A store path that is not in the local store comes from the binary caches.
    if let Some(path) = crate::nix::named_store_path(installable) {
        if std::fs::symlink_metadata(&path).is_err() {
            let prepared = prepare_from_cache(options, &path, declared, reporter).await?;
            return Ok((dockertools::Evaluated::default(), prepared));
        }
    }
    let evaluated = dockertools::find_conf(installable, &options.nix_args, options.sbom).await?;
    let prepared = match evaluated.conf.clone() {
        None => prepare_package(options, installable, &evaluated).await?,
        Some(source) => {
            // A conf found by evaluation is only an attribute named `conf`; one found among a
            // store path's references was already checked to have a conf's keys.
            let found_by_reference = matches!(source, ConfSource::StorePath(_));
            match prepare_docker_tools(options, source, reporter).await {
                // A `conf` attribute that is not a dockerTools conf.json: an ordinary package
                // after all.
                Err(PrepareError::Conf {
                    source: ConfError::Shape(_),
                    ..
                }) if !found_by_reference => {
                    prepare_package(options, installable, &evaluated).await?
                }
                other => other?,
            }
        }
    };
    Ok((evaluated, prepared))
}
