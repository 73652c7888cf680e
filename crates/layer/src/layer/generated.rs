//! A layer nixpush writes from a list of entries rather than from the store: the small root
//! filesystem a plain package needs to behave like a normal image (`/etc/passwd`, `/tmp`, the
//! `--contents` links). Entries are written in the order given, owned by root, dated like every
//! other layer (mtime 1), with the same tar writer as the store layers.

use std::io::Write;

use super::tar::{Kind, Owner, TarWriter};
use super::LayerError;

/// One entry of a generated layer; paths are relative to `/` (`etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RootEntry {
    Directory {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        content: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl RootEntry {
    pub fn path(&self) -> &str {
        match self {
            RootEntry::Directory { path, .. }
            | RootEntry::File { path, .. }
            | RootEntry::Symlink { path, .. } => path,
        }
    }

    /// A line that identifies the entry completely, for layer keys.
    pub fn key_line(&self) -> String {
        use sha2::Digest as _;
        match self {
            RootEntry::Directory { path, mode } => format!("dir {path:?} {mode:o}"),
            RootEntry::File {
                path,
                mode,
                content,
            } => format!(
                "file {path:?} {mode:o} {}",
                hex::encode(sha2::Sha256::digest(content))
            ),
            RootEntry::Symlink { path, target } => format!("symlink {path:?} {target:?}"),
        }
    }
}

/// Writes the tar of `entries`.
pub fn write_generated_tar<W: Write>(entries: &[RootEntry], out: W) -> Result<W, LayerError> {
    let owner = Owner::default();
    let mut tar = TarWriter::new(out);
    for entry in entries {
        let name = entry.path().as_bytes();
        match entry {
            RootEntry::Directory { mode, .. } => {
                tar.append_header(name, Kind::Directory, *mode, &owner)
            }
            RootEntry::Symlink { target, .. } => tar.append_header(
                name,
                Kind::Symlink {
                    target: target.as_bytes(),
                },
                0o777,
                &owner,
            ),
            RootEntry::File { mode, content, .. } => tar
                .append_header(
                    name,
                    Kind::File {
                        size: content.len() as u64,
                    },
                    *mode,
                    &owner,
                )
                .and_then(|()| tar.write_content(content))
                .and_then(|()| tar.pad(content.len() as u64)),
        }
        .map_err(LayerError::Sink)?;
    }
    tar.finish().map_err(LayerError::Sink)
}
