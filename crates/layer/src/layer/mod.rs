//! Image layers made from store paths: what goes in a layer (`LayerSpec`), the exact tar bytes,
//! compression, hashing, and the key that names a layer's content before it is built.

mod archive_file;
mod archive_member;
mod chunked;
mod compress;
mod generated;
mod go_tar;
mod gzip;
mod key;
mod nar;
mod nar_file;
mod nar_tar;
mod nix2container_tree;
mod sink_errors;
mod source;
mod stream;
mod tar;
mod walk;

use std::path::PathBuf;

use crate::digest::Digest;

pub use archive_file::ArchiveFile;
pub use archive_member::{
    copy_member, link_target, read_member, scan_archive, ArchiveCompression, CopyError, Member,
};
pub use compress::{Compression, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL};
pub use generated::{write_generated_tar, RootEntry};
pub use key::LayerKey;
pub use nar::{copy_customisation_layer, copy_nar_member, read_nar, NarEntry, NarVisitor};
pub use nix2container_tree::{go_regex, write_tree_tar, PathOptions, Perm, Rewrite, TreeSpec};
pub use source::{NarSource, StoreSource};
pub use stream::{build_layer, open_layer, LayerDigests, LayerStream};
pub use tar::Owner;
pub use tar::{Kind as TarKind, TarWriter};
pub use walk::{write_layer_tar, write_layer_tar_with};

/// Version of the tar rules above; part of every layer key, so a change in bytes can never be
/// mistaken for a layer built under the old rules.
pub const TAR_RULES_VERSION: u32 = 1;

/// Mode of the leading `/nix/` and `/nix/store/` entries of a store layer, as nixpkgs writes
/// them since its conf.json gained `uid`/`gid` (early 2024).
pub const NIX_DIRS_MODE: u32 = 0o755;
/// The same, as nixpkgs wrote them before (mid 2020 to early 2024): a conf without
/// `uid`/`gid`/`uname`/`gname`/`mtime` comes from those versions.
pub const OLD_NIX_DIRS_MODE: u32 = 0o555;

/// What a layer's uncompressed tar is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerContent {
    /// Store paths, in order, written by nixpush's tar writer with this ownership, after the
    /// `/nix/` and `/nix/store/` entries (of mode `nix_dirs_mode`, see [`NIX_DIRS_MODE`]).
    StorePaths {
        paths: Vec<PathBuf>,
        owner: Owner,
        nix_dirs_mode: u32,
        /// Where the paths are read from (the local store, or their NARs).
        source: StoreSource,
    },
    /// A tar already in the store, used byte for byte: dockerTools' customisation layer, a
    /// store path holding `layer.tar` and its sha256 (`checksum`), which is the diff_id.
    Tarball {
        store_path: PathBuf,
        /// The `checksum`, when it was read before the tar (from a NAR, it is read with it).
        diff_id: Option<Digest>,
        /// Where the store path is read from.
        source: StoreSource,
    },
    /// Entries nixpush makes up (the root filesystem of a plain package: /etc, /tmp, links).
    Generated { entries: Vec<RootEntry> },
    /// A member of an image archive in the store (`buildImage`, `pullImage`, a `fromImage`
    /// base), used byte for byte; `diff_id` is what the archive's config says it is.
    ArchiveMember {
        archive: ArchiveFile,
        compression: ArchiveCompression,
        member: String,
        diff_id: Digest,
    },
    /// A nix2container layer of store paths: nix2container's file tree of them, as Go's tar
    /// writer writes it; `diff_id` is the sha256 the image JSON names (its `digest`).
    Nix2ContainerTree { tree: TreeSpec, diff_id: Digest },
    /// A nix2container layer that is a file in the store (`layer-path`: a tar, or a compressed
    /// one); `diff_id` is the JSON's `diff_ids`. `as_is`: a compressed file sent as it is.
    Nix2ContainerFile {
        path: PathBuf,
        diff_id: Digest,
        as_is: Option<AsIsBlob>,
    },
}

/// A compressed layer file sent as it is (nix2container's `fromImage` base blobs): the digest
/// the file must have, and the media type its compression gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsIsBlob {
    pub digest: Digest,
    pub media_type: &'static str,
}

/// One layer of an image: its content and the key that names it.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub content: LayerContent,
    pub key: LayerKey,
    /// Sum of the NAR sizes of its store paths: roughly the uncompressed size.
    pub nar_size: u64,
}

impl LayerSpec {
    /// The store paths the layer is made from (for a tarball, the store path holding it).
    pub fn store_paths(&self) -> &[PathBuf] {
        match &self.content {
            LayerContent::StorePaths { paths, .. } => paths,
            LayerContent::Tarball { store_path, .. } => std::slice::from_ref(store_path),
            LayerContent::ArchiveMember { archive, .. } => std::slice::from_ref(&archive.path),
            LayerContent::Nix2ContainerTree { tree, .. } => &tree.paths,
            LayerContent::Nix2ContainerFile { path, .. } => std::slice::from_ref(path),
            LayerContent::Generated { .. } => &[],
        }
    }

    /// The diff_id the layer must have, when it is known before it is built: a tarball used as
    /// it is (its `checksum`), an archive member (its image's config).
    pub fn expected_diff_id(&self) -> Option<&Digest> {
        match &self.content {
            LayerContent::Tarball { diff_id, .. } => diff_id.as_ref(),
            LayerContent::ArchiveMember { diff_id, .. }
            | LayerContent::Nix2ContainerTree { diff_id, .. }
            | LayerContent::Nix2ContainerFile { diff_id, .. } => Some(diff_id),
            _ => None,
        }
    }

    /// The same layer, its store paths (or its image archive) read from `source` (a layer
    /// made up by nixpush is left as it is).
    pub fn read_from(&mut self, from: &StoreSource) {
        match &mut self.content {
            LayerContent::StorePaths { source, .. } | LayerContent::Tarball { source, .. } => {
                *source = from.clone()
            }
            LayerContent::ArchiveMember { archive, .. } => archive.source = from.clone(),
            // Read from the local store only (nix2container images from caches are not
            // supported yet).
            LayerContent::Nix2ContainerTree { .. }
            | LayerContent::Nix2ContainerFile { .. }
            | LayerContent::Generated { .. } => {}
        }
    }

    /// The media type of the layer's blob when it is fixed whatever the image's compression (a
    /// file sent as it is).
    pub fn fixed_media_type(&self) -> Option<&'static str> {
        match &self.content {
            LayerContent::Nix2ContainerFile {
                as_is: Some(blob), ..
            } => Some(blob.media_type),
            _ => None,
        }
    }

    /// The media type of the layer's blob, the image's layers compressed as `compression` says.
    pub fn media_type(&self, compression: Compression) -> &'static str {
        self.fixed_media_type()
            .unwrap_or_else(|| compression.media_type())
    }

    /// A short description for progress: its first store path's name, and how many more.
    pub fn describe(&self) -> String {
        let first = self
            .store_paths()
            .first()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let LayerContent::ArchiveMember { member, .. } = &self.content {
            return format!("{member} of {first}");
        }
        match self.store_paths().len() {
            0 => "root filesystem (/etc, /tmp, --contents links)".to_owned(),
            1 => first,
            n => format!("{first} and {} more", n - 1),
        }
    }
}

/// A layer that could not be made, named by its place in the image and its store paths.
#[derive(Debug, thiserror::Error)]
#[error("layer {index} ({first}{more})", index = index + 1, more = if *extra > 0 { format!(" and {extra} more") } else { String::new() })]
pub struct LayerFailure {
    /// 0-based position in the image.
    pub index: usize,
    pub first: String,
    pub extra: usize,
    #[source]
    pub source: LayerError,
}

impl LayerFailure {
    /// `source`, as the failure of layer `index`, `spec`.
    pub fn new(spec: &LayerSpec, index: usize, source: LayerError) -> Self {
        LayerFailure {
            index,
            first: spec
                .store_paths()
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            extra: spec.store_paths().len().saturating_sub(1),
            source,
        }
    }
}

/// What can go wrong while making a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("cannot read store path {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} changed while it was being read", path.display())]
    Changed { path: PathBuf },
    #[error("{} is neither a file, a directory nor a symlink", path.display())]
    Unsupported { path: PathBuf },
    #[error("{} does not match its checksum: the tar's sha256 is {actual}, the checksum says {expected}", path.display())]
    ChecksumMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{} is not what the image's config says: its sha256 is {actual}, the config says {expected}", path.display())]
    DiffIdMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("nix2container's file tree of {}: {reason}", path.display())]
    Tree { path: PathBuf, reason: String },
    #[error("its store paths are not the layer the image JSON names: nix2container's tar of them has sha256 {actual}, the JSON's digest is {expected}")]
    Nix2ContainerMismatch { expected: Digest, actual: Digest },
    #[error("{} is not the layer the image JSON names: its tar has sha256 {actual}, the JSON's diff_ids say {expected}", path.display())]
    Nix2ContainerFileMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{} is not the blob the image JSON names: its sha256 is {actual}, the JSON's digest is {expected}", path.display())]
    AsIsDigestMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer output failed")]
    Sink(#[source] std::io::Error),
    #[error("layer builder stopped unexpectedly")]
    Panicked,
}
