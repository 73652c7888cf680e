//! `nixpush rebase IMAGE`: an image's own layers (each image's, for an index) moved onto another
//! base (by default, its recorded base name read again: the base's security update) with no Nix
//! and none of its own layers sent again. The old base's layers are found in the image by the
//! base's digest (its `org.opencontainers.image.base.*` annotations, or `--old-base`); the new
//! base's blobs are brought in as a push with `--base` brings them; the config's base part is
//! replaced (`plan::rebased_config`); the manifests go in by digest, are signed when asked, and
//! only then do the tags move.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::base::{base_credentials, BaseSource, MAX_CONFIG_BYTES};
use super::copying::CopyCounts;
use super::PushError;
use crate::credentials::{connect, Reach};
use crate::digest::Digest;
use crate::image::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::image::read::Document;
use crate::image::ManifestFormat;
use crate::nix::Platform;
use crate::plan::{rebased_config, BaseImage, BASE_DIGEST_ANNOTATION, BASE_NAME_ANNOTATION};
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{Access, Client, Credentials, RetryPolicy};
use crate::stop::Stop;

/// What `nixpush rebase` is asked.
#[derive(Clone, Debug)]
pub struct RebaseRequest {
    /// The image to rebase, by tag or digest; the rebased image goes in the same repository.
    pub image: Reference,
    /// The new base; none: the base name the image records, read again.
    pub base: Option<Reference>,
    /// Which base the image's first layers are, for an image that records none.
    pub old_base: Option<Reference>,
    /// The tags to write; none: the image's tag (none: by digest only).
    pub tags: Vec<String>,
    /// Credentials for the image's registry (else the stored ones); a base elsewhere uses the
    /// stored ones of its registry.
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    pub ca_cert: Option<std::path::PathBuf>,
    pub retry: RetryPolicy,
    /// Sign the rebased image before any tag moves.
    pub signer: Option<Arc<crate::signing::Signer>>,
}

/// What a rebase did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebaseOutcome {
    /// `registry/repository@digest` of the rebased image.
    pub reference: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    /// The old and the new base, each `name@digest`.
    pub old_base: String,
    pub new_base: String,
    /// How the new base's blobs came in.
    pub counts: CopyCounts,
}

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("no manifest at {0} (no such tag, digest or repository)")]
    NotFound(String),
    #[error("{0} records no base (no org.opencontainers.image.base.name and .base.digest annotations): name the base its first layers are with --old-base REF")]
    NoRecordedBase(String),
    #[error("{image}: {reason}")]
    Unusable { image: String, reason: String },
}

impl From<crate::registry::RegistryError> for RebaseError {
    fn from(e: crate::registry::RegistryError) -> Self {
        RebaseError::Push(e.into())
    }
}

/// Rebases the image `request.image` names (an index: each of its images); see the module's
/// header.
///
/// Boxed, as `push` is: the binary awaits it (docs/benchmarks.md).
pub fn rebase<'a>(
    request: &'a RebaseRequest,
    reporter: Arc<dyn Reporter>,
    stop: &'a Stop,
) -> LocalBoxFuture<'a, Result<RebaseOutcome, RebaseError>> {
    Box::pin(async move {
        let image = &request.image;
        let shown = image.to_string();
        let reach = Reach {
            insecure: request.insecure,
            ca_cert: request.ca_cert.clone(),
            retry: request.retry,
        };
        let explicit = request.credentials.as_ref();
        let client: Client =
            connect::<PushError>(image, explicit, Access::PullPush, &reach, &reporter).await?;
        let bytes = client
            .get_manifest(client.repository(), &image.manifest_target())
            .await?
            .ok_or_else(|| RebaseError::NotFound(shown.clone()))?;
        let digest = Digest::of(&bytes);
        if image.digest().is_some_and(|d| *d != digest) {
            return Err(unusable(
                &shown,
                format!("the registry sent a manifest of digest {digest}"),
            ));
        }
        let mut rebasing = Rebasing {
            request,
            client: &client,
            reach,
            reporter: reporter.clone(),
            stop,
            bases: Vec::new(),
            counts: CopyCounts::default(),
        };
        let (media_type, top, bases) =
            match Document::parse(&bytes).map_err(|e| unusable(&shown, e))? {
                Document::Image(manifest) => {
                    let rebased = rebasing.rebase_image(&shown, &bytes, &manifest).await?;
                    (rebased.media_type, rebased.bytes, rebased.bases)
                }
                Document::Index(index) => rebasing.rebase_index(&shown, &bytes, &index).await?,
            };
        let top_digest = Digest::of(&top);
        client
            .put_manifest(
                &top_digest.to_string(),
                media_type,
                top.clone(),
                &top_digest,
            )
            .await?;
        if let Some(signer) = request.signer.as_deref() {
            let identity = format!("{}/{}", image.registry(), image.repository());
            let mut subjects = vec![top_digest.clone()];
            if let Document::Index(index) =
                Document::parse(&top).map_err(|e| unusable(&shown, e))?
            {
                subjects.extend(index.manifests.into_iter().map(|m| m.digest));
            }
            let reporter = reporter.as_ref();
            super::signatures::sign_subjects(&client, &identity, signer, &subjects, reporter)
                .await?;
        }
        let tags = match (&request.tags[..], image.tag()) {
            ([], Some(tag)) => vec![tag.to_owned()],
            (tags, _) => tags.to_vec(),
        };
        for tag in &tags {
            client
                .put_manifest(tag, media_type, top.clone(), &top_digest)
                .await?;
        }
        Ok(RebaseOutcome {
            reference: image.pinned(&top_digest),
            digest: top_digest,
            tags,
            old_base: bases.0,
            new_base: bases.1,
            counts: rebasing.counts,
        })
    })
}

fn unusable(image: &str, reason: String) -> RebaseError {
    RebaseError::Unusable {
        image: image.to_owned(),
        reason,
    }
}

/// One rebase under way: the image's registry, and the bases read so far (each read once).
struct Rebasing<'a> {
    request: &'a RebaseRequest,
    client: &'a Client,
    reach: Reach,
    reporter: Arc<dyn Reporter>,
    stop: &'a Stop,
    bases: Vec<(String, BaseSource)>,
    counts: CopyCounts,
}

/// One image rebased, its blobs and manifest (by digest) in the registry.
struct RebasedImage {
    media_type: &'static str,
    bytes: Bytes,
    /// The old and the new base, each `name@digest`.
    bases: (String, String),
}

impl Rebasing<'_> {
    /// The base `reference` names, read once per rebase.
    async fn base(&mut self, reference: &Reference) -> Result<usize, RebaseError> {
        let key = reference.to_string();
        if let Some(i) = self.bases.iter().position(|(k, _)| *k == key) {
            return Ok(i);
        }
        let given = self.request.credentials.as_ref();
        let explicit = base_credentials(reference, &self.request.image, given);
        let source = BaseSource::open(reference, explicit, &self.reach, &self.reporter).await?;
        self.bases.push((key, source));
        Ok(self.bases.len() - 1)
    }

    /// Each image of `index` rebased, and the index naming them (its platforms, annotations
    /// and order kept); entries that are not images of a platform (attestations) are dropped,
    /// as they name the old images.
    async fn rebase_index(
        &mut self,
        shown: &str,
        bytes: &[u8],
        index: &crate::image::read::IndexDoc,
    ) -> Result<(&'static str, Bytes, (String, String)), RebaseError> {
        let mut doc: Value =
            serde_json::from_slice(bytes).map_err(|e| unusable(shown, e.to_string()))?;
        let mut entries = Vec::new();
        let mut bases = None;
        let raw = doc["manifests"].as_array().cloned().unwrap_or_default();
        for (entry, raw) in index.manifests.iter().zip(raw) {
            let Some(platform) = entry.platform.as_ref().filter(|p| p.os != "unknown") else {
                continue;
            };
            let child = format!("{shown} ({platform})");
            let bytes = self
                .client
                .get_manifest(self.client.repository(), &entry.digest.to_string())
                .await?
                .filter(|b| Digest::of(b) == entry.digest)
                .ok_or_else(|| {
                    unusable(&child, format!("its image {} is missing", entry.digest))
                })?;
            let Document::Image(manifest) =
                Document::parse(&bytes).map_err(|e| unusable(&child, e))?
            else {
                return Err(unusable(&child, "an index in an index".into()));
            };
            let rebased = self.rebase_image(&child, &bytes, &manifest).await?;
            let mut raw = raw;
            raw["digest"] = Value::from(Digest::of(&rebased.bytes).to_string());
            raw["size"] = Value::from(rebased.bytes.len());
            raw["mediaType"] = Value::from(rebased.media_type);
            entries.push(raw);
            bases.get_or_insert(rebased.bases);
        }
        let bases = bases
            .ok_or_else(|| unusable(shown, "its index names no image of a platform".into()))?;
        doc["manifests"] = Value::from(entries);
        let media_type = match index.media_type.as_str() {
            DOCKER_MANIFEST_LIST => DOCKER_MANIFEST_LIST,
            _ => OCI_INDEX,
        };
        let bytes = serde_json::to_vec(&doc).expect("JSON serialises");
        Ok((media_type, Bytes::from(bytes), bases))
    }

    /// The image `manifest` (`bytes`) rebased: its new base's blobs and its config in the
    /// registry, its manifest by digest too when it is an index's.
    async fn rebase_image(
        &mut self,
        shown: &str,
        bytes: &[u8],
        manifest: &crate::image::read::ImageManifest,
    ) -> Result<RebasedImage, RebaseError> {
        let bad = |reason: String| unusable(shown, reason);
        let client = self.client;
        let config = client
            .get_blob(&manifest.config.digest, MAX_CONFIG_BYTES)
            .await?
            .ok_or_else(|| bad(format!("its config {} is missing", manifest.config.digest)))?;
        let platform = platform_of(&config).map_err(&bad)?;
        let recorded = (
            manifest.annotations.get(BASE_NAME_ANNOTATION),
            manifest.annotations.get(BASE_DIGEST_ANNOTATION),
        );
        let old_ref = match (&self.request.old_base, recorded) {
            (Some(r), _) => r.clone(),
            (None, (Some(name), Some(base_digest))) => {
                let name = Reference::parse(name).map_err(|e| bad(e.to_string()))?;
                Reference::parse(&format!(
                    "{}/{}@{base_digest}",
                    name.registry(),
                    name.repository()
                ))
                .map_err(|e| bad(e.to_string()))?
            }
            (None, _) => return Err(RebaseError::NoRecordedBase(shown.to_owned())),
        };
        let new_ref = match (&self.request.base, recorded.0) {
            (Some(r), _) => r.clone(),
            (None, Some(name)) => Reference::parse(name).map_err(|e| bad(e.to_string()))?,
            (None, None) => {
                return Err(bad(
                    "it records no base name to read again: name the new base with --base".into(),
                ))
            }
        };
        let old = self.base(&old_ref).await?;
        let old = self.bases[old].1.image_for(&platform).await?;
        let mine = manifest.layers.len();
        if mine < old.layers.len()
            || manifest
                .layers
                .iter()
                .zip(&old.layers)
                .any(|(ours, theirs)| ours.digest != theirs.digest)
        {
            return Err(bad(format!(
                "its first layers are not those of {}@{}",
                old.name, old.digest
            )));
        }
        let new_source = self.base(&new_ref).await?;
        let new_source = &self.bases[new_source].1;
        let new = new_source.image_for(&platform).await?;
        let config = rebased_config(&config, &old, &new).map_err(|e| bad(e.to_string()))?;
        let config = Bytes::from(serde_json::to_vec(&config).expect("JSON serialises"));
        let config_digest = Digest::of(&config);
        let (media_type, rebased) = rebased_manifest(
            bytes,
            &manifest.media_type,
            &old,
            &new,
            &config_digest,
            config.len(),
        )
        .map_err(&bad)?;
        let image = &self.request.image;
        let counts = new_source
            .bring_blobs(client, image, &[&new], self.reporter.as_ref(), self.stop)
            .await?;
        self.counts.streamed += counts.streamed;
        self.counts.mounted += counts.mounted;
        self.counts.skipped += counts.skipped;
        client.ensure_blob(&config_digest, config).await?;
        let digest = Digest::of(&rebased);
        client
            .put_manifest(&digest.to_string(), media_type, rebased.clone(), &digest)
            .await?;
        Ok(RebasedImage {
            media_type,
            bytes: rebased,
            bases: (
                format!("{}@{}", old.name, old.digest),
                format!("{}@{}", new.name, new.digest),
            ),
        })
    }
}

/// The platform an image config states.
fn platform_of(config: &[u8]) -> Result<Platform, String> {
    let doc: Value = serde_json::from_slice(config).map_err(|e| format!("its config: {e}"))?;
    let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Platform {
        os: text("os").ok_or("its config names no os")?,
        architecture: text("architecture").ok_or("its config names no architecture")?,
        variant: text("variant"),
    })
}

/// The manifest `bytes` (of `media_type`) with `old`'s layers replaced by `new`'s, the config
/// `config_digest` of `config_size` bytes, and (OCI) the base annotations naming `new`.
fn rebased_manifest(
    bytes: &[u8],
    media_type: &str,
    old: &BaseImage,
    new: &BaseImage,
    config_digest: &Digest,
    config_size: usize,
) -> Result<(&'static str, Bytes), String> {
    let (format, media_type) = match media_type {
        DOCKER_MANIFEST => (ManifestFormat::Docker, DOCKER_MANIFEST),
        _ => (ManifestFormat::Oci, OCI_MANIFEST),
    };
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    doc["config"]["digest"] = Value::from(config_digest.to_string());
    doc["config"]["size"] = Value::from(config_size);
    let own: Vec<Value> = doc["layers"]
        .as_array()
        .map(|l| l[old.layers.len()..].to_vec())
        .unwrap_or_default();
    let mut layers = Vec::with_capacity(new.layers.len() + own.len());
    for layer in &new.layers {
        let kind = format
            .layer_type(layer.media_type)
            .map_err(|e| e.to_string())?;
        layers.push(serde_json::json!({
            "mediaType": kind,
            "digest": layer.digest.to_string(),
            "size": layer.size,
        }));
    }
    layers.extend(own);
    doc["layers"] = Value::from(layers);
    if format == ManifestFormat::Oci {
        let annotations = doc
            .as_object_mut()
            .expect("a manifest is an object")
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        annotations[BASE_NAME_ANNOTATION] = Value::from(new.name.as_str());
        annotations[BASE_DIGEST_ANNOTATION] = Value::from(new.digest.to_string());
    }
    let bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    Ok((media_type, Bytes::from(bytes)))
}
