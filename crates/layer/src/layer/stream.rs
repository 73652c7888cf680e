//! A layer as a stream: tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> channel, in
//! one pass on a blocking thread, with the compressed bytes handed to the async side in bounded
//! chunks. Memory is the channel's few chunks, whatever the layer's size. A layer can be opened as
//! often as needed (to upload, to retry, to hash only): every open reads the store again.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use super::archive_member::CopyError;
use super::sink_errors::SinkErrors;
use super::walk::write_layer_tar_from;
use super::{
    copy_customisation_layer, copy_member, write_generated_tar, write_tree_tar, Compression,
    LayerContent, LayerError, LayerSpec, NarSource, StoreSource,
};
use crate::digest::{Digest, HashingWriter};

/// Size of the chunks sent to the uploader. 64 KiB, under glibc's initial mmap threshold: with
/// 256 KiB chunks peak RSS crept up with image size (21.6 MiB at 1 GiB, 24.0 MiB at 4 GiB) as the
/// allocator moved them from mmap to fragmenting arenas; with 64 KiB it is flat (20.7 / 20.7) at
/// the same speed.
const STREAM_CHUNK: usize = 64 * 1024;
/// Chunks that may wait in the channel: 512 KiB per layer in flight.
const STREAM_DEPTH: usize = 8;

/// What is known of a layer once its bytes have all been produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (goes in the image config).
    pub diff_id: Digest,
    /// sha256 of the compressed blob (its name in the registry).
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// What the blob's descriptor must say of it: where a zstd:chunked blob's table of
    /// contents is (empty for the other compressions).
    pub annotations: BTreeMap<String, String>,
}

/// Writes the compressed layer into `sink` and returns its digests. Blocking.
pub fn build_layer<W: Write>(
    spec: &LayerSpec,
    compression: Compression,
    mut sink: W,
) -> Result<(W, LayerDigests), LayerError> {
    let digests = build_layer_into(spec, compression, &mut sink)?;
    Ok((sink, digests))
}

/// [`build_layer`] for any sink behind one pointer: the tar writers, the compressors and the
/// hashers below are compiled once, not once per kind of sink (a call through the pointer per
/// block written costs nothing next to compressing it).
fn build_layer_into(
    spec: &LayerSpec,
    compression: Compression,
    sink: &mut dyn Write,
) -> Result<LayerDigests, LayerError> {
    if let LayerContent::Nix2ContainerFile {
        path,
        diff_id,
        as_is: Some(blob),
    } = &spec.content
    {
        return copy_as_is(path, diff_id, blob, sink);
    }
    let blob = HashingWriter::new(sink);
    let encoder = compression.encoder(blob).map_err(LayerError::Sink)?;
    let tar = HashingWriter::new(encoder);
    // A customisation layer's checksum read from its NAR, with the tar.
    let mut checksum = None;
    let tar = match &spec.content {
        LayerContent::StorePaths {
            paths,
            owner,
            nix_dirs_mode,
            source,
        } => write_layer_tar_from(paths, owner, *nix_dirs_mode, source, tar)?,
        LayerContent::Tarball {
            store_path,
            source: StoreSource::Local,
            ..
        } => copy_tarball(&store_path.join("layer.tar"), tar)?,
        LayerContent::Tarball {
            store_path,
            source: StoreSource::Nars(nars),
            ..
        } => {
            let (tar, read) = copy_tarball_from_nar(store_path, nars.as_ref(), tar)?;
            checksum = Some(read);
            tar
        }
        LayerContent::Generated { entries } => write_generated_tar(entries, tar)?,
        LayerContent::ArchiveMember {
            archive,
            compression,
            member,
            ..
        } => copy_member(archive, *compression, member, tar)
            .map_err(|e| archive_error(&archive.path, e))?,
        LayerContent::Nix2ContainerTree { tree, .. } => write_tree_tar(tree, tar)?,
        LayerContent::Nix2ContainerFile { path, .. } => copy_tar_file(path, tar)?,
    };
    let (encoder, diff_id, _) = tar.finish();
    // A tar used as it is must be the one its checksum (or its image's config) names.
    match &spec.content {
        LayerContent::Tarball {
            store_path,
            diff_id: expected,
            ..
        } => {
            let expected = match (expected, checksum) {
                (Some(known), _) => known.clone(),
                (None, Some(read)) => read,
                (None, None) => {
                    return Err(LayerError::Read {
                        path: store_path.join("checksum"),
                        source: io::Error::other("the customisation layer's checksum is unknown"),
                    })
                }
            };
            if expected != diff_id {
                return Err(LayerError::ChecksumMismatch {
                    path: store_path.join("layer.tar"),
                    expected,
                    actual: diff_id,
                });
            }
        }
        LayerContent::ArchiveMember {
            archive,
            member,
            diff_id: expected,
            ..
        } if *expected != diff_id => {
            return Err(LayerError::DiffIdMismatch {
                path: archive.path.join(member),
                expected: expected.clone(),
                actual: diff_id,
            })
        }
        LayerContent::Nix2ContainerTree {
            diff_id: expected, ..
        } if *expected != diff_id => {
            return Err(LayerError::Nix2ContainerMismatch {
                expected: expected.clone(),
                actual: diff_id,
            })
        }
        LayerContent::Nix2ContainerFile {
            path,
            diff_id: expected,
            ..
        } if *expected != diff_id => {
            return Err(LayerError::Nix2ContainerFileMismatch {
                path: path.clone(),
                expected: expected.clone(),
                actual: diff_id,
            })
        }
        _ => {}
    }
    let (blob, annotations) = encoder.finish().map_err(LayerError::Sink)?;
    let (sink, digest, size) = blob.finish();
    sink.flush().map_err(LayerError::Sink)?;
    Ok(LayerDigests {
        diff_id,
        digest,
        size,
        annotations,
    })
}

/// A failure copying an archive member: the sink's own failure stays one (the upload broke),
/// a read failure is the archive's.
fn archive_error(archive: &std::path::Path, e: CopyError) -> LayerError {
    match e {
        CopyError::Write(e) => LayerError::Sink(e),
        CopyError::Read(source) => LayerError::Read {
            path: archive.to_owned(),
            source,
        },
    }
}

/// Copies the `layer.tar` of a customisation layer read from its NAR, as it is, and reads its
/// `checksum` (which the NAR holds just before it).
fn copy_tarball_from_nar<W: Write>(
    store_path: &std::path::Path,
    nars: &dyn NarSource,
    out: W,
) -> Result<(W, Digest), LayerError> {
    let read_err = |source| LayerError::Read {
        path: store_path.to_owned(),
        source,
    };
    let nar = nars.open_nar(store_path).map_err(read_err)?;
    // The output's failures are told apart from the NAR's by where they happened.
    let mut out = SinkErrors::new(out);
    let checksum =
        copy_customisation_layer(nar, &mut out).map_err(|e| match out.take_failure() {
            Some(failed) => LayerError::Sink(failed),
            None => read_err(e),
        })?;
    let text = String::from_utf8_lossy(&checksum);
    let checksum = format!("sha256:{}", text.trim()).parse().map_err(|_| {
        read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            "its checksum is not a hex sha256",
        ))
    })?;
    Ok((out.into_inner(), checksum))
}

/// A compressed layer file sent as it is: its tar checked against `diff_id` first (a read that
/// sends nothing), then its bytes streamed into `sink`, checked against the JSON's digest.
fn copy_as_is(
    path: &std::path::Path,
    diff_id: &Digest,
    blob: &super::AsIsBlob,
    sink: &mut dyn Write,
) -> Result<LayerDigests, LayerError> {
    let tar = copy_tar_file(path, HashingWriter::new(io::sink()))?;
    let (_, actual, _) = tar.finish();
    if actual != *diff_id {
        return Err(LayerError::Nix2ContainerFileMismatch {
            path: path.to_owned(),
            expected: diff_id.clone(),
            actual,
        });
    }
    let out = copy_tarball(path, HashingWriter::new(sink))?;
    let (sink, digest, size) = out.finish();
    if digest != blob.digest {
        return Err(LayerError::AsIsDigestMismatch {
            path: path.to_owned(),
            expected: blob.digest.clone(),
            actual: digest,
        });
    }
    sink.flush().map_err(LayerError::Sink)?;
    Ok(LayerDigests {
        diff_id: actual,
        digest,
        size,
        annotations: BTreeMap::new(),
    })
}

/// Copies a nix2container `layer-path` file's tar: as it is, or decompressed.
fn copy_tar_file<W: Write>(path: &std::path::Path, out: W) -> Result<W, LayerError> {
    let read_err = |source| LayerError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let reader = super::ArchiveCompression::decompressing(file).map_err(read_err)?;
    pump(reader, path, out)
}

/// Copies a tar from the store as it is.
fn copy_tarball<W: Write>(path: &std::path::Path, out: W) -> Result<W, LayerError> {
    let file = std::fs::File::open(path).map_err(|source| LayerError::Read {
        path: path.to_owned(),
        source,
    })?;
    pump(file, path, out)
}

/// Everything `reader` (the file `path`) gives, into `out`.
fn pump<W: Write>(
    mut reader: impl std::io::Read,
    path: &std::path::Path,
    mut out: W,
) -> Result<W, LayerError> {
    let mut buf = vec![0u8; STREAM_CHUNK];
    loop {
        let n = reader.read(&mut buf).map_err(|source| LayerError::Read {
            path: path.to_owned(),
            source,
        })?;
        if n == 0 {
            return Ok(out);
        }
        out.write_all(&buf[..n]).map_err(LayerError::Sink)?;
    }
}

/// The compressed bytes of a layer as they are produced, and the digests at the end.
pub struct LayerStream {
    pub body: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>,
    pub digests: tokio::task::JoinHandle<Result<LayerDigests, LayerError>>,
}

impl LayerStream {
    /// Waits for the producer: the digests, or why the layer could not be made.
    pub async fn finish(self) -> Result<LayerDigests, LayerError> {
        self.digests.await.map_err(|_| LayerError::Panicked)?
    }
}

/// Starts producing `spec`'s compressed bytes on a blocking thread.
pub fn open_layer(spec: &LayerSpec, compression: Compression) -> LayerStream {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(STREAM_DEPTH);
    let spec = spec.clone();
    let digests = tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(STREAM_CHUNK),
        };
        match build_layer(&spec, compression, sink) {
            Ok((_, digests)) => Ok(digests),
            Err(e) => {
                // Make the consumer's body fail too, so a half layer is never committed.
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                Err(e)
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    LayerStream {
        body: Box::pin(body),
        digests,
    }
}

/// Sends what is written to it over the channel in `STREAM_CHUNK` pieces.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "layer upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (STREAM_CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == STREAM_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{AsIsBlob, LayerKey};

    /// A gzip file holding `tar`, as a pulled base's blob is.
    fn gzip_file(dir: &std::path::Path, tar: &[u8]) -> (std::path::PathBuf, Vec<u8>) {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(tar).unwrap();
        let blob = encoder.finish().unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, &blob).unwrap();
        (path, blob)
    }

    fn as_is(path: std::path::PathBuf, diff_id: Digest, digest: Digest) -> LayerSpec {
        LayerSpec {
            content: LayerContent::Nix2ContainerFile {
                path,
                diff_id,
                as_is: Some(AsIsBlob {
                    digest: digest.clone(),
                    media_type: crate::media_types::OCI_LAYER_GZIP,
                }),
            },
            key: LayerKey::of_nix2container(&digest, Compression::None),
            nar_size: 0,
        }
    }

    #[test]
    fn a_file_sent_as_it_is_is_its_own_bytes_with_its_tars_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let tar = vec![7u8; 3000];
        let (path, blob) = gzip_file(dir.path(), &tar);
        let spec = as_is(path, Digest::of(&tar), Digest::of(&blob));
        // Whatever the image's compression: the file is the blob.
        let (out, digests) = build_layer(&spec, Compression::default(), Vec::new()).unwrap();
        assert!(out == blob);
        assert_eq!(digests.digest, Digest::of(&blob));
        assert_eq!(digests.diff_id, Digest::of(&tar));
        assert_eq!(
            spec.media_type(Compression::None),
            crate::media_types::OCI_LAYER_GZIP
        );
    }

    #[test]
    fn a_file_sent_as_it_is_must_be_the_one_the_json_names() {
        let dir = tempfile::tempdir().unwrap();
        let tar = vec![7u8; 3000];
        let (path, blob) = gzip_file(dir.path(), &tar);
        let wrong_tar = as_is(path.clone(), Digest::of(b"other"), Digest::of(&blob));
        let error = build_layer(&wrong_tar, Compression::None, Vec::new()).unwrap_err();
        assert!(
            matches!(error, LayerError::Nix2ContainerFileMismatch { .. }),
            "{error}"
        );
        // Nothing is sent before the tar is checked.
        let mut sent = Vec::new();
        assert!(build_layer(&wrong_tar, Compression::None, &mut sent).is_err());
        assert!(sent.is_empty());
        let wrong_blob = as_is(path, Digest::of(&tar), Digest::of(b"other"));
        let error = build_layer(&wrong_blob, Compression::None, Vec::new()).unwrap_err();
        assert!(
            matches!(error, LayerError::AsIsDigestMismatch { .. }),
            "{error}"
        );
    }
}
