//! Files that appear whole or not at all: each is written under a temporary name in its final
//! directory and renamed into place (atomic on one filesystem), so a reader, or a run that
//! failed half way, never sees a partial blob, index or archive. A temporary file is removed
//! when it is dropped without being renamed.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::LocalError;
use crate::digest::Digest;

/// Mode of every file left in place: readable by all, as skopeo and umoci write them (a
/// temporary file starts private).
const FILE_MODE: u32 = 0o644;
/// Prefix of temporary files, so a leftover (only a killed process leaves one) is recognisable.
const TEMP_PREFIX: &str = ".nixpush-tmp-";

/// A layout's `blobs/sha256` directory.
#[derive(Clone, Debug)]
pub(crate) struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    /// The blob directory of the layout at `layout`, created if missing.
    pub(crate) fn create(layout: &Path) -> Result<Self, LocalError> {
        let dir = layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(BlobDir { dir })
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the blob is there with this size. Blobs only ever appear whole (renamed into
    /// place), so the size is enough to tell a complete one.
    pub(crate) fn has(&self, digest: &Digest, size: u64) -> bool {
        std::fs::metadata(self.path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// A temporary file among the blobs, to be named after its digest once that is known.
    pub(crate) fn temp_file(&self) -> Result<NamedTempFile, LocalError> {
        temp_in(&self.dir)
    }

    /// Names `temp` after its content's digest, unless an equal blob is already there (then
    /// `temp` is removed). True if it was put in place.
    pub(crate) fn commit(
        &self,
        temp: NamedTempFile,
        digest: &Digest,
        size: u64,
    ) -> Result<bool, LocalError> {
        if self.has(digest, size) {
            return Ok(false);
        }
        persist(temp, &self.path(digest))?;
        Ok(true)
    }

    /// Puts a blob held in memory (a config, a manifest) in place, unless already there. True
    /// if it was written.
    pub(crate) fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, LocalError> {
        if self.has(digest, bytes.len() as u64) {
            return Ok(false);
        }
        write_whole(&self.path(digest), bytes)?;
        Ok(true)
    }
}

/// A temporary file in `dir`.
pub(crate) fn temp_in(dir: &Path) -> Result<NamedTempFile, LocalError> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|source| LocalError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Renames `temp` to `path`, readable by all.
pub(crate) fn persist(temp: NamedTempFile, path: &Path) -> Result<(), LocalError> {
    let write_error = |source| LocalError::Write {
        path: path.to_owned(),
        source,
    };
    temp.as_file()
        .set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(write_error)?;
    temp.persist(path).map_err(|e| write_error(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` whole: a temporary file beside it, renamed over it.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), LocalError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = temp_in(dir)?;
    temp.write_all(bytes).map_err(|source| LocalError::Write {
        path: temp.path().to_owned(),
        source,
    })?;
    persist(temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_written_once_and_nothing_else_remains() {
        let layout = tempfile::tempdir().unwrap();
        let blobs = BlobDir::create(layout.path()).unwrap();
        let digest = Digest::of(b"config");
        assert!(!blobs.has(&digest, 6));
        assert!(blobs.put(&digest, b"config").unwrap());
        assert!(blobs.has(&digest, 6));
        assert!(!blobs.put(&digest, b"config").unwrap());

        let mut temp = blobs.temp_file().unwrap();
        temp.write_all(b"config").unwrap();
        assert!(!blobs.commit(temp, &digest, 6).unwrap());
        let names: Vec<_> = std::fs::read_dir(layout.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(digest.hex())]);
        let mode = std::fs::metadata(blobs.path(&digest))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, FILE_MODE);
    }

    #[test]
    fn a_truncated_blob_is_not_taken_for_the_real_one() {
        let layout = tempfile::tempdir().unwrap();
        let blobs = BlobDir::create(layout.path()).unwrap();
        let digest = Digest::of(b"manifest");
        std::fs::write(blobs.path(&digest), b"mani").unwrap();
        assert!(!blobs.has(&digest, 8));
        assert!(blobs.put(&digest, b"manifest").unwrap());
        assert_eq!(std::fs::read(blobs.path(&digest)).unwrap(), b"manifest");
    }
}
