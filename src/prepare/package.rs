//! A plain package (or an image archive it turns out to be), built by Nix: its outputs and the
//! `--contents` installables, kept alive while the push runs, planned by `plan::package_plan`.

use super::archive::{prepare_archive, read_archive};
use super::error::PrepareError;
use super::nix2container::prepare_nix2container;
use super::options::PrepareOptions;
use super::platform::platform_of;
use super::prepared::{Alive, Prepared};
use crate::dockertools::Evaluated;
use crate::layer::ArchiveFile;
use crate::nix;
use crate::plan::{package_plan, Package};

/// Builds the installable (whose system and output path evaluation may already know) and
/// plans its image: the image an archive holds, a nix2container image, or the package's own.
pub(super) async fn prepare_package(
    options: &PrepareOptions,
    installable: &str,
    evaluated: &Evaluated,
) -> Result<Prepared, PrepareError> {
    let (system, out_path) = (evaluated.system.clone(), evaluated.out_path.clone());
    let built = nix::build_for(installable, &options.nix_args, system, out_path).await?;
    // An image archive Nix built (`buildImage`, `pullImage`): the image it holds, not a package
    // whose only file is a tarball.
    if let Some(archive) = read_archive(ArchiveFile::local(built.top())).await? {
        return prepare_archive(options, built, archive);
    }
    // nix2container's `buildImage`: an image JSON, pushed as `copyToRegistry` would.
    if let Some(image) = crate::nix2container::read_image(built.top())? {
        return prepare_nix2container(options, built, image, evaluated);
    }
    let platform = platform_of(options, built.top(), built.system.as_deref(), None)?;
    let config = options.config.resolve(built.top())?;

    // --contents: built like the installable, their closures join the image's.
    let mut closure = built.closure.clone();
    let mut contents = Vec::with_capacity(options.contents.len());
    for installable in &options.contents {
        let c = nix::build(installable, &options.nix_args).await?;
        closure.paths.extend(c.closure.paths.clone());
        contents.push(c);
    }
    let tops: Vec<_> = contents.iter().map(|c| c.top().to_owned()).collect();
    let package = Package {
        closure: &closure,
        outputs: &built.outputs,
        contents_tops: &tops,
        platform,
        config,
    };
    let plan = package_plan(package, &options.package_layout())?;
    contents.push(built);
    Ok(Prepared {
        plan,
        image_tag: None,
        image_name: None,
        closure,
        license: None,
        flake: None,
        _alive: Alive::Built { _built: contents },
    })
}
