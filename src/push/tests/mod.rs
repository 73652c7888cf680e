//! The push's decisions, each tested in-process against tables: which way a layer is uploaded,
//! whether a known blob is reused (skipped, mounted) or the layer built, which manifest format
//! is written, and whether a re-push is unchanged. No Nix, no registry process: layers are
//! generated ones (`destination::test_plan`), the registry is [`FakeRemote`], and each test
//! counts the requests the decision made. The same behaviours are shown against real
//! registries in `tests/` (docs/tests.md).

mod fake_remote;
mod layer_retry;
mod manifest_format;
mod reuse;
mod unchanged;
mod upload_way;

use std::sync::Mutex;

use crate::layer::{build_layer, Compression, LayerDigests, LayerSpec};
use crate::progress::{Reporter, Warning};

pub(crate) use fake_remote::FakeRemote;

/// Warnings heard, in order.
#[derive(Default)]
struct Heard(Mutex<Vec<Warning>>);

impl Reporter for Heard {
    fn warning(&self, warning: &Warning) {
        self.0.lock().unwrap().push(warning.clone());
    }
}

/// The blob `spec` makes, compressed so.
fn digests(spec: &LayerSpec, compression: Compression) -> LayerDigests {
    build_layer(spec, compression, std::io::sink()).unwrap().1
}
