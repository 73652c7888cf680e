//! A push to a registry: prepare the images while connecting, learn which layers the registry
//! already holds (the tag's current manifest, `--cache-from`), upload every blob, then write the
//! manifest (or, for multi-arch, each platform's manifest by digest and the index) under the
//! tags, last.

use std::sync::Arc;

use bytes::Bytes;

use super::manifest_format::{Kind, ManifestWriter};
use super::sbom::attach_all;
use super::unchanged::unchanged_push;
use super::upload::{upload_blobs, UploadOptions};
use super::{image_index, prepare_all, tags_for, PushError, SharedLayers};
use crate::credentials;
use crate::digest::Digest;
use crate::image::{index_children, ManifestFormat};
use crate::known_layers::{KnownBlob, KnownLayer, LearntLayers};
use crate::layer::Compression;
use crate::layer::LayerDigests;
use crate::nix::PlatformSpec;
use crate::outcome::{ImageOutcome, LayerReport, PushOutcome};
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{HttpNotices, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Client, ConnectOptions, Credentials};
use crate::request::PushRequest;

pub(super) async fn push_to_registry(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
    shared: &mut SharedLayers,
) -> Result<PushOutcome, PushError> {
    // Prepare and connect at once: wrong credentials or an unreachable registry are reported
    // without waiting for a long build, and a build error still comes first.
    reporter.phase(&format!(
        "building {} and connecting to {}",
        request.installables(),
        destination.registry()
    ));
    let connect = async {
        let credentials = credentials_for(request, destination, reporter.clone()).await?;
        let client = Client::connect(
            destination,
            ConnectOptions {
                insecure: request.insecure,
                ca_cert: request.ca_cert.clone(),
                credentials,
                notices: Arc::new(HttpNotices(reporter.clone())),
                access: Access::PullPush,
                retry: request.retry,
                host_facts: request.cache.hosts_dir(),
            },
        )
        .await?;
        Ok::<_, PushError>(client)
    };
    let (prepared, client) = tokio::join!(prepare_all(request, &reporter), connect);
    let prepared = prepared?;
    let client = client?;
    for p in &prepared {
        let (paths, nar_size) = (p.closure.paths.len(), p.closure.nar_size());
        reporter.phase(&format!(
            "{}: {paths} store paths ({} MiB) in {} layers",
            PlatformSpec::of(&p.plan.platform),
            nar_size / (1024 * 1024),
            p.plan.layers.len()
        ));
    }

    let tags = tags_for(request, &prepared)?;
    let (mut learnt, current) = learn_layers(
        &client,
        request,
        tags.first().map(String::as_str),
        reporter.as_ref(),
    )
    .await;
    if shared.registry.as_deref() == Some(destination.registry()) {
        learnt.merge(&shared.learnt);
    }
    let multi_arch = request.is_multi_arch();
    let mut writer = ManifestWriter::new(&client, request.format);
    if request.sbom.is_some() && writer.format() == ManifestFormat::Docker {
        // Said before anything moves: Docker schema 2 has no `subject`.
        return Err(super::sbom::no_referrers_on(&client));
    }
    if !request.verify {
        if let Some(outcome) = unchanged_push(
            request,
            destination,
            &client,
            &prepared,
            &learnt,
            current.as_ref(),
            writer.format(),
            &tags,
            reporter.as_ref(),
        )
        .await?
        {
            drop(prepared);
            return Ok(outcome);
        }
    }
    let mut uploads = Vec::with_capacity(prepared.len());
    for p in &prepared {
        let plan = &p.plan;
        let options = UploadOptions {
            // The plan's own: the media types it names and the blobs must agree.
            compression: plan.compression,
            jobs: request.jobs,
            cache: request.cache.clone(),
            learnt: learnt.clone(),
            verify: request.verify,
            mount_from: request.mount_from.clone(),
            upload: request.upload,
            stop: Default::default(),
        };
        let uploaded = upload_blobs(&client, plan, &options, reporter.clone()).await?;
        // Layers of one platform's image may serve the next (a shared customisation layer).
        for layer in &uploaded.layers {
            learnt.add(
                layer.key.clone(),
                known_layer(layer, plan.compression, client.repository()),
            );
        }
        uploads.push(uploaded);
    }

    // Every blob is in: the manifests now, in the format the host takes (settled by the first).
    let mut images = Vec::with_capacity(prepared.len());
    let mut documents_of = Vec::with_capacity(prepared.len());
    for ((source, p), uploaded) in request.images.iter().zip(&prepared).zip(uploads) {
        let plan = &p.plan;
        let digests: Vec<LayerDigests> =
            uploaded.layers.iter().map(|l| l.digests.clone()).collect();
        let render = |format| render_manifest(plan, &digests, format, &client);
        let documents = if multi_arch {
            // By digest: untagged until the index that names it is written.
            reporter.phase(&format!(
                "writing the {} manifest",
                PlatformSpec::of(&plan.platform)
            ));
            writer.put(None, Kind::Manifest, render).await?;
            render_documents(plan, &digests, writer.format(), &client)?
        } else {
            render_documents(plan, &digests, writer.format(), &client)?
        };
        images.push(ImageOutcome {
            installable: source.installable.clone(),
            platform: PlatformSpec::of(&plan.platform).to_string(),
            manifest_digest: documents.manifest_digest.clone(),
            config_digest: documents.config_digest.clone(),
            layers: uploaded.layers,
            sbom_digest: None,
        });
        documents_of.push((plan, digests, documents));
    }
    let plans: Vec<&ImagePlan> = prepared.iter().map(|p| &p.plan).collect();
    let top = |format| -> Result<Bytes, PushError> {
        if multi_arch {
            let documents: Vec<ImageDocuments> = documents_of
                .iter()
                .map(|(plan, digests, _)| render_documents(plan, digests, format, &client))
                .collect::<Result<_, _>>()?;
            Ok(Bytes::from(image_index(&plans, &documents, format)))
        } else {
            let (plan, digests, _) = &documents_of[0];
            render_manifest(plan, digests, format, &client)
        }
    };
    let kind = if multi_arch {
        Kind::Index
    } else {
        Kind::Manifest
    };
    let mut outcome = finish_registry_push(
        destination,
        &mut writer,
        (&top, kind),
        tags,
        images,
        reporter.as_ref(),
    )
    .await?;
    if let Some(sbom) = request.sbom {
        let manifests = documents_of
            .iter()
            .map(|(plan, digests, _)| render_manifest(plan, digests, writer.format(), &client))
            .collect::<Result<Vec<_>, _>>()?;
        attach_all(
            &client,
            &prepared,
            &manifests,
            writer.format(),
            sbom,
            &mut outcome.images,
            reporter.as_ref(),
        )
        .await?;
    }
    // `prepared` (and with it the GC roots) lives until the tags are written.
    drop(prepared);
    if shared.registry.as_deref() != Some(destination.registry()) {
        *shared = SharedLayers {
            registry: Some(destination.registry().to_owned()),
            learnt: LearntLayers::default(),
        };
    }
    for image in &outcome.images {
        for layer in &image.layers {
            shared.learnt.add(
                layer.key.clone(),
                known_layer(layer, request.compression, client.repository()),
            );
        }
    }
    Ok(outcome)
}

/// An image's config and manifest in `format`.
fn render_documents(
    plan: &ImagePlan,
    digests: &[LayerDigests],
    format: ManifestFormat,
    client: &Client,
) -> Result<ImageDocuments, PushError> {
    plan.documents_in(digests, format)
        .map_err(|source| PushError::NotInDockerFormat {
            host: client.registry().to_owned(),
            source,
        })
}

fn render_manifest(
    plan: &ImagePlan,
    digests: &[LayerDigests],
    format: ManifestFormat,
    client: &Client,
) -> Result<Bytes, PushError> {
    render_documents(plan, digests, format, client).map(|d| d.manifest)
}

/// The last step of a registry push, once every blob (and each platform's manifest) is in:
/// the top manifest or index, under each tag (or by digest).
async fn finish_registry_push(
    destination: &Reference,
    writer: &mut ManifestWriter<'_>,
    (top, kind): (&dyn Fn(ManifestFormat) -> Result<Bytes, PushError>, Kind),
    tags: Vec<String>,
    mut images: Vec<ImageOutcome>,
    reporter: &dyn Reporter,
) -> Result<PushOutcome, PushError> {
    if let Some(expected) = destination.digest() {
        // The digest asked for settles the format when nothing is written yet: the image in
        // OCI media types, or in Docker's; any other digest is not this image.
        let formats = writer.formats_left();
        let matching = formats
            .iter()
            .map(|f| Ok((*f, Digest::of(&top(*f)?))))
            .collect::<Result<Vec<_>, PushError>>()?;
        match matching.iter().find(|(_, d)| d == expected) {
            Some((format, _)) => writer.settle(*format),
            None => {
                return Err(PushError::DigestMismatch {
                    expected: expected.clone(),
                    actual: matching[0].1.clone(),
                })
            }
        }
    }
    let digest = Digest::of(&top(writer.format())?);
    let targets: Vec<Option<&str>> = if tags.is_empty() {
        vec![None]
    } else {
        tags.iter().map(|t| Some(t.as_str())).collect()
    };
    let mut written = digest;
    for target in targets {
        // Interrupted while winding down: no tag moves, even to a complete image.
        if super::is_interrupted() {
            return Err(PushError::Stopped);
        }
        reporter.phase(&format!(
            "writing {written} as {}",
            target.unwrap_or("its digest")
        ));
        written = writer.put(target, kind, top).await?.1;
    }
    let index_digest = matches!(kind, Kind::Index).then(|| written.clone());
    if let (Kind::Manifest, [image]) = (kind, images.as_mut_slice()) {
        // The host may have taken the manifest in another format than the one first rendered.
        image.manifest_digest = written.clone();
    }
    Ok(PushOutcome {
        destination: destination.to_string(),
        reference: destination.pinned(&written),
        digest: written,
        tags,
        to_stdout: false,
        images,
        index_digest,
        unchanged: false,
    })
}

fn known_layer(layer: &LayerReport, compression: Compression, repository: &str) -> KnownLayer {
    KnownLayer {
        layer: KnownBlob::new(&layer.digests, compression.media_type()),
        repository: repository.to_owned(),
    }
}

/// Most manifests of an index read to learn their layers.
const MAX_LEARNED_MANIFESTS: usize = 16;

/// Reads the manifests that may already name this image's layers: the tag about to be written
/// (the previous version, on a fresh CI runner; each platform's manifest when it is an index),
/// then each `--cache-from`. A manifest that cannot be read teaches nothing; it never fails the
/// push.
async fn learn_layers(
    client: &Client,
    request: &PushRequest,
    tag: Option<&str>,
    reporter: &dyn Reporter,
) -> (LearntLayers, Option<Bytes>) {
    let mut learnt = LearntLayers::default();
    // The tag's own document, as the registry holds it: an unchanged re-push is one that would
    // write exactly these bytes.
    let mut current = None;
    let mut sources: Vec<(String, String)> = Vec::new();
    if let Some(tag) = tag {
        sources.push((client.repository().to_owned(), tag.to_owned()));
    }
    for r in &request.cache_from {
        sources.push((r.repository().to_owned(), r.manifest_target()));
    }
    let mut read = 0;
    // Only the very first source is the tag's own document; the others (`--cache-from`, an
    // index's children) never stand for what the tag names.
    let mut first = tag.is_some();
    while let Some((repository, reference)) = (!sources.is_empty()).then(|| sources.remove(0)) {
        let is_tag = std::mem::take(&mut first);
        match client.get_manifest(&repository, &reference).await {
            Ok(Some(bytes)) => {
                if is_tag {
                    current = Some(bytes.clone());
                }
                read += 1;
                let n = learnt.learn(&bytes, &repository);
                if n > 0 {
                    reporter.phase(&format!("{repository}:{reference} names {n} known layers"));
                }
                for child in index_children(&bytes) {
                    if read + sources.len() < MAX_LEARNED_MANIFESTS {
                        sources.push((repository.clone(), child));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => reporter.phase(&format!(
                "not reusing layers of {repository}:{reference}: {e}"
            )),
        }
    }
    (learnt, current)
}

/// Credentials for the destination, the first source that has some: the ones given explicitly
/// (`--creds`, `--username` with `--password-stdin`, `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`),
/// then the stored ones (see [`credentials::lookup`]).
async fn credentials_for(
    request: &PushRequest,
    destination: &Reference,
    reporter: Arc<dyn Reporter>,
) -> Result<Option<Credentials>, PushError> {
    let explicit = request.credentials.clone();
    let registry = destination.registry().to_owned();
    // The keyring (D-Bus) and credential helpers (a child process) block: off the async
    // threads, so the build started beside this goes on meanwhile. Both are bounded in time.
    let found = tokio::task::spawn_blocking(move || {
        let found = credentials::lookup(explicit.as_ref(), &registry, reporter.as_ref());
        if let Ok(None) = found {
            reporter.detail(&format!(
                "credentials: none stored for {registry}; anonymous"
            ));
        }
        found
    })
    .await
    .unwrap_or(Ok(None))?;
    Ok(found)
}
