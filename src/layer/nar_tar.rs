//! A store path's layer entries written from its NAR: the same tar entries, in the same order,
//! as the walk of the local store writes.
//!
//! A NAR lists a directory's entries sorted bytewise by name, depth first: the order the walk
//! gives. It keeps only what the store keeps: a regular file (executable or not), a symlink, a
//! directory. The local store holds exactly those with fixed modes (0555 for directories and
//! executables, 0444 for other files, 0777 for symlinks as `lstat` shows them), mtime 1 and no
//! hard links that survive in the tar, so the modes follow from the NAR alone.

use std::io::{self, Read, Write};

use super::nar::{read_nar, NarEntry, NarVisitor};
use super::tar::{Kind, Owner, TarWriter};

/// Size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;

/// Why a store path's entries could not be written from its NAR.
#[derive(Debug)]
pub enum NarTreeError {
    /// The NAR could not be read, or is not what it must be.
    Read(io::Error),
    /// The layer's output refused a write.
    Sink(io::Error),
}

/// Writes the layer entries of store path `root` (absolute, `/nix/store/...`) from its NAR,
/// owned as `owner` says; `must_hold` names (relative to the root) that must be in it.
pub fn write_nar_tree<W: Write>(
    tar: &mut TarWriter<W>,
    root: &[u8],
    nar: impl Read,
    owner: &Owner,
    must_hold: &[String],
) -> Result<(), NarTreeError> {
    struct ToTar<'t, W: Write> {
        tar: &'t mut TarWriter<W>,
        root: &'t [u8],
        owner: &'t Owner,
        buf: Vec<u8>,
        wanted: Vec<&'t [u8]>,
        sink_failed: Option<io::Error>,
    }
    impl<W: Write> ToTar<'_, W> {
        /// A write to the tar, its failure kept apart from the NAR's own.
        fn sink(&mut self, r: io::Result<()>) -> io::Result<()> {
            r.map_err(|e| {
                if e.get_ref().is_some_and(|inner| inner.is::<ReadFailed>()) {
                    return e;
                }
                self.sink_failed = Some(e);
                io::Error::other("the layer output failed")
            })
        }
    }
    impl<W: Write> NarVisitor for ToTar<'_, W> {
        fn entry(&mut self, path: &[u8], entry: NarEntry<'_>) -> io::Result<()> {
            let mut name = self.root.to_vec();
            // A store path that is itself a symlink: what is below it cannot be told here.
            if path.is_empty() && matches!(entry, NarEntry::Symlink { .. }) {
                self.wanted.clear();
            }
            if !path.is_empty() {
                name.push(b'/');
                name.extend_from_slice(path);
                // A name below a symlink is not in the NAR but may well be reached through it:
                // what cannot be told from here is not called missing.
                let below = |w: &&[u8]| {
                    *w == path
                        || (matches!(entry, NarEntry::Symlink { .. })
                            && w.starts_with(path)
                            && w.get(path.len()) == Some(&b'/'))
                };
                self.wanted.retain(|w| !below(w));
            }
            let written = self.write(&name, entry);
            self.sink(written)
        }
    }
    impl<W: Write> ToTar<'_, W> {
        fn write(&mut self, name: &[u8], entry: NarEntry<'_>) -> io::Result<()> {
            match entry {
                NarEntry::Directory => {
                    self.tar
                        .append_header(name, Kind::Directory, 0o555, self.owner)
                }
                NarEntry::Symlink { target } => {
                    self.tar
                        .append_header(name, Kind::Symlink { target }, 0o777, self.owner)
                }
                NarEntry::File {
                    executable,
                    size,
                    content,
                } => {
                    let mode = if executable { 0o555 } else { 0o444 };
                    self.tar
                        .append_header(name, Kind::File { size }, mode, self.owner)?;
                    let mut left = size;
                    while left > 0 {
                        let want = self.buf.len().min(left as usize);
                        // A failed read is the NAR's, not the output's.
                        let n = content.read(&mut self.buf[..want]).map_err(ReadFailed)?;
                        if n == 0 {
                            return Err(ReadFailed(io::ErrorKind::UnexpectedEof.into()).into());
                        }
                        self.tar.write_content(&self.buf[..n])?;
                        left -= n as u64;
                    }
                    self.tar.pad(size)
                }
            }
        }
    }
    let mut to_tar = ToTar {
        tar,
        root,
        owner,
        buf: vec![0u8; COPY_BUFFER],
        wanted: must_hold.iter().map(|w| w.as_bytes()).collect(),
        sink_failed: None,
    };
    let read = read_nar(nar, &mut to_tar);
    if let Some(e) = to_tar.sink_failed.take() {
        return Err(NarTreeError::Sink(e));
    }
    read.map_err(|e| NarTreeError::Read(ReadFailed::unwrap(e)))?;
    match to_tar.wanted.first() {
        None => Ok(()),
        Some(missing) => Err(NarTreeError::Read(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "it has no {:?} (a relative --entrypoint must name a file in the top store path)",
                String::from_utf8_lossy(missing)
            ),
        ))),
    }
}

/// A read of the NAR that failed inside a write of the visitor: carried through as an
/// `io::Error` and told apart from the output's own failures again.
#[derive(Debug)]
struct ReadFailed(io::Error);

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ReadFailed {}

impl From<ReadFailed> for io::Error {
    fn from(e: ReadFailed) -> io::Error {
        io::Error::other(e)
    }
}

impl ReadFailed {
    /// The NAR's own error out of one carried as `ReadFailed`; any other as it is.
    fn unwrap(e: io::Error) -> io::Error {
        if e.get_ref().is_some_and(|inner| inner.is::<ReadFailed>()) {
            let inner = e.into_inner().expect("checked above");
            return inner.downcast::<ReadFailed>().expect("checked above").0;
        }
        e
    }
}
