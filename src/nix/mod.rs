//! Everything nixpush asks of Nix: build an installable (keeping it alive with a temporary GC
//! root), read its closure, and tell which platform it was built for.

mod build;
mod nar_hash;
mod platform;
mod run;
mod store_path;

pub use build::{build, build_for, closure_of, references, Built, GcRoots};
pub use nar_hash::NarHash;
pub use platform::{Platform, PlatformSpec};
pub use run::{nix_stdout, nix_store_stdout};
pub use store_path::{
    as_store_path, check_store_path, is_store_path_base_name, named_store_path, Closure, StorePath,
    STORE_DIR,
};

/// What went wrong talking to Nix. Nix prints its own diagnostics to stderr before these.
#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error("`nix` was not found on PATH: install Nix (on Debian: apt-get install nix-bin, or run `make setup`)")]
    NotInstalled,
    #[error("could not run `nix {command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}); see nix's messages above")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
    },
    #[error("could not build {installable:?}: see nix's messages above")]
    BuildFailed { installable: String },
    #[error("could not evaluate {installable:?}: see nix's messages above")]
    EvalFailed { installable: String },
    #[error("store path {0} is not valid in the local Nix store")]
    NotValid(String),
    #[error("could not create a temporary GC root")]
    GcRoot(#[source] std::io::Error),
    #[error("unexpected answer from nix: {0}")]
    Unexpected(String),
    #[error("{system} is not a Linux system: container images need Linux store paths")]
    NotLinux { system: String },
}
