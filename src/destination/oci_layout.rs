//! `oci:DIR[:TAG]`: the image written as an OCI image layout, which skopeo, podman and umoci
//! read. Each layer blob is the very blob a registry push uploads (the same tar, compressed the
//! same way), streamed into a temporary file among the blobs while it is hashed and renamed to
//! its digest at the end; then the config and manifest blobs, byte-identical to a push's, and
//! last `index.json`, so a tag never names an image whose blobs are not all there.
//!
//! A layer already in the layout is not built again: nixpush's manifests in the layout name
//! each layer's key (see `oci_index`), and a blob of the recorded size is taken as is, without
//! reading the store, as a registry push takes a blob its HEAD confirms. A layer not known that
//! way is built; if its blob then turns out to be there already, the new copy is dropped.

use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use super::blob_dir::{write_whole, BlobDir};
use super::oci_index::{known_layers, merged_index, merged_index_of};
use super::output::LayerOutput;
use super::{LayerWork, LocalError, WrittenImage};
use crate::digest::Digest;
use crate::image::{OCI_INDEX, OCI_MANIFEST};
use crate::known_layers::KnownBlob;
use crate::layer::LayerFailure;
use crate::layer::{build_layer, Compression, LayerDigests, LayerError, LayerSpec};
use crate::layer_jobs::LayerJobs;
use crate::outcome::LayerAction;
use crate::outcome::LayerReport;
use crate::plan::ImagePlan;
use crate::progress::{Phase, Reporter};
use crate::stop::Stop;

/// What `oci-layout` says: the version of the image layout specification followed.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Write buffer of a layer file: the compressor's output comes in small pieces.
const FILE_BUFFER: usize = 64 * 1024;

/// Writes `plan`'s image into the layout at `dir` under each of `tags`.
pub(crate) async fn write(
    plan: &ImagePlan,
    dir: &Path,
    tags: &[String],
    work: &LayerWork,
) -> Result<WrittenImage, LocalError> {
    let written = write_blobs(plan, dir, tags, work).await?;
    let documents = &written.documents;
    record_tags(
        dir,
        OCI_MANIFEST,
        &documents.manifest_digest,
        documents.manifest.len() as u64,
        tags,
        None,
    )?;
    Ok(written)
}

/// Writes a multi-arch image into the layout at `dir`: each platform's image (its blobs and
/// manifest, untagged), then the image `index` naming them, under each of `tags`. `index` is
/// made from the written images' documents, so it is the very index a registry push writes.
pub(crate) async fn write_multi(
    plans: &[&ImagePlan],
    index: impl FnOnce(&[WrittenImage]) -> Vec<u8>,
    dir: &Path,
    tags: &[String],
    work: &LayerWork,
) -> Result<(Vec<WrittenImage>, Digest), LocalError> {
    let mut written = Vec::with_capacity(plans.len());
    for plan in plans {
        written.push(write_blobs(plan, dir, tags, work).await?);
    }
    let index = index(&written);
    let digest = Digest::of(&index);
    BlobDir::create(dir)?.put(&digest, &index)?;
    record_tags(dir, OCI_INDEX, &digest, index.len() as u64, tags, None)?;
    Ok((written, digest))
}

/// Puts every blob of `plan`'s image in the layout at `dir` (layers, config, manifest), naming
/// it nowhere yet.
async fn write_blobs(
    plan: &ImagePlan,
    dir: &Path,
    tags: &[String],
    work: &LayerWork,
) -> Result<WrittenImage, LocalError> {
    let reporter = &work.reporter;
    reporter.phase(&Phase::WritingLayout {
        dir: dir.to_owned(),
    });
    let blobs = BlobDir::create(dir)?;
    if !dir.join("oci-layout").exists() {
        write_whole(&dir.join("oci-layout"), OCI_LAYOUT)?;
    }
    // An index.json that is not an index stops the write now, not after every layer is built.
    if let Some(existing) = read_index(dir)? {
        merged_index(Some(&existing), &crate::digest::Digest::of(b""), 0, tags).map_err(
            |source| LocalError::BadIndex {
                path: dir.join("index.json"),
                source,
            },
        )?;
    }
    let known = known_layers(dir, &blobs);

    let cancel = work.stop.child();
    let _stop = cancel.on_drop();
    let total = plan.layers.len();
    let layers = LayerJobs::until_ended(total, work.jobs, &cancel)
        .run(
            || LocalError::Cancelled,
            |index| {
                let spec = &plan.layers[index];
                let (blobs, cancel, reporter) = (blobs.clone(), cancel.clone(), reporter.clone());
                let present = known
                    .get(&spec.key)
                    .map(|k| &k.layer)
                    .filter(|k| {
                        k.media_type == spec.media_type(plan.compression)
                            && blobs.has(&k.digest, k.size)
                    })
                    .map(KnownBlob::digests);
                async move {
                    reporter.layer_started(index, total, &spec.describe());
                    let report = match present {
                        Some(digests) => LayerReport::new(spec, digests, LayerAction::Skipped, 0),
                        None => {
                            write_layer(spec, index, plan.compression, blobs, cancel, &reporter)
                                .await?
                        }
                    };
                    let d = &report.digests;
                    reporter.layer_done(index, &report.action, &d.digest, d.size);
                    Ok(report)
                }
            },
        )
        .await?;

    let digests: Vec<LayerDigests> = layers.iter().map(|l| l.digests.clone()).collect();
    let documents = plan.documents(&digests);
    blobs.put(&documents.config_digest, &documents.config)?;
    blobs.put(&documents.manifest_digest, &documents.manifest)?;
    Ok(WrittenImage { documents, layers })
}

/// Builds one layer into a temporary blob file on a blocking thread and names it after its
/// digest.
async fn write_layer(
    spec: &LayerSpec,
    index: usize,
    compression: Compression,
    blobs: BlobDir,
    cancel: Stop,
    reporter: &Arc<dyn Reporter>,
) -> Result<LayerReport, LocalError> {
    let owned = spec.clone();
    let reporter = reporter.clone();
    let built = tokio::task::spawn_blocking(move || {
        let spec = owned;
        let fail = |e| layer_error(&spec, index, e);
        let temp = blobs.temp_file()?;
        let out = LayerOutput::new(temp, cancel).reporting(index, reporter);
        let out = BufWriter::with_capacity(FILE_BUFFER, out);
        let (out, digests) = build_layer(&spec, compression, out).map_err(fail)?;
        let out = out
            .into_inner()
            .map_err(|e| fail(LayerError::Sink(e.into_error())))?;
        let (temp, written) = out.finish();
        let placed = blobs.commit(temp, &digests.digest, digests.size)?;
        Ok::<_, LocalError>((digests, written, placed))
    })
    .await
    .map_err(|_| layer_error(spec, index, LayerError::Panicked))?;
    let (digests, written, placed) = built?;
    let action = if placed {
        LayerAction::Pushed
    } else {
        LayerAction::Skipped
    };
    Ok(LayerReport::new(spec, digests, action, written))
}

/// The layout's `index.json`, if it has one.
fn read_index(dir: &Path) -> Result<Option<Vec<u8>>, LocalError> {
    let path = dir.join("index.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LocalError::Read { path, source }),
    }
}

/// Points each tag at the document (`media_type`: a manifest, or an index) in `index.json`,
/// keeping every other entry. Read again just before writing, so a concurrent writer's entries
/// made meanwhile are kept too.
fn record_tags(
    dir: &Path,
    media_type: &str,
    digest: &Digest,
    size: u64,
    tags: &[String],
    artifact_type: Option<&str>,
) -> Result<(), LocalError> {
    let path = dir.join("index.json");
    // Writers of one layout take turns on its `oci-layout` file (always there, and read by no
    // one for anything else), so two runs tagging at once both keep their tags.
    let marker = dir.join("oci-layout");
    let lock = std::fs::File::open(&marker).map_err(|source| LocalError::Read {
        path: marker.clone(),
        source,
    })?;
    lock.lock().map_err(|source| LocalError::Write {
        path: marker.clone(),
        source,
    })?;
    let existing = read_index(dir)?;
    let index = merged_index_of(
        existing.as_deref(),
        media_type,
        digest,
        size,
        tags,
        artifact_type,
    )
    .map_err(|source| LocalError::BadIndex {
        path: path.clone(),
        source,
    })?;
    // The lock is released when `lock` is closed, after the new index is in place.
    write_whole(&path, &index)
}

/// Attaches an artifact to an image of the layout at `dir`: its blobs (`blobs`: the empty config
/// and the artifact's one layer) and its `manifest` (whose `subject` names the image), listed
/// untagged in `index.json` with its `artifactType`, as tools that read referrers from a layout
/// find it.
pub(crate) fn attach(
    dir: &Path,
    blobs: &[&[u8]],
    manifest: &[u8],
    artifact_type: &str,
) -> Result<Digest, LocalError> {
    let store = BlobDir::create(dir)?;
    for blob in blobs.iter().chain([&manifest]) {
        store.put(&Digest::of(blob), blob)?;
    }
    let digest = Digest::of(manifest);
    record_tags(
        dir,
        OCI_MANIFEST,
        &digest,
        manifest.len() as u64,
        &[],
        Some(artifact_type),
    )?;
    Ok(digest)
}

/// A layer's failure, naming the layer.
fn layer_error(spec: &LayerSpec, index: usize, source: LayerError) -> LocalError {
    LayerFailure::new(spec, index, source).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::test_plan;
    use crate::layer::DEFAULT_ZSTD_LEVEL;
    use crate::progress::Silent;

    fn work(jobs: usize) -> LayerWork {
        LayerWork {
            jobs,
            reporter: Arc::new(Silent),
            stop: Stop::default(),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walk(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_the_blobs_a_push_would_upload_and_an_index_naming_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/layout");
        let plan = test_plan::plan(Compression::default());
        let written = write(&plan, &dir, &["v1".into()], &work(2)).await.unwrap();

        // Each layer blob is what build_layer gives for the registry push.
        for (spec, report) in plan.layers.iter().zip(&written.layers) {
            let (blob, expected) = build_layer(spec, plan.compression, Vec::new()).unwrap();
            assert_eq!(report.digests, expected);
            assert_eq!(report.action, LayerAction::Pushed);
            assert_eq!(report.bytes_sent, blob.len() as u64);
            assert_eq!(
                std::fs::read(dir.join("blobs/sha256").join(expected.digest.hex())).unwrap(),
                blob
            );
        }
        let digests: Vec<_> = written.layers.iter().map(|l| l.digests.clone()).collect();
        let documents = plan.documents(&digests);
        assert_eq!(written.documents.manifest, documents.manifest);
        let blob = |d: &crate::digest::Digest| {
            std::fs::read(dir.join("blobs/sha256").join(d.hex())).unwrap()
        };
        assert_eq!(blob(&documents.config_digest), documents.config);
        assert_eq!(blob(&documents.manifest_digest), documents.manifest);
        assert_eq!(std::fs::read(dir.join("oci-layout")).unwrap(), OCI_LAYOUT);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["digest"],
            documents.manifest_digest.to_string()
        );
        assert_eq!(index["manifests"][0]["size"], documents.manifest.len());
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "v1"
        );
        // Nothing but the layout's files: no temporary file is left.
        assert_eq!(files(&dir).len(), 2 + 3 + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_tag_reuses_the_layers_and_keeps_the_first_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        let plan = test_plan::plan(Compression::default());
        let first = write(&plan, &dir, &["v1".into()], &work(2)).await.unwrap();
        let blob = dir
            .join("blobs/sha256")
            .join(first.layers[0].digests.digest.hex());
        let before = std::fs::metadata(&blob).unwrap().modified().unwrap();

        let other = test_plan::plan(Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        });
        let second = write(&plan, &dir, &["v2".into()], &work(2)).await.unwrap();
        assert_eq!(
            second.documents.manifest_digest,
            first.documents.manifest_digest
        );
        assert!(second
            .layers
            .iter()
            .all(|l| l.action == LayerAction::Skipped && l.bytes_sent == 0));
        assert_eq!(
            std::fs::metadata(&blob).unwrap().modified().unwrap(),
            before
        );

        // Another compression is another blob: built, not taken from the gzip one.
        let third = write(&other, &dir, &["zstd".into()], &work(2))
            .await
            .unwrap();
        assert!(third.layers.iter().all(|l| l.action == LayerAction::Pushed));

        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["v1", "v2", "zstd"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_leaves_no_temporary_file_and_no_index() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        let mut plan = test_plan::plan(Compression::default());
        // A store path that is not there: its layer fails while the others are being written.
        plan.layers[1] = crate::plan::store_paths_layer(
            &[],
            &Default::default(),
            crate::layer::NIX_DIRS_MODE,
            plan.compression,
        );
        plan.layers[1].content = crate::layer::LayerContent::StorePaths {
            paths: vec![tmp.path().join("missing")],
            owner: Default::default(),
            nix_dirs_mode: crate::layer::NIX_DIRS_MODE,
            source: Default::default(),
        };
        let err = write(&plan, &dir, &["v1".into()], &work(3))
            .await
            .expect_err("the missing path fails the write");
        assert!(
            matches!(err, LocalError::Layer(LayerFailure { index: 1, .. })),
            "{err:?}"
        );
        assert!(!dir.join("index.json").exists());
        for f in files(&dir) {
            assert!(
                f == "oci-layout" || f.starts_with("blobs/sha256/") && !f.contains(".nixpush-tmp"),
                "left behind: {f}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_json_that_is_not_an_index_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("index.json"), b"not json").unwrap();
        let plan = test_plan::plan(Compression::default());
        let err = write(&plan, tmp.path(), &["v1".into()], &work(2))
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("is not an OCI image index"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("index.json")).unwrap(),
            b"not json"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_tagging_one_layout_at_once_keep_every_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        let plan = test_plan::plan(Compression::default());
        // Laid out once, so the writers below race only on index.json.
        write(&plan, &dir, &["first".into()], &work(2))
            .await
            .unwrap();
        let tags: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let writes = tags.iter().map(|t| {
            let (plan, dir) = (plan.clone(), dir.clone());
            let tag = t.clone();
            tokio::spawn(async move { write(&plan, &dir, &[tag], &work(1)).await })
        });
        for w in futures_util::future::join_all(writes).await {
            w.unwrap().unwrap();
        }
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut names: Vec<String> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        names.sort();
        let mut expected = tags.clone();
        expected.push("first".into());
        expected.sort();
        assert_eq!(names, expected);
    }
}
