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

/// Writes the layer entries of store path `root` (absolute, `/nix/store/...`) from its NAR,
/// owned as `owner` says; `must_hold` names (relative to the root) that must be in it. A
/// failure of the NAR and one of the output both come back as `io::Error`: the caller tells
/// them apart by its output (see `sink_errors.rs`).
pub fn write_nar_tree<W: Write>(
    tar: &mut TarWriter<W>,
    root: &[u8],
    nar: impl Read,
    owner: &Owner,
    must_hold: &[String],
) -> io::Result<()> {
    struct ToTar<'t, W: Write> {
        tar: &'t mut TarWriter<W>,
        root: &'t [u8],
        owner: &'t Owner,
        buf: Vec<u8>,
        wanted: Vec<&'t [u8]>,
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
            match entry {
                NarEntry::Directory => {
                    self.tar
                        .append_header(&name, Kind::Directory, 0o555, self.owner)
                }
                NarEntry::Symlink { target } => {
                    self.tar
                        .append_header(&name, Kind::Symlink { target }, 0o777, self.owner)
                }
                NarEntry::File {
                    executable,
                    size,
                    content,
                } => {
                    let mode = if executable { 0o555 } else { 0o444 };
                    self.tar
                        .append_header(&name, Kind::File { size }, mode, self.owner)?;
                    let mut left = size;
                    while left > 0 {
                        let want = self.buf.len().min(left as usize);
                        let n = content.read(&mut self.buf[..want])?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
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
    };
    read_nar(nar, &mut to_tar)?;
    match to_tar.wanted.first() {
        None => Ok(()),
        Some(missing) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "it has no {:?} (a relative --entrypoint must name a file in the top store path)",
                String::from_utf8_lossy(missing)
            ),
        )),
    }
}
