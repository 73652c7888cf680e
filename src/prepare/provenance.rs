//! The flake provenance of an image: each flake's metadata and its checkout's `origin`, learnt
//! once per run while the installable builds, and the annotations made from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::plan::provenance;
use crate::progress::{Reporter, Warning};

/// What a run learned of each flake its images come from: its metadata and its checkout's
/// `origin`, asked of Nix and git once per flake (the platforms of a multi-arch image usually
/// share one). `None`: a flake whose metadata could not be read.
#[derive(Default)]
pub(super) struct FlakeProvenance(
    HashMap<String, Option<(provenance::FlakeMetadata, Option<String>)>>,
);

impl FlakeProvenance {
    /// Learns the flake's metadata and origin, once per flake; a flake whose metadata cannot
    /// be read is pushed without provenance.
    pub(super) async fn learn(
        &mut self,
        installable: &str,
        nix_args: &[String],
        reporter: &Arc<dyn Reporter>,
    ) {
        let Some(flake) = provenance::flake_ref(installable) else {
            return;
        };
        if !self.0.contains_key(flake) {
            let learned = match provenance::flake_metadata(installable, nix_args).await {
                Ok(Some(metadata)) => {
                    let origin = match provenance::local_checkout(&metadata) {
                        Some(checkout) => provenance::origin_of(checkout).await,
                        None => None,
                    };
                    Some((metadata, origin))
                }
                Ok(None) => None,
                Err(e) => {
                    reporter.warning(&Warning::NoProvenance {
                        reason: e.to_string(),
                    });
                    None
                }
            };
            self.0.insert(flake.to_owned(), learned);
        }
    }

    /// The metadata learnt of `installable`'s flake, if any.
    pub(super) fn metadata(&self, installable: &str) -> Option<&provenance::FlakeMetadata> {
        let flake = provenance::flake_ref(installable)?;
        self.0.get(flake)?.as_ref().map(|(metadata, _)| metadata)
    }

    /// The flake's provenance annotations, from what [`FlakeProvenance::learn`] learned.
    pub(super) fn annotations(
        &self,
        installable: &str,
        version: Option<&str>,
    ) -> BTreeMap<String, String> {
        let Some(flake) = provenance::flake_ref(installable) else {
            return BTreeMap::new();
        };
        match self.0.get(flake) {
            Some(Some((metadata, origin))) => {
                provenance::annotations(metadata, origin.as_deref(), version)
            }
            _ => BTreeMap::new(),
        }
    }
}
