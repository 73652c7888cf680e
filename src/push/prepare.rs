//! From an installable to an `ImagePlan`: ask Nix what the installable is (a dockerTools image,
//! or a plain package), build or realise only what the image needs, keep it rooted, and plan.
//! Everything here happens before the first request that changes the registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::PushError;
use crate::dockertools::{self, ConfError, ConfSource};
use crate::layer::{LayerContent, LayerKey, LayerSpec, Owner, RootEntry};
use crate::nix::PlatformSpec;
use crate::nix::{self, Built, GcRoots, Platform};
use crate::plan::provenance;
use crate::plan::root_entries;
use crate::plan::{plain_layers, ImagePlan, DEFAULT_CREATED, DEFAULT_MAX_LAYERS};
use crate::progress::Reporter;
use crate::request::{ImageSource, PushRequest};

/// A plan, the store paths it reads kept alive, and the image's own name and tag if it has
/// them.
pub struct Prepared {
    pub plan: ImagePlan,
    /// The tag the image names for itself (dockerTools' `repo_tag`, an archive's `RepoTags`).
    pub image_tag: Option<String>,
    /// The name the image gives itself, the same way (a docker-archive written locally is
    /// named so).
    pub image_name: Option<String>,
    /// The store paths the image is made from, with their NAR hashes and references.
    pub closure: crate::nix::Closure,
    /// The installable's `meta.license` as an SPDX expression, when Nix could say.
    pub license: Option<String>,
    /// GC roots of everything the plan reads; dropped after the push.
    pub(super) _alive: Alive,
}

/// Held only to be dropped at the end of the push.
pub(super) enum Alive {
    Built {
        _built: Vec<Built>,
    },
    Roots {
        _roots: GcRoots,
    },
    /// Read from binary caches: nothing in the local store to keep.
    Nothing,
}

/// Builds what `image.installable` needs and plans its image, checking it is for the platform
/// the request says, and annotating it with the flake's provenance.
pub async fn prepare(
    request: &PushRequest,
    image: &ImageSource,
    reporter: &Arc<dyn Reporter>,
    provenance: &mut FlakeProvenance,
) -> Result<Prepared, PushError> {
    let installable = image.installable.as_str();
    // The flake's metadata (and its checkout's origin) is asked of Nix and git while the
    // installable is evaluated and built: neither waits for the other.
    let learn = async {
        if request.default_annotations {
            learn_provenance(request, installable, reporter, provenance).await;
        }
    };
    let (evaluated, prepared) = tokio::join!(
        prepare_image(request, installable, image.platform.as_ref(), reporter),
        learn
    )
    .0?;
    let mut prepared = prepared;
    if let Some(expected) = &image.platform {
        if !expected.matches(&prepared.plan.platform) {
            return Err(PushError::PlatformMismatch {
                installable: installable.to_owned(),
                expected: expected.to_string(),
                actual: PlatformSpec::of(&prepared.plan.platform).to_string(),
            });
        }
    }
    let mut annotations = if request.default_annotations {
        default_annotations(installable, evaluated.version.as_deref(), provenance)
    } else {
        BTreeMap::new()
    };
    annotations.extend(request.annotations.clone());
    prepared.plan.annotations = annotations;
    prepared.license = evaluated.license.clone();
    Ok(prepared)
}

/// Evaluates the installable (which kind of image, its version and system, in one `nix eval`),
/// builds it and plans its image.
async fn prepare_image(
    request: &PushRequest,
    installable: &str,
    declared: Option<&PlatformSpec>,
    reporter: &Arc<dyn Reporter>,
) -> Result<(dockertools::Evaluated, Prepared), PushError> {
    // A store path that is not in the local store comes from the binary caches.
    if let Some(path) = crate::nix::named_store_path(installable) {
        if std::fs::symlink_metadata(&path).is_err() {
            let prepared =
                super::from_cache::prepare_from_cache(request, &path, declared, reporter).await?;
            return Ok((dockertools::Evaluated::default(), prepared));
        }
    }
    let evaluated =
        dockertools::find_conf(installable, &request.nix_args, request.sbom.is_some()).await?;
    let known = (evaluated.system.clone(), evaluated.out_path.clone());
    let prepared = match evaluated.conf.clone() {
        None => prepare_package(request, installable, known).await?,
        Some(source) => {
            // A conf found by evaluation is only an attribute named `conf`; one found among a
            // store path's references was already checked to have a conf's keys.
            let found_by_reference = matches!(source, ConfSource::StorePath(_));
            match super::docker_tools::prepare_docker_tools(request, source, reporter).await {
                // A `conf` attribute that is not a dockerTools conf.json: an ordinary package
                // after all.
                Err(PushError::Conf {
                    source: ConfError::Shape(_),
                    ..
                }) if !found_by_reference => prepare_package(request, installable, known).await?,
                other => other?,
            }
        }
    };
    Ok((evaluated, prepared))
}

/// What a run learned of each flake its images come from: its metadata and its checkout's
/// `origin`, asked of Nix and git once per flake (the platforms of a multi-arch image usually
/// share one). `None`: a flake whose metadata could not be read.
#[derive(Default)]
pub struct FlakeProvenance(HashMap<String, Option<(provenance::FlakeMetadata, Option<String>)>>);

/// Learns the flake's metadata and origin, once per flake; a flake whose metadata cannot be
/// read is pushed without provenance.
async fn learn_provenance(
    request: &PushRequest,
    installable: &str,
    reporter: &Arc<dyn Reporter>,
    known: &mut FlakeProvenance,
) {
    let Some(flake) = provenance::flake_ref(installable) else {
        return;
    };
    if !known.0.contains_key(flake) {
        let learned = match provenance::flake_metadata(installable, &request.nix_args).await {
            Ok(Some(metadata)) => {
                let origin = match provenance::local_checkout(&metadata) {
                    Some(checkout) => provenance::origin_of(checkout).await,
                    None => None,
                };
                Some((metadata, origin))
            }
            Ok(None) => None,
            Err(e) => {
                reporter.phase(&format!("no provenance annotations: {e}"));
                None
            }
        };
        known.0.insert(flake.to_owned(), learned);
    }
}

/// The flake's provenance annotations, from what [`learn_provenance`] learned.
fn default_annotations(
    installable: &str,
    version: Option<&str>,
    known: &FlakeProvenance,
) -> BTreeMap<String, String> {
    let Some(flake) = provenance::flake_ref(installable) else {
        return BTreeMap::new();
    };
    match known.0.get(flake) {
        Some(Some((metadata, origin))) => {
            provenance::annotations(metadata, origin.as_deref(), version)
        }
        _ => BTreeMap::new(),
    }
}

/// Refuses the flags that would set what a dockerTools image defines in Nix.
pub(super) fn refuse_config_flags(request: &PushRequest) -> Result<(), PushError> {
    let mut flags = request.config.set_flags().unwrap_or_default();
    for (given, flag) in [
        (!request.contents.is_empty(), "--contents"),
        (request.created.is_some(), "--created"),
        (request.max_layers.is_some(), "--max-layers"),
    ] {
        if given {
            flags.push(flag);
        }
    }
    if flags.is_empty() {
        Ok(())
    } else {
        Err(PushError::ConfigWithImage { flags })
    }
}

async fn prepare_package(
    request: &PushRequest,
    installable: &str,
    (system, out_path): (Option<String>, Option<String>),
) -> Result<Prepared, PushError> {
    let built = nix::build_for(installable, &request.nix_args, system, out_path).await?;
    // An image archive Nix built (`buildImage`, `pullImage`): the image it holds, not a package
    // whose only file is a tarball.
    let top = built.top().to_owned();
    let archive = tokio::task::spawn_blocking(move || dockertools::read_archive(&top))
        .await
        .map_err(|_| PushError::Unsupported("reading the image archive stopped".into()))??;
    if let Some(archive) = archive {
        return super::archive::prepare_archive(request, built, archive);
    }
    let platform = platform_of(request, built.top(), built.system.as_deref(), None)?;
    let config = request.config.resolve(built.top())?;

    // --contents: built like the installable, their closures join the image's.
    let mut closure = built.closure.clone();
    let mut contents = Vec::with_capacity(request.contents.len());
    for installable in &request.contents {
        let c = nix::build(installable, &request.nix_args).await?;
        closure.paths.extend(c.closure.paths.clone());
        contents.push(c);
    }
    let tops: Vec<_> = contents.iter().map(|c| c.top().to_owned()).collect();
    let plan = package_plan(request, &closure, &built.outputs, &tops, platform, config)?;
    contents.push(built);
    Ok(Prepared {
        plan,
        image_tag: None,
        image_name: None,
        closure,
        license: None,
        _alive: Alive::Built { _built: contents },
    })
}

/// The platform of a package's store paths: what its derivation (or cache) says (`--system`
/// must agree), else the image's `--platform`, else `--system`. Never this machine's: without
/// any of them there is no honest answer.
pub(super) fn platform_of(
    request: &PushRequest,
    top: &std::path::Path,
    known: Option<&str>,
    declared: Option<&PlatformSpec>,
) -> Result<Platform, PushError> {
    let declared = declared.and_then(PlatformSpec::nix_system);
    let given = declared.as_deref().or(request.system.as_deref());
    let system = match (given, known) {
        (Some(given), Some(known)) if given != known => {
            return Err(PushError::SystemMismatch {
                path: top.to_owned(),
                given: given.to_owned(),
                known: known.to_owned(),
            })
        }
        (_, Some(system)) | (Some(system), None) => system,
        (None, None) => {
            return Err(PushError::Unsupported(format!(
                "cannot tell which system {} was built for: its derivation is not at hand; give --system (e.g. x86_64-linux)",
                top.display()
            )))
        }
    };
    Ok(Platform::from_nix_system(system)?)
}

/// The image of a plain package: its closure in layers by popularity, and one generated layer
/// (the root filesystem, with links to the `--contents` tops).
pub(super) fn package_plan(
    request: &PushRequest,
    closure: &crate::nix::Closure,
    outputs: &[std::path::PathBuf],
    contents_tops: &[std::path::PathBuf],
    platform: Platform,
    config: crate::image::RunConfig,
) -> Result<ImagePlan, PushError> {
    let entries = root_entries(contents_tops, request.config.user.as_deref())?;
    // One layer is the generated root filesystem; the store paths share the rest.
    let mut layers = plain_layers(
        closure,
        outputs,
        request
            .max_layers
            .unwrap_or(DEFAULT_MAX_LAYERS)
            .saturating_sub(1)
            .max(1),
        &Owner::default(),
        request.compression,
    );
    layers.push(LayerSpec {
        key: LayerKey::of_entries(&entries, request.compression),
        nar_size: entries
            .iter()
            .map(|e| match e {
                RootEntry::File { content, .. } => content.len() as u64,
                _ => 0,
            })
            .sum(),
        content: LayerContent::Generated { entries },
    });
    let plan = ImagePlan {
        layers,
        platform,
        created: request
            .created
            .clone()
            .unwrap_or_else(|| DEFAULT_CREATED.to_owned()),
        config: serde_json::to_value(config).expect("a run config serialises"),
        compression: request.compression,
        annotations: BTreeMap::new(),
        config_bytes: Default::default(),
    };
    Ok(plan)
}
