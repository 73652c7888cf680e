//! Layer keys: a name for a layer's content computed from metadata alone.
//!
//! Store paths are immutable and Nix records each one's `narHash`, so the store paths of a layer
//! with their NAR hashes, the tar rules version and the ownership settings decide the layer's
//! uncompressed bytes completely. The key also names the compression algorithm and level, since a
//! blob is one particular compression of those bytes: the compression's name carries the
//! encoder's version too, so a blob made by an older encoder is never taken for this one's (which
//! would make the manifest digest depend on what a cache happened to hold).

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::{Compression, Owner, NIX_DIRS_MODE, TAR_RULES_VERSION};
use crate::store_path::StorePath;

/// Hex sha256 over the layer's defining metadata.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerKey(String);

impl LayerKey {
    /// The key of a layer holding `paths`, in that order.
    pub fn compute<'a>(
        paths: impl IntoIterator<Item = &'a StorePath>,
        owner: &Owner,
        nix_dirs_mode: u32,
        compression: Compression,
    ) -> Self {
        let mut text = format!(
            "nixpush layer key\ntar-rules {TAR_RULES_VERSION}\nmtime {}\nuid {}\ngid {}\nuname {:?}\ngname {:?}\ncompression {}\n",
            owner.mtime, owner.uid, owner.gid, owner.uname, owner.gname, compression.key_name()
        );
        // Only the older rules say so: keys of layers under the current ones stay as they were.
        if nix_dirs_mode != NIX_DIRS_MODE {
            text.push_str(&format!("nix-dirs-mode {nix_dirs_mode:o}\n"));
        }
        for p in paths {
            text.push_str(&format!("path {} {}\n", p.path.display(), p.nar_hash));
        }
        LayerKey(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The key of a layer that is a tarball in the store, used as it is: its store path and NAR
    /// hash decide its bytes.
    pub fn of_tarball(store_path: &StorePath, compression: Compression) -> Self {
        let text = format!(
            "nixpush layer key\ntarball {} {}\ncompression {}\n",
            store_path.path.display(),
            store_path.nar_hash,
            compression.key_name()
        );
        LayerKey(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The key of a layer that is member `member` of the image archive `archive`: the archive
    /// is a store path, so its NAR hash and the member's name decide the layer's bytes.
    pub fn of_archive_member(archive: &StorePath, member: &str, compression: Compression) -> Self {
        let text = format!(
            "nixpush layer key\narchive {} {}\nmember {member:?}\ncompression {}\n",
            archive.path.display(),
            archive.nar_hash,
            compression.key_name()
        );
        LayerKey(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The key of a nix2container layer: the digest its image JSON names decides its bytes
    /// (the tar is checked against it as it streams).
    pub fn of_nix2container(digest: &crate::digest::Digest, compression: Compression) -> Self {
        let text = format!(
            "nixpush layer key\nnix2container {digest}\ncompression {}\n",
            compression.key_name()
        );
        LayerKey(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// The key of a generated layer: its entries decide its bytes.
    pub fn of_entries(entries: &[super::RootEntry], compression: Compression) -> Self {
        let mut text = format!(
            "nixpush layer key\ntar-rules {TAR_RULES_VERSION}\ngenerated\ncompression {}\n",
            compression.key_name()
        );
        for e in entries {
            text.push_str(&e.key_line());
            text.push('\n');
        }
        LayerKey(hex::encode(Sha256::digest(text.as_bytes())))
    }

    /// Parses a key as written by [`LayerKey::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| LayerKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(name: &str, hash: &str) -> StorePath {
        StorePath {
            path: format!("/nix/store/{}-{name}", "a".repeat(32)).into(),
            nar_hash: hash.to_owned(),
            nar_size: 1,
            references: vec![],
        }
    }

    #[test]
    fn key_changes_with_every_input_that_changes_bytes() {
        let (a, b) = (sp("a", "sha256-1"), sp("b", "sha256-2"));
        let owner = Owner::default();
        let gz = Compression::default();
        let base = LayerKey::compute([&a, &b], &owner, NIX_DIRS_MODE, gz);
        assert_eq!(base, LayerKey::compute([&a, &b], &owner, NIX_DIRS_MODE, gz));
        assert_ne!(
            base,
            LayerKey::compute([&b, &a], &owner, NIX_DIRS_MODE, gz),
            "order"
        );
        assert_ne!(
            base,
            LayerKey::compute([&a, &sp("b", "sha256-3")], &owner, NIX_DIRS_MODE, gz),
            "narHash"
        );
        let later = Owner {
            mtime: 2,
            ..Owner::default()
        };
        assert_ne!(
            base,
            LayerKey::compute([&a, &b], &later, NIX_DIRS_MODE, gz),
            "mtime"
        );
        assert_ne!(
            base,
            LayerKey::compute([&a, &b], &owner, NIX_DIRS_MODE, Compression::None),
            "compression"
        );
        assert_ne!(
            base,
            LayerKey::compute([&a, &b], &owner, crate::layer::OLD_NIX_DIRS_MODE, gz),
            "the /nix entries' mode"
        );
        assert_eq!(LayerKey::parse(base.as_str()), Some(base));
        assert_eq!(LayerKey::parse("xyz"), None);
    }
}
