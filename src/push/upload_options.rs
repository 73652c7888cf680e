//! What one image's blob uploads go by: the compression, how many at once, what is known of the
//! layers already (the local cache, the manifests read), `--verify`, `--mount-from`, `--upload`,
//! and the signal that stops them. Read by the reuse decision and by the uploads alike.

use crate::known_layers::{LayerCache, LearntLayers};
use crate::layer::Compression;
use crate::request::UploadMode;
use crate::stop::Stop;

/// How the blobs of one image are uploaded.
#[derive(Clone, Debug)]
pub(super) struct UploadOptions {
    pub compression: Compression,
    pub jobs: usize,
    pub cache: LayerCache,
    /// Layers learned from manifests already in the registry.
    pub learnt: LearntLayers,
    /// Rebuild every layer that would be skipped and use the known blob only if it is
    /// byte-identical (`--verify`).
    pub verify: bool,
    /// Repositories of the registry to mount known blobs from (`--mount-from`).
    pub mount_from: Vec<String>,
    pub upload: UploadMode,
    /// Ends the uploads in flight early when one layer fails for good (or on Ctrl-C).
    pub stop: Stop,
}
