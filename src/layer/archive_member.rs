//! A layer that is a member of an image archive in the store (`dockerTools.buildImage`,
//! `pullImage`, a `fromImage` base), copied out byte for byte as the archive is read: the
//! archive is decompressed on the fly (gzip, or zstd as `buildImage`'s `compressor` may make
//! it), and so is the member when it is itself gzipped. Nothing is unpacked to disk.

use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

/// Read buffer over the archive file.
const READ_BUFFER: usize = 256 * 1024;

/// How an archive file is compressed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveCompression {
    None,
    Gzip,
    Zstd,
}

impl ArchiveCompression {
    /// The compression a file starting with `magic` is in, if it is one of these.
    pub fn sniff(magic: &[u8]) -> ArchiveCompression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            ArchiveCompression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            ArchiveCompression::Zstd
        } else {
            ArchiveCompression::None
        }
    }

    /// `reader`, decompressed.
    pub fn decoder<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        let reader = BufReader::with_capacity(READ_BUFFER, reader);
        Ok(match self {
            ArchiveCompression::None => Box::new(reader),
            ArchiveCompression::Gzip => Box::new(GzDecoder::new(reader)),
            ArchiveCompression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        })
    }
}

/// The archive's entries, decompressed as it is compressed.
pub fn open_archive(
    path: &Path,
    compression: ArchiveCompression,
) -> io::Result<tar::Archive<Box<dyn Read>>> {
    let file = std::fs::File::open(path)?;
    Ok(tar::Archive::new(compression.decoder(file)?))
}

/// Why a member could not be copied: the archive could not be read, or `out` refused a write.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies the uncompressed bytes of `member` of the archive at `path` into `out`, and
/// nothing else: a member that is itself gzip-compressed is decompressed on the way. Blocking.
pub fn copy_member<W: io::Write>(
    path: &Path,
    compression: ArchiveCompression,
    member: &str,
    mut out: W,
) -> Result<W, CopyError> {
    let mut archive = open_archive(path, compression).map_err(CopyError::Read)?;
    for entry in archive.entries().map_err(CopyError::Read)? {
        let entry = entry.map_err(CopyError::Read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name.trim_start_matches("./") != member {
            continue;
        }
        let mut entry = BufReader::with_capacity(READ_BUFFER, entry);
        let start = io::BufRead::fill_buf(&mut entry).map_err(CopyError::Read)?;
        let mut content: Box<dyn Read + '_> = if start.starts_with(&[0x1f, 0x8b]) {
            Box::new(GzDecoder::new(entry))
        } else {
            Box::new(entry)
        };
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let n = content.read(&mut buf).map_err(CopyError::Read)?;
            if n == 0 {
                return Ok(out);
            }
            out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        }
    }
    Err(CopyError::Read(io::Error::new(
        io::ErrorKind::NotFound,
        format!("the archive has no member {member:?}"),
    )))
}
