//! Layer compression: which algorithm, and the writer that applies it deterministically.
//!
//! Determinism needs the same compressor fed the same chunks: the implementation is pinned in
//! Cargo.lock (flate2 on zlib-rs), and input reaches it in fixed-size chunks whatever sizes the tar
//! writer produces, so buffering elsewhere can never change the output.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::chunked::ChunkedWriter;
use super::gzip::GzipStream;
use crate::media_types::{OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD};

/// gzip level used unless asked otherwise: level 1 compresses store contents at several times
/// the speed of level 6 for a few percent more bytes, and the upload, not the ratio, is what a
/// push waits on over a fast link.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// zstd level used unless asked otherwise: zstd's own default, faster than gzip -1 and smaller.
pub const DEFAULT_ZSTD_LEVEL: u32 = 3;
/// Version of nixpush's gzip encoder: 2 is pigz-style 128 KiB blocks, each primed with the
/// 32 KiB before it and stored or deflated on its own (zlib-rs); 1 was one serial stream of
/// 64 KiB chunks. A new version changes layer keys: old caches re-upload once.
const GZIP_ENCODER_VERSION: u32 = 2;
/// Version of nixpush's zstd encoder: 2 is libzstd's multi-threaded mode with at least one
/// worker (the same bytes for any worker count); 1 was single-threaded (other bytes).
const ZSTD_ENCODER_VERSION: u32 = 2;
/// Version of nixpush's zstd:chunked writer (its frames and table of contents).
const ZSTD_CHUNKED_VERSION: u32 = 1;
/// zstd's job size in its multi-threaded mode (part of what its output depends on).
const ZSTD_JOB_SIZE: u32 = 1 << 20;
/// Size of the chunks the compressor is fed.
const COMPRESS_CHUNK: usize = 64 * 1024;

/// How layer blobs are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip {
        level: u32,
    },
    /// zstd layers are only ever named by OCI manifests (Docker's schema has no zstd type).
    /// Always libzstd's multi-threaded mode, with at least one worker: its output is the same for
    /// any worker count from one up, and differs from the single-threaded mode's.
    Zstd {
        level: u32,
    },
    /// zstd:chunked (containers/storage's partial-pull format): zstd whose frames hold each
    /// regular file's content apart, with a table of contents; read as plain zstd by others.
    ZstdChunked {
        level: u32,
    },
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }
}

impl Compression {
    /// The OCI media type of a layer blob compressed this way.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => OCI_LAYER_GZIP,
            Compression::Zstd { .. } | Compression::ZstdChunked { .. } => OCI_LAYER_ZSTD,
            Compression::None => OCI_LAYER,
        }
    }

    /// A stable name for layer keys and the cache: algorithm, encoder version and level, since a
    /// blob is one particular encoder's output. Bump the version whenever the bytes an encoder
    /// writes change (a new chunking rule, a new pinned library), so old blobs are not reused as
    /// if they were this encoder's.
    pub fn key_name(&self) -> String {
        match self {
            Compression::Gzip { level } => format!("gzip-adaptive{GZIP_ENCODER_VERSION}-{level}"),
            Compression::Zstd { level } => format!("zstd{ZSTD_ENCODER_VERSION}-{level}"),
            Compression::ZstdChunked { level } => {
                format!("zstd-chunked{ZSTD_CHUNKED_VERSION}-{level}")
            }
            Compression::None => "none".to_owned(),
        }
    }

    pub fn encoder<W: Write>(&self, inner: W) -> io::Result<Encoder<W>> {
        let encoder = match self {
            Compression::Gzip { level } => Codec::Gzip(Box::new(GzipStream::new(inner, *level)?)),
            Compression::Zstd { level } => {
                let mut e = zstd::stream::write::Encoder::new(inner, *level as i32)?;
                e.multithread(zstd_workers())?;
                // A fixed job size: the output depends on it (never on the workers), and it
                // bounds what each layer holds (libzstd's default, 8 MiB at level 3, took a push
                // of four layers at once past 100 MiB).
                e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                Codec::Zstd(Box::new(e))
            }
            Compression::ZstdChunked { level } => {
                Codec::ZstdChunked(Box::new(ChunkedWriter::new(inner, *level)?))
            }
            Compression::None => Codec::Identity(inner),
        };
        Ok(Encoder {
            codec: encoder,
            chunk: Vec::with_capacity(COMPRESS_CHUNK),
        })
    }
}

/// zstd workers: one per core the process may run on, and never none.
fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(64) as u32)
}

enum Codec<W: Write> {
    Gzip(Box<GzipStream<W>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
    ZstdChunked(Box<ChunkedWriter<W>>),
    Identity(W),
}

/// A compressing writer fed in fixed-size chunks.
pub struct Encoder<W: Write> {
    codec: Codec<W>,
    chunk: Vec<u8>,
}

impl<W: Write> Encoder<W> {
    fn feed(&mut self) -> io::Result<()> {
        match &mut self.codec {
            Codec::Gzip(e) => e.feed(&self.chunk)?,
            Codec::Zstd(e) => e.write_all(&self.chunk)?,
            Codec::ZstdChunked(e) => e.write_all(&self.chunk)?,
            Codec::Identity(w) => w.write_all(&self.chunk)?,
        }
        self.chunk.clear();
        Ok(())
    }

    /// Compresses what is left and returns the inner writer, and the annotations the blob's
    /// descriptor must carry (zstd:chunked's table of contents; none for the others).
    pub fn finish(mut self) -> io::Result<(W, BTreeMap<String, String>)> {
        self.feed()?;
        match self.codec {
            Codec::Gzip(e) => Ok((e.finish()?, BTreeMap::new())),
            Codec::Zstd(e) => Ok((e.finish()?, BTreeMap::new())),
            Codec::ZstdChunked(e) => e.finish(),
            Codec::Identity(w) => Ok((w, BTreeMap::new())),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = COMPRESS_CHUNK - self.chunk.len();
        let n = room.min(buf.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == COMPRESS_CHUNK {
            self.feed()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing would change the compressed bytes; chunks are only fed when full.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress_with(c: Compression, data: &[u8], write_size: usize) -> Vec<u8> {
        let mut e = c.encoder(Vec::new()).unwrap();
        for piece in data.chunks(write_size) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap().0
    }

    fn compress(data: &[u8], write_size: usize) -> Vec<u8> {
        compress_with(Compression::default(), data, write_size)
    }

    #[test]
    fn zstd_and_none_are_deterministic_and_decode() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let z = Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        };
        let a = compress_with(z, &data, 1000);
        assert_eq!(a, compress_with(z, &data, 70_000));
        assert_eq!(zstd::stream::decode_all(&a[..]).unwrap(), data);
        assert_eq!(compress_with(Compression::None, &data, 777), data);
    }

    #[test]
    fn zstd_gives_the_same_bytes_for_any_worker_count_from_one() {
        // Large enough for libzstd to cut several jobs.
        let data: Vec<u8> = (0..12_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3f)
            .collect();
        let with = |workers: u32| {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            e.multithread(workers).unwrap();
            e.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                .unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let one = with(1);
        assert_eq!(one, with(2));
        assert_eq!(one, with(6));
        assert_eq!(zstd::stream::decode_all(&one[..]).unwrap(), data);
    }

    #[test]
    fn output_does_not_depend_on_write_sizes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let a = compress(&data, 1);
        assert_eq!(a, compress(&data, 512));
        assert_eq!(a, compress(&data, 100_000));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}
