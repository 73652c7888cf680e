//! nixpush: publish Nix-built container images straight to OCI registries.
//!
//! Data flows one way: `nix` and `dockertools` (what the installable is, its closure) -> `plan`
//! (layers, config) -> `layer` (tar -> compress -> hash, streamed) -> `registry` (the
//! distribution API) or a local `destination`, driven by `push`. What goes in is a
//! [`request::PushRequest`], what comes out a [`outcome::PushOutcome`], and progress is told
//! through [`progress::Reporter`]. The command line, and drawing progress, live in the binary.

pub mod binary_cache;
pub mod child;
pub mod credentials;
pub mod destination;
pub mod dockertools;
pub mod http;
pub mod image;
pub mod inspect;
pub mod known_layers;
pub mod layer_jobs;
pub mod nix;
pub mod nix2container;
pub mod outcome;
pub mod plan;
pub mod prepare;
pub mod progress;
pub mod push;
pub mod reference;
pub mod registry;
pub mod request;
pub mod sbom;
pub mod signing;
pub mod slsa;
pub mod stop;
pub mod verify;

// The layer bytes, compiled optimised in their own crate, under the paths the rest names them by.
pub use nixpush_layer::{digest, layer, time};
