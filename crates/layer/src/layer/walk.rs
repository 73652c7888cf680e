//! Writes the tar of a layer's store paths by walking the local store.
//!
//! Order and metadata follow nixpkgs' `archive_paths_to`: `/nix/` and `/nix/store/` first (mode
//! 0755, or 0555 as nixpkgs wrote them before 2024), then each store path in the order given, each followed by everything below it in
//! `pathlib` sort order (component-wise, bytewise: a depth-first walk over names sorted bytewise
//! gives exactly that). Symlinks are stored, never followed; hard links are stored as regular
//! files with their full content; modes come from `lstat`.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::nar_tar::write_nar_tree;
use super::sink_errors::SinkErrors;
use super::tar::{Kind, Owner, TarWriter};
use super::{LayerError, StoreSource};

/// Size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;

/// Writes the uncompressed tar of `paths` into `out`, as current nixpkgs does.
pub fn write_layer_tar<W: Write>(
    paths: &[PathBuf],
    owner: &Owner,
    out: W,
) -> Result<W, LayerError> {
    write_layer_tar_with(paths, owner, super::NIX_DIRS_MODE, out)
}

/// Writes the uncompressed tar of `paths` into `out`, its `/nix/` and `/nix/store/` entries of
/// mode `nix_dirs_mode` (the one thing that differs between nixpkgs' eras).
pub fn write_layer_tar_with<W: Write>(
    paths: &[PathBuf],
    owner: &Owner,
    nix_dirs_mode: u32,
    out: W,
) -> Result<W, LayerError> {
    let mut tar = TarWriter::new(out);
    for root in ["/nix", "/nix/store"] {
        tar.append_header(root.as_bytes(), Kind::Directory, nix_dirs_mode, owner)
            .map_err(LayerError::Sink)?;
    }
    let mut buf = vec![0u8; COPY_BUFFER];
    for path in paths {
        write_tree(&mut tar, path, owner, &mut buf)?;
    }
    tar.finish().map_err(LayerError::Sink)
}

/// The same, each path read from `source`: the local store, or its NAR (the same entries).
pub(super) fn write_layer_tar_from<W: Write>(
    paths: &[PathBuf],
    owner: &Owner,
    nix_dirs_mode: u32,
    source: &StoreSource,
    out: W,
) -> Result<W, LayerError> {
    let StoreSource::Nars(nars) = source else {
        return write_layer_tar_with(paths, owner, nix_dirs_mode, out);
    };
    // The output's failures are told apart from the NAR's by the output itself.
    let mut tar = TarWriter::new(SinkErrors::new(out));
    for root in ["/nix", "/nix/store"] {
        tar.append_header(root.as_bytes(), Kind::Directory, nix_dirs_mode, owner)
            .map_err(LayerError::Sink)?;
    }
    for path in paths {
        let read_err = |source| LayerError::Read {
            path: path.to_owned(),
            source,
        };
        let nar = nars.open_nar(path).map_err(read_err)?;
        let root = path.as_os_str().as_bytes();
        write_nar_tree(&mut tar, root, nar, owner, &nars.must_hold(path)).map_err(|e| match tar
            .get_mut()
            .take_failure()
        {
            Some(failed) => LayerError::Sink(failed),
            None => read_err(e),
        })?;
    }
    tar.finish()
        .map(SinkErrors::into_inner)
        .map_err(LayerError::Sink)
}

fn write_tree<W: Write>(
    tar: &mut TarWriter<W>,
    path: &Path,
    owner: &Owner,
    buf: &mut [u8],
) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(read_err)?;
    let mode = meta.permissions().mode() & 0o7777;
    let name = path.as_os_str().as_bytes();
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).map_err(read_err)?;
        tar.append_header(
            name,
            Kind::Symlink {
                target: target.as_os_str().as_bytes(),
            },
            mode,
            owner,
        )
        .map_err(LayerError::Sink)?;
    } else if ft.is_dir() {
        tar.append_header(name, Kind::Directory, mode, owner)
            .map_err(LayerError::Sink)?;
        let mut children = fs::read_dir(path)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()
            .map_err(read_err)?;
        children.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        for child in children {
            write_tree(tar, &child, owner, buf)?;
        }
    } else if ft.is_file() {
        let size = meta.size();
        let mut file = fs::File::open(path).map_err(read_err)?;
        tar.append_header(name, Kind::File { size }, mode, owner)
            .map_err(LayerError::Sink)?;
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = file.read(&mut buf[..want]).map_err(read_err)?;
            if n == 0 {
                return Err(LayerError::Changed {
                    path: path.to_owned(),
                });
            }
            tar.write_content(&buf[..n]).map_err(LayerError::Sink)?;
            left -= n as u64;
        }
        tar.pad(size).map_err(LayerError::Sink)?;
    } else {
        return Err(LayerError::Unsupported {
            path: path.to_owned(),
        });
    }
    Ok(())
}
