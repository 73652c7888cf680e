//! What each installable is, made into an image plan before anything is pushed: a plain package,
//! a dockerTools conf (with its `fromImage` base), an image archive Nix built, nix2container's
//! image JSON, or a store path
//! read from binary caches; the flake's provenance learnt meanwhile. Everything here happens
//! before the first request that changes a registry, and nothing here knows where the image goes.
//!
//! Files import each other one way: `installable.rs` dispatches to the kinds (`package.rs`,
//! `docker_tools.rs`, `archive.rs`, `nix2container.rs`, `from_cache.rs`), which share `prepared.rs`, `options.rs`,
//! `platform.rs` and `error.rs`; `images.rs` prepares every image of a request.

mod archive;
mod docker_tools;
mod error;
mod from_cache;
mod images;
mod installable;
mod nix2container;
mod options;
mod package;
mod platform;
mod prepared;
mod provenance;

pub use error::PrepareError;
pub use images::prepare_all;
pub use options::{ImageSource, PrepareOptions};
pub use prepared::Prepared;
