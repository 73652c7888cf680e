//! `docker-archive:-` and `docker-archive:FILE`: the image as the tar stream `docker save`
//! writes, which `docker load`, `podman load` and `skopeo copy docker-archive:` read. In it: one
//! uncompressed layer tar per layer (`<diff_id hex>.tar`), the image config (`<digest
//! hex>.json`, the very bytes a registry push uploads, so the loaded image's ID is the pushed
//! config's digest), and `manifest.json` naming them with the `RepoTags`. Entries are in
//! `docker save`'s order: layers, config, `manifest.json` last.
//!
//! Nothing touches the disk but the archive itself (and with `-` not even that), which costs a
//! second read of each layer: a tar entry's header holds its size, and a layer's size is only
//! known once it has been produced. So every layer is first measured (`measure`: its tar's size
//! and diff_id, and, from the same read, the compressed blob's digest a push would upload, so the
//! layers and manifest digest reported are the push's), concurrently; then the archive is
//! written on one blocking thread, each layer read from the store again and streamed in
//! uncompressed. Compression is paid once, in the measuring pass: without it the reported layer
//! digests and manifest digest would not be the ones a push gives. A layer that reads
//! differently the second time fails the write rather than produce a broken archive.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::blob_dir::{persist, temp_in};
use super::measure::{measure_layer, MeasuredLayer};
use super::output::LayerOutput;
use super::{LayerWork, LocalError, WrittenImage};
use crate::layer::LayerFailure;
use crate::layer::{
    build_layer, Compression, LayerDigests, LayerError, LayerSpec, Owner, TarKind, TarWriter,
};
use crate::layer_jobs::LayerJobs;
use crate::outcome::LayerAction;
use crate::outcome::LayerReport;
use crate::plan::{ImageDocuments, ImagePlan};
use crate::progress::{Phase, Reporter};
use crate::reference::DEFAULT_TAG;
use crate::stop::Stop;

/// Write buffer of the archive: layer bytes come in 64 KiB chunks, headers in 512-byte blocks.
const ARCHIVE_BUFFER: usize = 64 * 1024;
/// Mode of every entry of the archive (what `docker save` gives them).
const ENTRY_MODE: u32 = 0o644;

/// The `RepoTags` for an image named `name` (`NAME[:TAG]`): that name if it has a tag, else
/// the name with each of `tags` (`latest` if none). No name, no tags: the image loads untagged.
pub(crate) fn repo_tags(name: Option<&str>, tags: &[String]) -> Vec<String> {
    let Some(name) = name else {
        return Vec::new();
    };
    // A ':' after the last '/' starts the tag ("host:5000/app" has none).
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        return vec![name.to_owned()];
    }
    if tags.is_empty() {
        return vec![format!("{name}:{DEFAULT_TAG}")];
    }
    tags.iter().map(|t| format!("{name}:{t}")).collect()
}

/// The archive's `manifest.json`.
fn archive_manifest(
    documents: &ImageDocuments,
    layers: &[MeasuredLayer],
    repo_tags: &[String],
) -> Vec<u8> {
    let layers: Vec<String> = layers.iter().map(|l| layer_entry(&l.digests)).collect();
    let manifest = json!([{
        "Config": config_entry(documents),
        "RepoTags": repo_tags,
        "Layers": layers,
    }]);
    serde_json::to_vec(&manifest).expect("a JSON value always serialises")
}

fn layer_entry(digests: &LayerDigests) -> String {
    format!("{}.tar", digests.diff_id.hex())
}

fn config_entry(documents: &ImageDocuments) -> String {
    format!("{}.json", documents.config_digest.hex())
}

/// Writes `plan`'s image as a docker-archive to `path`, or to standard output when `None`.
pub(crate) async fn write(
    plan: &ImagePlan,
    path: Option<&Path>,
    repo_tags: &[String],
    work: &LayerWork,
) -> Result<WrittenImage, LocalError> {
    let reporter = work.reporter.clone();
    let cancel = work.stop.child();
    let _stop = cancel.on_drop();
    let total = plan.layers.len();
    reporter.phase(&Phase::MeasuringLayers);
    let measured = LayerJobs::until_ended(total, work.jobs, &cancel)
        .run(
            || LocalError::Cancelled,
            |index| {
                let spec = plan.layers[index].clone();
                let (cancel, reporter, compression) =
                    (cancel.clone(), reporter.clone(), plan.compression);
                async move {
                    reporter.layer_started(index, total, &spec.describe());
                    let measured = tokio::task::spawn_blocking(move || {
                        measure_layer(&spec, compression, cancel)
                    })
                    .await
                    .map_err(|_| LayerError::Panicked)
                    .and_then(|r| r);
                    measured.map_err(|e| layer_error(&plan.layers[index], index, e))
                }
            },
        )
        .await?;

    let digests: Vec<LayerDigests> = measured.iter().map(|m| m.digests.clone()).collect();
    let documents = plan.documents(&digests);
    let manifest = archive_manifest(&documents, &measured, repo_tags);
    let target = match path {
        Some(p) => Output::File(p.to_owned()),
        None => Output::Stdout,
    };
    reporter.phase(&Phase::WritingArchive {
        target: target.to_string(),
    });
    let archive = Archive {
        layers: plan.layers.clone(),
        measured,
        documents: documents.clone(),
        manifest,
        cancel,
        reporter,
    };
    let sent = tokio::task::spawn_blocking(move || target.write(archive))
        .await
        .map_err(|_| LocalError::Panicked)??;
    let layers = plan
        .layers
        .iter()
        .zip(digests)
        .zip(sent)
        .map(|((spec, digests), (action, bytes))| LayerReport::new(spec, digests, action, bytes))
        .collect();
    Ok(WrittenImage { documents, layers })
}

/// Where the archive goes.
enum Output {
    Stdout,
    /// A file, written beside it under a temporary name and renamed into place at the end.
    File(PathBuf),
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("standard output"),
            Output::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Output {
    /// Writes the archive; each layer's action and the bytes written for it. Blocking.
    fn write(&self, archive: Archive) -> Result<Vec<(LayerAction, u64)>, LocalError> {
        let failed = |source: io::Error| -> LocalError {
            match self {
                Output::Stdout => LocalError::Stdout(source),
                Output::File(path) => LocalError::Write {
                    path: path.clone(),
                    source,
                },
            }
        };
        match self {
            Output::Stdout => {
                let out = BufWriter::with_capacity(ARCHIVE_BUFFER, io::stdout().lock());
                let (out, sent) = archive.write_to(out, &failed)?;
                // Standard output keeps what has no newline after it until flushed.
                let mut stdout = out.into_inner().map_err(|e| failed(e.into_error()))?;
                stdout.flush().map_err(failed)?;
                Ok(sent)
            }
            Output::File(path) => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let out = BufWriter::with_capacity(ARCHIVE_BUFFER, temp_in(dir)?);
                let (out, sent) = archive.write_to(out, &failed)?;
                let temp = out.into_inner().map_err(|e| failed(e.into_error()))?;
                persist(temp, path)?;
                Ok(sent)
            }
        }
    }
}

/// Everything the archive holds, measured.
struct Archive {
    layers: Vec<LayerSpec>,
    measured: Vec<MeasuredLayer>,
    documents: ImageDocuments,
    manifest: Vec<u8>,
    cancel: Stop,
    reporter: Arc<dyn Reporter>,
}

impl Archive {
    /// Writes the archive's entries to `out`; `failed` names an error of `out` itself.
    fn write_to<W: Write>(
        self,
        out: W,
        failed: &dyn Fn(io::Error) -> LocalError,
    ) -> Result<(W, Vec<(LayerAction, u64)>), LocalError> {
        let owner = Owner::default();
        let mut tar = TarWriter::new(out);
        let mut written = HashSet::new();
        let mut sent = Vec::with_capacity(self.layers.len());
        for (index, (spec, measured)) in self.layers.iter().zip(&self.measured).enumerate() {
            let name = layer_entry(&measured.digests);
            // Two layers with the same tar (rare: empty ones) share one entry.
            let (action, bytes) = if written.insert(name.clone()) {
                let entry = TarKind::File {
                    size: measured.tar_size,
                };
                tar.append_header(name.as_bytes(), entry, ENTRY_MODE, &owner)
                    .map_err(failed)?;
                let bytes = self.stream_layer(&mut tar, spec, index, measured, failed)?;
                tar.pad(measured.tar_size).map_err(failed)?;
                (LayerAction::Pushed, bytes)
            } else {
                (LayerAction::Skipped, 0)
            };
            let d = &measured.digests;
            self.reporter.layer_done(index, &action, &d.digest, d.size);
            sent.push((action, bytes));
        }
        let config = &self.documents.config;
        for (name, bytes) in [
            (config_entry(&self.documents), &config[..]),
            ("manifest.json".to_owned(), &self.manifest[..]),
        ] {
            let size = bytes.len() as u64;
            tar.append_header(name.as_bytes(), TarKind::File { size }, ENTRY_MODE, &owner)
                .and_then(|()| tar.write_content(bytes))
                .and_then(|()| tar.pad(size))
                .map_err(failed)?;
        }
        let out = tar.finish().map_err(failed)?;
        Ok((out, sent))
    }

    /// Reads the layer from the store again, uncompressed, into its entry; it must be exactly
    /// the tar that was measured. Returns the bytes written.
    fn stream_layer<W: Write>(
        &self,
        tar: &mut TarWriter<W>,
        spec: &LayerSpec,
        index: usize,
        measured: &MeasuredLayer,
        failed: &dyn Fn(io::Error) -> LocalError,
    ) -> Result<u64, LocalError> {
        let changed = || {
            let path = spec.store_paths().first().cloned().unwrap_or_default();
            layer_error(spec, index, LayerError::Changed { path })
        };
        let overflow = Cell::new(false);
        let entry = EntryContent {
            tar,
            remaining: measured.tar_size,
            overflow: &overflow,
        };
        let out =
            LayerOutput::new(entry, self.cancel.clone()).reporting(index, self.reporter.clone());
        let (out, again) = match build_layer(spec, Compression::None, out) {
            Ok(built) => built,
            Err(LayerError::Sink(_)) if overflow.get() => return Err(changed()),
            // The output failed (the reader of standard output went away, a full disk).
            Err(LayerError::Sink(e)) if !self.cancel.is_stopped() => return Err(failed(e)),
            Err(e) => return Err(layer_error(spec, index, e)),
        };
        let (entry, bytes) = out.finish();
        if entry.remaining != 0 || again.diff_id != measured.digests.diff_id {
            return Err(changed());
        }
        Ok(bytes)
    }
}

/// A tar entry's content: at most the size its header announced.
struct EntryContent<'a, W> {
    tar: &'a mut TarWriter<W>,
    remaining: u64,
    /// Set when more bytes came than announced: the layer changed since it was measured.
    overflow: &'a Cell<bool>,
}

impl<W: Write> Write for EntryContent<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.remaining {
            self.overflow.set(true);
            return Err(io::Error::other(
                "the layer is larger than when it was measured",
            ));
        }
        self.tar.write_content(buf)?;
        self.remaining -= buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A layer's failure, naming the layer.
fn layer_error(spec: &LayerSpec, index: usize, source: LayerError) -> LocalError {
    LayerFailure::new(spec, index, source).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::test_plan;
    use crate::progress::Silent;

    fn work() -> LayerWork {
        LayerWork {
            jobs: 2,
            reporter: Arc::new(Silent),
            stop: Stop::default(),
        }
    }

    /// The entries of an archive as (name, content): ustar headers only, as nixpush writes
    /// them for short names and small sizes.
    fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 512 <= archive.len() && archive[at..at + 512].iter().any(|&b| b != 0) {
            let h = &archive[at..at + 512];
            let name = String::from_utf8(h[..100].split(|&b| b == 0).next().unwrap().to_vec());
            let size = u64::from_str_radix(
                std::str::from_utf8(&h[124..135])
                    .unwrap()
                    .trim_start_matches('0'),
                8,
            )
            .unwrap_or(0) as usize;
            assert_eq!(h[156], b'0', "only regular files");
            at += 512;
            out.push((name.unwrap(), archive[at..at + size].to_vec()));
            at += size.div_ceil(512) * 512;
        }
        assert_eq!(archive.len() % 10240, 0);
        out
    }

    #[test]
    fn repo_tags_come_from_the_name_or_the_tags() {
        let tags = ["v1".to_owned(), "latest".to_owned()];
        assert!(repo_tags(None, &tags).is_empty());
        assert_eq!(repo_tags(Some("demo/app:x"), &tags), ["demo/app:x"]);
        assert_eq!(
            repo_tags(Some("127.0.0.1:5000/demo/app"), &tags),
            [
                "127.0.0.1:5000/demo/app:v1",
                "127.0.0.1:5000/demo/app:latest"
            ]
        );
        assert_eq!(repo_tags(Some("app"), &[]), ["app:latest"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_archive_holds_the_pushed_config_and_the_uncompressed_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("image.tar");
        let mut plan = test_plan::plan(Compression::default());
        // A repeated layer is stored once and named twice.
        plan.layers.push(test_plan::layer(2, false));
        let tags = repo_tags(Some("demo/app"), &["v1".into()]);
        let written = write(&plan, Some(&path), &tags, &work()).await.unwrap();
        // Nothing but the archive in its directory.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        let pushed: Vec<LayerDigests> = plan
            .layers
            .iter()
            .map(|l| build_layer(l, plan.compression, io::sink()).unwrap().1)
            .collect();
        let reported: Vec<LayerDigests> =
            written.layers.iter().map(|l| l.digests.clone()).collect();
        assert_eq!(reported, pushed);
        let documents = plan.documents(&pushed);
        assert_eq!(written.documents.manifest, documents.manifest);
        assert_eq!(written.documents.config, documents.config);

        let archive = std::fs::read(&path).unwrap();
        let entries = entries(&archive);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        let layer_names: Vec<String> = pushed
            .iter()
            .map(|d| format!("{}.tar", d.diff_id.hex()))
            .collect();
        let config_name = format!("{}.json", documents.config_digest.hex());
        assert_eq!(
            names,
            [
                &layer_names[0][..],
                &layer_names[1],
                &layer_names[2],
                &config_name,
                "manifest.json"
            ]
        );
        for (i, spec) in plan.layers.iter().take(3).enumerate() {
            let (tar, _) = build_layer(spec, Compression::None, Vec::new()).unwrap();
            assert_eq!(entries[i].1, tar);
            assert_eq!(written.layers[i].bytes_sent, tar.len() as u64);
            assert_eq!(written.layers[i].action, LayerAction::Pushed);
        }
        assert_eq!(written.layers[3].action, LayerAction::Skipped);
        assert_eq!(entries[3].1, &documents.config[..]);
        let manifest: serde_json::Value = serde_json::from_slice(&entries[4].1).unwrap();
        assert_eq!(
            manifest,
            json!([{
                "Config": config_name,
                "RepoTags": ["demo/app:v1"],
                "Layers": [&layer_names[0], &layer_names[1], &layer_names[2], &layer_names[1]],
            }])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_archive_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("image.tar");
        let mut plan = test_plan::plan(Compression::default());
        plan.layers[2].content = crate::layer::LayerContent::StorePaths {
            paths: vec![tmp.path().join("missing")],
            owner: Default::default(),
            nix_dirs_mode: crate::layer::NIX_DIRS_MODE,
            source: Default::default(),
        };
        let err = write(&plan, Some(&path), &[], &work()).await.err().unwrap();
        assert!(
            matches!(err, LocalError::Layer(LayerFailure { index: 2, .. })),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_layer_that_grew_since_it_was_measured_fails_the_archive() {
        let plan = test_plan::plan(Compression::default());
        let mut measured: Vec<MeasuredLayer> = plan
            .layers
            .iter()
            .map(|l| measure_layer(l, plan.compression, Stop::default()).unwrap())
            .collect();
        measured[1].tar_size -= 512;
        let digests: Vec<_> = measured.iter().map(|m| m.digests.clone()).collect();
        let documents = plan.documents(&digests);
        let archive = Archive {
            layers: plan.layers.clone(),
            manifest: archive_manifest(&documents, &measured, &[]),
            measured,
            documents,
            cancel: Stop::default(),
            reporter: Arc::new(Silent),
        };
        let failed = |e: io::Error| LocalError::Stdout(e);
        let err = archive.write_to(Vec::new(), &failed).err().unwrap();
        assert!(
            matches!(
                err,
                LocalError::Layer(LayerFailure {
                    index: 1,
                    source: LayerError::Changed { .. },
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
