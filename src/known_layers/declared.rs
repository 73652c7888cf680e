//! Blobs a layer declares before it is built: a nix2container image JSON names each layer's
//! blob (its digest and size), so a runner with an empty cache knows them without reading the
//! store, and a registry that holds them (under any tag, from any earlier push) is asked only a
//! `HEAD` for each. A blob is named by its content's sha256, so one the registry holds under
//! that digest is those bytes; `--verify` still rebuilds the layer and compares.

use std::collections::BTreeMap;

use super::KnownBlob;
use crate::layer::{Compression, LayerContent, LayerSpec};

/// The blob `spec` declares, its image's layers compressed as `compression` says: a tar of
/// store paths sent uncompressed (its digest is its diff_id), or a file sent as it is.
pub fn declared_blob(spec: &LayerSpec, compression: Compression) -> Option<KnownBlob> {
    let (digest, diff_id) = match &spec.content {
        LayerContent::Nix2ContainerTree { diff_id, .. } if compression == Compression::None => {
            (diff_id.clone(), diff_id.clone())
        }
        LayerContent::Nix2ContainerFile {
            as_is: Some(blob),
            diff_id,
            ..
        } => (blob.digest.clone(), diff_id.clone()),
        _ => return None,
    };
    Some(KnownBlob {
        digest,
        diff_id,
        // The JSON's `size`: a HEAD that finds another size does not take the blob.
        size: spec.nar_size,
        media_type: spec.media_type(compression).to_owned(),
        annotations: BTreeMap::new(),
    })
}
