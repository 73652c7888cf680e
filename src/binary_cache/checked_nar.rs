//! A NAR as it comes out of a cache: decompressed as its narinfo says, and checked against the
//! narinfo's `NarHash` and `NarSize` while it streams. Whoever reads it to the end gets an error
//! instead of the end when the bytes are not that NAR, so a layer made from a tampered or cut
//! NAR never completes (and its blob is never committed).

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::narinfo::{NarCompression, NarInfo};
use crate::nix::NarHash;

/// Read buffer between the decompressor and the NAR parser (which reads 8-byte tokens).
const READ_BUFFER: usize = 128 * 1024;
/// Most memory one xz decoder may use: enough for any preset `xz` has (`-9`: a 64 MiB
/// dictionary; Nix writes `-6`, 8 MiB), never what a NAR re-encoded with a huge dictionary
/// would make it take. The compressed bytes are not what the signature covers.
const XZ_MEMLIMIT: u64 = 80 * 1024 * 1024;
/// Largest zstd window accepted (2^26 = 64 MiB; Nix's levels use 8 MiB at most), for the same
/// reason.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;

impl NarCompression {
    /// `reader`, decompressed.
    pub fn decoder<'a>(
        self,
        reader: impl Read + Send + 'a,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        let reader = BufReader::with_capacity(READ_BUFFER, reader);
        Ok(match self {
            NarCompression::None => Box::new(reader),
            NarCompression::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMLIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(io::Error::other)?;
                Box::new(liblzma::bufread::XzDecoder::new_stream(reader, stream))
            }
            NarCompression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
            NarCompression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(decoder)
            }
            NarCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        })
    }
}

/// The decompressed NAR of `info` from `cache`, checked as it is read.
pub fn checked<'a>(
    info: &NarInfo,
    cache: &str,
    compressed: impl Read + Send + 'a,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let nar = info.compression.decoder(compressed)?;
    Ok(Box::new(BufReader::with_capacity(
        READ_BUFFER,
        CheckedNar {
            inner: nar,
            path: info.store_path.clone(),
            cache: cache.to_owned(),
            expected_hash: info.nar_hash,
            expected_size: info.nar_size,
            hasher: Sha256::new(),
            size: 0,
        },
    )))
}

struct CheckedNar<R> {
    inner: R,
    path: PathBuf,
    cache: String,
    expected_hash: NarHash,
    expected_size: u64,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> CheckedNar<R> {
    fn wrong(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the NAR of {} from {} is not the one its narinfo signs: {what}",
                self.path.display(),
                self.cache
            ),
        )
    }
}

impl<R: Read> Read for CheckedNar<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.size += n as u64;
        if self.size > self.expected_size {
            return Err(self.wrong(format!(
                "it is larger than its size, {} bytes",
                self.expected_size
            )));
        }
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        if self.size != self.expected_size {
            return Err(self.wrong(format!(
                "its size is {} bytes, not {}",
                self.size, self.expected_size
            )));
        }
        let actual = NarHash::from_bytes(self.hasher.clone().finalize().into());
        if actual != self.expected_hash {
            return Err(self.wrong(format!("its hash is {actual}, not {}", self.expected_hash)));
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(nar: &[u8], compression: NarCompression) -> NarInfo {
        NarInfo {
            store_path: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x".into(),
            url: "nar/x.nar".into(),
            compression,
            nar_hash: NarHash::from_bytes(Sha256::digest(nar).into()),
            nar_size: nar.len() as u64,
            references: vec![],
            system: None,
            sigs: vec![],
        }
    }

    fn read_all(r: &mut dyn Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn each_compression_decodes_and_checks() {
        let nar = b"a NAR's bytes, or what stands for them".repeat(100);
        let xz = {
            let mut e = liblzma::read::XzEncoder::new(&nar[..], 6);
            read_all(&mut e).unwrap()
        };
        let bz = {
            let mut e = bzip2::read::BzEncoder::new(&nar[..], bzip2::Compression::default());
            read_all(&mut e).unwrap()
        };
        let zst = zstd::encode_all(&nar[..], 3).unwrap();
        let gz = {
            let mut e = flate2::read::GzEncoder::new(&nar[..], flate2::Compression::default());
            read_all(&mut e).unwrap()
        };
        for (bytes, c) in [
            (nar.clone(), NarCompression::None),
            (xz, NarCompression::Xz),
            (bz, NarCompression::Bzip2),
            (zst, NarCompression::Zstd),
            (gz, NarCompression::Gzip),
        ] {
            let mut r = checked(&info(&nar, c), "test", &bytes[..]).unwrap();
            assert_eq!(read_all(&mut r).unwrap(), nar, "{c:?}");
        }
    }

    #[test]
    fn an_xz_nar_needing_more_memory_than_any_preset_is_refused() {
        let nar = vec![7u8; 4096];
        // A legal .xz stream whose dictionary (1 GiB) asks the decoder for far more memory
        // than any `xz` preset: refused before it is allocated.
        let mut options = liblzma::stream::LzmaOptions::new_preset(1).unwrap();
        options.dict_size(1 << 30);
        let mut filters = liblzma::stream::Filters::new();
        filters.lzma2(&options);
        let stream =
            liblzma::stream::Stream::new_stream_encoder(&filters, liblzma::stream::Check::Crc64)
                .unwrap();
        let big = read_all(&mut liblzma::read::XzEncoder::new_stream(&nar[..], stream)).unwrap();
        let e = read_all(&mut checked(&info(&nar, NarCompression::Xz), "test", &big[..]).unwrap());
        assert!(e.is_err());
        // Nix's own preset (6) decodes.
        let six = read_all(&mut liblzma::read::XzEncoder::new(&nar[..], 6)).unwrap();
        let mut r = checked(&info(&nar, NarCompression::Xz), "test", &six[..]).unwrap();
        assert_eq!(read_all(&mut r).unwrap(), nar);
    }

    #[test]
    fn a_changed_cut_or_longer_nar_fails_at_its_end() {
        let nar = b"the real NAR".to_vec();
        let i = info(&nar, NarCompression::None);
        let mut changed = nar.clone();
        changed[0] ^= 1;
        let e = read_all(&mut checked(&i, "test", &changed[..]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("hash"), "{e}");
        let e = read_all(&mut checked(&i, "test", &nar[..5]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
        let longer = [&nar[..], b"x"].concat();
        let e = read_all(&mut checked(&i, "test", &longer[..]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
    }
}
