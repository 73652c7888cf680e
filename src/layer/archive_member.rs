//! A layer that is a member of an image archive in the store (`dockerTools.buildImage`,
//! `pullImage`, a `fromImage` base), copied out byte for byte as the archive is read: the
//! archive is decompressed on the fly when gzipped, and so is the member when it is itself
//! compressed. Nothing is unpacked to disk.

use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;

/// Read buffer over the archive file.
const READ_BUFFER: usize = 256 * 1024;

/// The archive's entries, decompressed when it is gzipped.
pub fn open_archive(path: &Path, gzipped: bool) -> io::Result<tar::Archive<Box<dyn Read>>> {
    let file = BufReader::with_capacity(READ_BUFFER, std::fs::File::open(path)?);
    let reader: Box<dyn Read> = if gzipped {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(tar::Archive::new(reader))
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
    gzipped: bool,
    member: &str,
    mut out: W,
) -> Result<W, CopyError> {
    let mut archive = open_archive(path, gzipped).map_err(CopyError::Read)?;
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
