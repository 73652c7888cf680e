//! The bytes of nixpush's image layers: what a layer holds, the tar nixpkgs' rules give it, its
//! compression, and the digests of both, made as they stream. Every byte a push sends passes
//! through here, so this crate is compiled optimised while the rest of nixpush, which runs a few
//! times per command, is not (Cargo.toml's release profile; docs/architecture.md).

pub mod digest;
pub mod layer;
pub mod media_types;
pub mod store_path;
pub mod time;
