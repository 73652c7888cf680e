//! What preparing an image gives the push: its plan, its own name and tag, its closure and
//! license, and the store paths it reads kept alive until the push ends.

use crate::nix::{Built, Closure, GcRoots};
use crate::plan::ImagePlan;

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
    pub closure: Closure,
    /// The installable's `meta.license` as an SPDX expression, when Nix could say.
    pub license: Option<String>,
    /// The metadata of the flake the installable comes from (locked reference, inputs), when
    /// provenance was asked for and Nix gave it.
    pub flake: Option<crate::plan::provenance::FlakeMetadata>,
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
