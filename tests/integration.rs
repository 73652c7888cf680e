//! The integration tests as one test binary: each file of `tests/` is a module here, so the
//! test bed (`common/`) is compiled once and the library linked once, not once per file, and
//! libtest runs tests of different files side by side. `gc_root.rs` is the exception: a binary
//! of its own, run after this one (see its header).
//!
//! `cargo test --release --test integration from_cache::` runs one file's tests.

mod common;
mod source_tree;

mod architecture;
mod archives_from_cache;
mod base_images;
mod cache_priority;
mod cache_tls;
mod compression;
mod conf_order;
mod copy;
mod credentials;
mod docker_archives;
mod docker_tools;
mod errors;
mod fast_path;
mod faults;
mod file_cycles;
mod flag_conflicts;
mod from_cache;
mod from_cache_faults;
mod hostile;
mod hostile_cache;
mod inspect;
mod keyring;
mod layer_bytes;
mod layout_signing;
mod local_targets;
mod mirrors;
mod nar_layers;
mod nix2container;
mod provenance;
mod publish;
mod redirects;
mod repush;
mod resilience;
mod round_trip;
mod run_image;
mod s3_cache;
mod s3_registry;
mod sbom;
mod sbom_race;
mod secret_keys;
mod sign_keys;
mod signature_tools;
mod signature_verifiers;
mod signing;
mod token_auth;
mod token_registry;
mod transport;
mod upload_modes;
mod warnings;
mod wild_registries;
mod zstd_chunked;
