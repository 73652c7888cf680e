//! `--base`: the registry image a plain package's layers go on. Its manifest is read once, by
//! tag or digest, so every platform of the push uses one version of it; each platform takes the
//! base's image for that platform; its blobs are brought into the destination before anything
//! names them (found there, mounted from the same registry, or streamed from the base's
//! registry, never downloaded to disk).

use std::sync::Arc;

use crate::credentials::{connect, Reach};
use crate::digest::Digest;
use crate::image::read::Document;
use crate::nix::{Platform, PlatformSpec};
use crate::plan::BaseImage;
use crate::progress::{Phase, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Client};
use crate::request::PushRequest;
use crate::stop::Stop;

use super::copying::{CopyCounts, CopyError, Copying};
use super::PushError;

/// The most an image config read here may weigh (a base's, or one being rebased): configs are a
/// few KiB; this refuses a blob that is not.
pub(super) const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// A base image's registry, reached, and the document its reference names.
pub(super) struct BaseSource {
    client: Client,
    reference: Reference,
    digest: Digest,
    document: Document,
}

/// Reaches the base `request` names, if any, and reads what its reference names: with the
/// push's own credentials when it is on the destination's registry, else the stored ones.
pub(super) async fn open_base(
    request: &PushRequest,
    destination: &Reference,
    reporter: &Arc<dyn Reporter>,
) -> Result<Option<BaseSource>, PushError> {
    let Some(reference) = &request.base else {
        return Ok(None);
    };
    let reach = Reach {
        insecure: request.insecure,
        ca_cert: request.ca_cert.clone(),
        retry: request.retry,
    };
    let explicit = base_credentials(reference, destination, request.credentials.as_ref());
    Ok(Some(
        BaseSource::open(reference, explicit, &reach, reporter).await?,
    ))
}

/// The credentials given for `given_for`'s registry, for a base on `reference`: only when it
/// is the same registry (never sent to another one); else the stored ones are looked up.
pub(super) fn base_credentials<'a>(
    reference: &Reference,
    given_for: &Reference,
    given: Option<&'a crate::registry::Credentials>,
) -> Option<&'a crate::registry::Credentials> {
    given.filter(|_| reference.registry() == given_for.registry())
}

impl BaseSource {
    /// Reaches `reference`'s registry and reads the manifest or index it names.
    pub(super) async fn open(
        reference: &Reference,
        explicit: Option<&crate::registry::Credentials>,
        reach: &Reach,
        reporter: &Arc<dyn Reporter>,
    ) -> Result<BaseSource, PushError> {
        let client: Client =
            connect::<PushError>(reference, explicit, Access::Pull, reach, reporter).await?;
        let bad = |reason: String| PushError::Base {
            base: reference.to_string(),
            reason,
        };
        let target = reference.manifest_target();
        let bytes = client
            .get_manifest(client.repository(), &target)
            .await?
            .ok_or_else(|| bad("no such image (no such tag, digest or repository)".into()))?;
        let digest = Digest::of(&bytes);
        if reference.digest().is_some_and(|d| *d != digest) {
            return Err(bad(format!(
                "the registry sent a manifest of digest {digest}"
            )));
        }
        let document = Document::parse(&bytes).map_err(bad)?;
        reporter.phase(&Phase::BaseResolved {
            base: reference.to_string(),
            digest: digest.clone(),
        });
        Ok(BaseSource {
            client,
            reference: reference.clone(),
            digest,
            document,
        })
    }

    /// The base's image for `platform`: the one the index names for it, or the one image the
    /// reference names when it is of that platform.
    pub(super) async fn image_for(&self, platform: &Platform) -> Result<BaseImage, PushError> {
        let name = self.reference.to_string();
        let bad = |reason: String| PushError::Base {
            base: name.clone(),
            reason,
        };
        let wanted = PlatformSpec::of(platform);
        let (digest, manifest) = match &self.document {
            Document::Image(manifest) => (self.digest.clone(), manifest.clone()),
            Document::Index(index) => {
                let entry = index.select(&wanted).ok_or_else(|| {
                    bad(format!(
                        "it has no image for {wanted} (it has {})",
                        index.platforms().join(", ")
                    ))
                })?;
                let bytes = self
                    .client
                    .get_manifest(self.client.repository(), &entry.digest.to_string())
                    .await?
                    .ok_or_else(|| {
                        bad(format!(
                            "its index names {}, which is missing",
                            entry.digest
                        ))
                    })?;
                if Digest::of(&bytes) != entry.digest {
                    return Err(bad(format!("its image {} has other bytes", entry.digest)));
                }
                match Document::parse(&bytes).map_err(&bad)? {
                    Document::Image(manifest) => (entry.digest.clone(), manifest),
                    Document::Index(_) => {
                        return Err(bad(format!("its entry {} is an index", entry.digest)))
                    }
                }
            }
        };
        let config = self
            .client
            .get_blob(&manifest.config.digest, MAX_CONFIG_BYTES)
            .await?
            .ok_or_else(|| bad(format!("its config {} is missing", manifest.config.digest)))?;
        let base =
            BaseImage::read(&name, digest, &manifest, &config).map_err(|e| bad(e.to_string()))?;
        let same = crate::image::read::PlatformDoc {
            os: base.platform.os.clone(),
            architecture: base.platform.architecture.clone(),
            variant: base.platform.variant.clone(),
        }
        .matches(&wanted);
        if !same {
            return Err(bad(format!(
                "it is an image for {}/{}, and the image is for {wanted}",
                base.platform.os, base.platform.architecture
            )));
        }
        Ok(base)
    }

    /// Brings the blobs of `bases` into `destination`'s repository: found there, mounted from
    /// the base's repository on the same registry, or streamed from the base's registry.
    pub(super) async fn bring_blobs(
        &self,
        destination: &Client,
        destination_ref: &Reference,
        bases: &[&BaseImage],
        reporter: &dyn Reporter,
        stop: &Stop,
    ) -> Result<CopyCounts, PushError> {
        let mut copying = Copying {
            source: &self.client,
            destination,
            same_registry: self.reference.api_host() == destination_ref.api_host(),
            reporter,
            outcome: CopyCounts::default(),
            stop: stop.child(),
        };
        let mut done: Vec<&Digest> = Vec::new();
        for base in bases {
            for layer in &base.layers {
                if done.contains(&&layer.digest) {
                    continue;
                }
                copying
                    .move_blob(&layer.digest, Some(layer.size), &base.digest)
                    .await
                    .map_err(|e| match e {
                        CopyError::Stopped => PushError::Stopped,
                        CopyError::Registry(e) => PushError::Registry(e),
                        other => PushError::Base {
                            base: self.reference.to_string(),
                            reason: other.to_string(),
                        },
                    })?;
                done.push(&layer.digest);
            }
        }
        Ok(copying.outcome)
    }
}
