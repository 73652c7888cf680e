//! Every image of a request prepared in turn, one per platform: a multi-arch push names each
//! platform once.

use std::sync::Arc;

use super::error::PrepareError;
use super::installable::prepare;
use super::options::{ImageSource, PrepareOptions};
use super::prepared::Prepared;
use super::provenance::FlakeProvenance;
use crate::nix::PlatformSpec;
use crate::progress::Reporter;

/// Prepares every image in turn (`prepared[i]` is `images[i]`'s), refusing two for one
/// platform.
pub async fn prepare_all(
    options: &PrepareOptions,
    images: &[ImageSource],
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<Prepared>, PrepareError> {
    let mut prepared: Vec<Prepared> = Vec::with_capacity(images.len());
    let mut provenance = FlakeProvenance::default();
    for image in images {
        let p = prepare(options, image, reporter, &mut provenance).await?;
        if let Some(i) = prepared
            .iter()
            .position(|q| q.plan.platform == p.plan.platform)
        {
            return Err(PrepareError::SamePlatform {
                first: images[i].installable.clone(),
                second: image.installable.clone(),
                platform: PlatformSpec::of(&p.plan.platform).to_string(),
            });
        }
        prepared.push(p);
    }
    Ok(prepared)
}
