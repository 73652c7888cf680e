//! nixpush: publish Nix-built container images straight to OCI registries.
//!
//! The flow is `nix` (build, closure) -> `plan` (layers, config) -> `layer` (tar -> compress ->
//! hash, streamed) -> `registry` (distribution API), run by `push`. The binary in `main.rs` only
//! parses arguments, draws progress and maps errors to exit codes.

pub mod cache;
pub mod cli;
pub mod cli_docs;
pub mod credential_store;
pub mod destination;
pub mod digest;
pub mod dockertools;
pub mod image;
pub mod images_file;
pub mod inspect;
pub mod layer;
pub mod layer_index;
pub mod local;
pub mod login;
pub mod nix;
pub mod outcome;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod provenance;
pub mod push;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod upload;
