//! Which platform a package's store paths are for, from what Nix knows and what the user says.

use std::path::Path;

use super::error::PrepareError;
use super::options::PrepareOptions;
use crate::nix::{Platform, PlatformSpec};

/// The platform of a package's store paths: what its derivation (or cache) says (`--system`
/// must agree), else the image's `--platform`, else `--system`. Never this machine's: without
/// any of them there is no honest answer.
pub(super) fn platform_of(
    options: &PrepareOptions,
    top: &Path,
    known: Option<&str>,
    declared: Option<&PlatformSpec>,
) -> Result<Platform, PrepareError> {
    let declared = declared.and_then(PlatformSpec::nix_system);
    let given = declared.as_deref().or(options.system.as_deref());
    let system = match (given, known) {
        (Some(given), Some(known)) if given != known => {
            return Err(PrepareError::SystemMismatch {
                path: top.to_owned(),
                given: given.to_owned(),
                known: known.to_owned(),
            })
        }
        (_, Some(system)) | (Some(system), None) => system,
        (None, None) => {
            return Err(PrepareError::UnknownSystem {
                path: top.to_owned(),
            })
        }
    };
    Ok(Platform::from_nix_system(system)?)
}
