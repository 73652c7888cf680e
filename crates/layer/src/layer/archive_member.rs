//! A layer that is a member of an image archive in the store (`dockerTools.buildImage`,
//! `pullImage`, a `fromImage` base), copied out byte for byte as the archive is read: the
//! archive is decompressed on the fly (gzip, or zstd as `buildImage`'s `compressor` may make
//! it), and so is the member when it is itself gzipped. Nothing is unpacked to disk.

use std::io::{self, BufReader, Read};

use flate2::read::MultiGzDecoder;

use super::archive_file::ArchiveFile;

/// Read buffer over the archive file.
const READ_BUFFER: usize = 256 * 1024;

/// A reader with the bytes already read from it put back in front.
pub type Rewound<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// How an archive file is compressed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

    /// How `reader` is compressed, told by its first bytes, and `reader` with those bytes put
    /// back in front.
    pub fn sniffed<R: Read>(mut reader: R) -> io::Result<(Self, Rewound<R>)> {
        let mut magic = Vec::with_capacity(4);
        (&mut reader).take(4).read_to_end(&mut magic)?;
        Ok((
            ArchiveCompression::sniff(&magic),
            io::Cursor::new(magic).chain(reader),
        ))
    }

    /// `reader` decompressed as its first bytes say.
    pub fn decompressing<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        let (compression, reader) = ArchiveCompression::sniffed(reader)?;
        compression.decoder(reader)
    }

    /// How the file `path` is compressed, told by its first bytes.
    pub fn of_file(path: &std::path::Path) -> io::Result<Self> {
        ArchiveCompression::sniffed(std::fs::File::open(path)?).map(|(compression, _)| compression)
    }

    /// `reader`, decompressed.
    pub fn decoder<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        let reader = BufReader::with_capacity(READ_BUFFER, reader);
        Ok(match self {
            ArchiveCompression::None => Box::new(reader),
            // `gzip` may write several members one after the other: all of them are the archive.
            ArchiveCompression::Gzip => Box::new(MultiGzDecoder::new(reader)),
            ArchiveCompression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        })
    }
}

/// One member as a scan meets it.
pub struct Member<'a> {
    /// Its name, as written.
    pub name: &'a [u8],
    /// Its size in the archive.
    pub size: u64,
    /// Where a symbolic or hard link member points, as written, and whether it is symbolic.
    pub link: Option<(Vec<u8>, bool)>,
    /// Its content (what is not read is skipped).
    pub content: &'a mut dyn Read,
}

/// Calls `visit` on each member of the archive in turn until it returns `Some`. An
/// uncompressed archive is read by seeking past the content nobody reads, so a scan for a
/// few members (the index, one layer) reads little more than their headers and themselves.
/// A scan that no visit ends reads the archive to its very end (from a NAR, that checks its
/// hash); one that a visit ends reads no further.
pub fn scan_archive<T, E: From<io::Error>>(
    archive: &ArchiveFile,
    compression: ArchiveCompression,
    mut visit: impl FnMut(Member<'_>) -> Result<Option<T>, E>,
) -> Result<Option<T>, E> {
    /// The visit's answer, or where the last member's content ends when none answered.
    fn each<'a, R: 'a + Read, T, E: From<io::Error>>(
        entries: impl Iterator<Item = io::Result<tar::Entry<'a, R>>>,
        visit: &mut impl FnMut(Member<'_>) -> Result<Option<T>, E>,
    ) -> Result<Result<T, u64>, E> {
        let mut end = 0;
        for entry in entries {
            let mut entry = entry?;
            let name = entry.path_bytes().into_owned();
            let size = entry.size();
            end = entry.raw_file_position() + size.div_ceil(512) * 512;
            let kind = entry.header().entry_type();
            let link = if kind.is_symlink() || kind.is_hard_link() {
                entry
                    .link_name_bytes()
                    .map(|l| (l.into_owned(), kind.is_symlink()))
            } else {
                None
            };
            let member = Member {
                name: &name,
                size,
                link,
                content: &mut entry,
            };
            if let Some(found) = visit(member)? {
                return Ok(Ok(found));
            }
        }
        Ok(Err(end))
    }
    if let (ArchiveCompression::None, Some(file)) = (compression, archive.local_file()?) {
        let len = file.metadata()?.len();
        let mut archive =
            tar::Archive::new(SeekableBuf(BufReader::with_capacity(READ_BUFFER, file)));
        match each(archive.entries_with_seek()?, &mut visit)? {
            Ok(found) => Ok(Some(found)),
            // Seeking past the end of a file is no error, and a header of zeros is the end of
            // the archive: a tar cut short would read as complete without this. After the last
            // member comes at least one block of zeros.
            Err(end) if len < end + 512 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive is cut short (truncated)",
            )
            .into()),
            Err(_) => Ok(None),
        }
    } else {
        let mut tar = tar::Archive::new(compression.decoder(archive.open()?)?);
        let found = each(tar.entries()?, &mut visit)?.ok();
        if found.is_none() {
            // The end-of-archive blocks, and whatever the compressor or the NAR has after them.
            io::copy(&mut tar.into_inner(), &mut io::sink())?;
        }
        Ok(found)
    }
}

/// A buffered file that can still seek (`BufReader` seeks, dropping its buffer).
struct SeekableBuf(BufReader<std::fs::File>);

impl Read for SeekableBuf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl io::Seek for SeekableBuf {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

/// The member a link named `name` pointing at `target` stands for: a symbolic link's target
/// is relative to the link's folder, a hard link's to the archive's root.
pub fn link_target(name: &str, target: &str, symbolic: bool) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if symbolic && !target.starts_with('/') {
        parts.extend(name.split('/'));
        parts.pop();
    }
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.retain(|p| !p.is_empty() && *p != ".");
    parts.join("/")
}

/// Why a member could not be copied: the archive could not be read, or `out` refused a write.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Most links followed to reach a member's content.
const MAX_LINKS: usize = 8;

/// Copies the uncompressed bytes of `member` of the archive at `path` into `out`, and
/// nothing else: a member that is itself gzip-compressed is decompressed on the way, and a
/// member that is a link (skopeo's `<id>/layer.tar`) is followed. Blocking.
pub fn copy_member<W: io::Write>(
    archive: &ArchiveFile,
    compression: ArchiveCompression,
    member: &str,
    mut out: W,
) -> Result<W, CopyError> {
    let mut wanted = member.to_owned();
    for _ in 0..=MAX_LINKS {
        let found = scan_archive(archive, compression, |m| -> Result<_, CopyError> {
            let name = String::from_utf8_lossy(m.name);
            if name.trim_start_matches("./") != wanted {
                return Ok(None);
            }
            if let Some((link, symbolic)) = &m.link {
                let target = String::from_utf8_lossy(link);
                return Ok(Some(Err(link_target(&wanted, &target, *symbolic))));
            }
            // The first two bytes say whether the member is itself gzipped.
            let mut magic = Vec::with_capacity(2);
            m.content
                .take(2)
                .read_to_end(&mut magic)
                .map_err(CopyError::Read)?;
            let content = io::Cursor::new(magic.clone()).chain(m.content);
            let mut content: Box<dyn Read + '_> = if magic == [0x1f, 0x8b] {
                Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                    READ_BUFFER,
                    content,
                )))
            } else {
                Box::new(content)
            };
            let mut buf = vec![0u8; READ_BUFFER];
            loop {
                let n = content.read(&mut buf).map_err(CopyError::Read)?;
                if n == 0 {
                    return Ok(Some(Ok(())));
                }
                out.write_all(&buf[..n]).map_err(CopyError::Write)?;
            }
        })?;
        match found {
            Some(Ok(())) => return Ok(out),
            Some(Err(target)) => wanted = target,
            None => break,
        }
    }
    Err(CopyError::Read(io::Error::new(
        io::ErrorKind::NotFound,
        format!("the archive has no member {member:?} with content"),
    )))
}

/// The bytes of `member` as they are (not decompressed, links not followed), if it is there
/// and holds at most `max` bytes; a larger one is an error, never read whole.
pub fn read_member(
    archive: &ArchiveFile,
    compression: ArchiveCompression,
    member: &str,
    max: u64,
) -> io::Result<Option<Vec<u8>>> {
    scan_archive(archive, compression, |m| -> io::Result<Option<Vec<u8>>> {
        if String::from_utf8_lossy(m.name).trim_start_matches("./") != member {
            return Ok(None);
        }
        if m.size > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{member:?} is larger than {max} bytes"),
            ));
        }
        let mut bytes = Vec::with_capacity(m.size as usize);
        m.content.read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    })
}

impl From<io::Error> for CopyError {
    fn from(e: io::Error) -> Self {
        CopyError::Read(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_as_skopeo_and_docker_write_them() {
        assert_eq!(link_target("abc/layer.tar", "../0f.tar", true), "0f.tar");
        assert_eq!(
            link_target("abc/layer.tar", "def/layer.tar", false),
            "def/layer.tar"
        );
        assert_eq!(link_target("a/b/c", "./d", true), "a/b/d");
        assert_eq!(link_target("a/b/c", "/d/e", true), "d/e", "from the root");
    }
}
