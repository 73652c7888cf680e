//! The test bed shared by the end-to-end tests: real Nix (single-user, offline, the repository's
//! own nix.conf), a real `docker-registry` on a free loopback port per test, and the real clients
//! (skopeo, umoci, podman, the Python tarfile oracle) to check what nixpush produced.
//!
//! A missing tool fails the test with a message saying to run `make setup`: nothing is skipped.
//!
//! One file per part of the bed; everything but the fronts and the binary caches is re-exported
//! here, so a test says `use common::*;`:
//! - `bed`: the repository, required tools, commands that must succeed, test servers' ports;
//! - `nix`: fixture flakes, `nix build`, closures, dockerTools confs;
//! - `oracles`: the Python references for layer bytes, configs and archives;
//! - `registry`: a real docker-registry per test, and what it logged and stored;
//! - `run`: running the binary, and asserting on its result (`assert_refused`);
//! - `certificates`: self-signed certificates, a certs.d of a test's own;
//! - `clients`: skopeo, umoci and podman reading back what was pushed;
//! - `base_image`: base images made with umoci and put in a registry with skopeo;
//! - `signatures`: cosign keys and signatures made in Python and checked by sigstore-rs,
//!   DSSE envelopes checked by securesystemslib, skopeo's signature policy;
//! - `fault_proxy`: a TCP proxy that cuts one request;
//! - `front` (with `seeded` and `quirks`): the HTTP front that breaks, redirects or bends
//!   requests before a registry;
//! - `binary_cache` and `cached_closure`: Nix binary caches written by `nix copy`, served over
//!   HTTP, and closures that only they hold;
//! - `object_storage`: a real S3-compatible server (SeaweedFS) and its buckets, filled by boto3;
//! - `partial_pulls`: a fleet node, podman with a store of its own and partial pulls on;
//! - `containerd`: a containerd daemon of the test's own, and `ctr` pulling and running images.

#![allow(dead_code)] // gc_root's binary uses a small part of the bed

mod base_image;
mod bed;
pub mod binary_cache;
pub mod cached_closure;
mod certificates;
mod clients;
pub mod containerd;
mod fault_proxy;
pub mod front;
mod nix;
pub mod object_storage;
mod oracles;
pub mod partial_pulls;
pub mod quirks;
mod registry;
mod run;
pub mod seeded;
mod signatures;

// gc_root's binary uses few of these; what it leaves unused is no mistake.
#[allow(unused_imports)]
pub use base_image::*;
#[allow(unused_imports)]
pub use bed::*;
#[allow(unused_imports)]
pub use certificates::*;
#[allow(unused_imports)]
pub use clients::*;
#[allow(unused_imports)]
pub use fault_proxy::*;
#[allow(unused_imports)]
pub use nix::*;
#[allow(unused_imports)]
pub use oracles::*;
#[allow(unused_imports)]
pub use registry::*;
#[allow(unused_imports)]
pub use run::*;
#[allow(unused_imports)]
pub use signatures::*;
