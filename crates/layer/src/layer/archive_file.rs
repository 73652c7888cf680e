//! Where an image archive's bytes come from: the file in the local store, or the single file
//! its NAR holds, streamed from a binary cache. Both read the same bytes; only the local file
//! can seek, which lets a scan of a plain tar skip the members nobody reads.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::nar_file::open_nar_file;
use super::source::StoreSource;

/// An image archive: the store path it is, and where that is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub source: StoreSource,
}

impl ArchiveFile {
    /// The archive at `path` in the local store.
    pub fn local(path: &Path) -> Self {
        ArchiveFile {
            path: path.to_owned(),
            source: StoreSource::Local,
        }
    }

    /// The local file, when the archive is read from the local store.
    pub(super) fn local_file(&self) -> io::Result<Option<File>> {
        match self.source {
            StoreSource::Local => File::open(&self.path).map(Some),
            StoreSource::Nars(_) => Ok(None),
        }
    }

    /// The archive's bytes from the start, or `None` when the store path is no single file
    /// (a directory). Blocking.
    pub fn open_if_file(&self) -> io::Result<Option<Box<dyn Read + Send>>> {
        match &self.source {
            StoreSource::Local => {
                if !self.path.is_file() {
                    return Ok(None);
                }
                Ok(Some(Box::new(File::open(&self.path)?)))
            }
            StoreSource::Nars(nars) => {
                let nar = nars.open_nar(&self.path)?;
                Ok(open_nar_file(nar)?.map(|f| Box::new(f) as Box<dyn Read + Send>))
            }
        }
    }

    /// The archive's bytes from the start. Blocking.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        self.open_if_file()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a directory, not an image archive",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{copy_member, scan_archive, ArchiveCompression, NarSource};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// One NAR, counting the bytes read of it.
    struct CountedNar {
        nar: Vec<u8>,
        read: Arc<AtomicUsize>,
    }

    impl NarSource for CountedNar {
        fn open_nar(&self, _: &Path) -> io::Result<Box<dyn Read + Send>> {
            struct Counting(io::Cursor<Vec<u8>>, Arc<AtomicUsize>);
            impl Read for Counting {
                fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                    let len = buf.len().min(4096);
                    let n = self.0.read(&mut buf[..len])?;
                    self.1.fetch_add(n, Ordering::SeqCst);
                    Ok(n)
                }
            }
            Ok(Box::new(Counting(
                io::Cursor::new(self.nar.clone()),
                self.read.clone(),
            )))
        }
    }

    use crate::layer::nar::regular_file_nar;

    /// A plain tar of a small member then a large one, as the NAR of a store path holding it.
    fn archive_nar() -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, size) in [("first.tar", 1000), ("second.tar", 500_000)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(size as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, &vec![b'x'; size][..])
                .unwrap();
        }
        regular_file_nar(&tar.into_inner().unwrap())
    }

    #[test]
    fn a_member_from_a_nar_is_read_without_the_rest_and_a_scan_to_the_end() {
        let nar = archive_nar();
        let read = Arc::new(AtomicUsize::new(0));
        let file = ArchiveFile {
            path: PathBuf::from("/nix/store/aaaa-image.tar"),
            source: StoreSource::Nars(Arc::new(CountedNar {
                nar: nar.clone(),
                read: read.clone(),
            })),
        };
        let out = copy_member(&file, ArchiveCompression::None, "first.tar", Vec::new())
            .map_err(|_| "copy failed")
            .unwrap();
        assert_eq!(out, vec![b'x'; 1000]);
        let first = read.swap(0, Ordering::SeqCst);
        assert!(first < 20_000, "read {first} of {} bytes", nar.len());

        let found: Option<()> =
            scan_archive(&file, ArchiveCompression::None, |_| io::Result::Ok(None)).unwrap();
        assert!(found.is_none());
        assert_eq!(read.load(Ordering::SeqCst), nar.len(), "to the NAR's end");
    }
}
