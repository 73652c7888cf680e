//! Telling a layer's output failing apart from its input failing, when both go through one
//! `io::Error` path (a NAR visitor reads and writes in the same callback): the output is
//! wrapped in a writer that remembers its own failure.

use std::io::{self, Write};

/// A writer that remembers the failure of the writer it wraps.
pub(super) struct SinkErrors<W> {
    inner: W,
    failed: Option<io::Error>,
}

impl<W> SinkErrors<W> {
    pub(super) fn new(inner: W) -> Self {
        SinkErrors {
            inner,
            failed: None,
        }
    }

    /// The output's own failure, if it failed since the last call.
    pub(super) fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    pub(super) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for SinkErrors<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|e| {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|e| {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::super::nar::regular_file_nar;
    use super::super::walk::write_layer_tar_from;
    use super::super::{LayerError, NarSource, Owner, StoreSource, NIX_DIRS_MODE};

    /// A NAR of one regular file, with 100 KiB of content.
    fn file_nar() -> Vec<u8> {
        regular_file_nar(&vec![b'x'; 100 * 1024])
    }

    struct Nar(Vec<u8>);
    impl NarSource for Nar {
        fn open_nar(&self, _: &Path) -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(self.0.clone())))
        }
    }

    /// Accepts `left` bytes, then fails.
    struct Failing {
        left: usize,
    }
    impl std::io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("the upload broke"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_output_failing_is_told_from_the_nar_failing() {
        let path = [PathBuf::from(format!("/nix/store/{}-x", "a".repeat(32)))];
        let write = |nar: Vec<u8>, out: Failing| {
            let source = StoreSource::Nars(Arc::new(Nar(nar)));
            write_layer_tar_from(&path, &Owner::default(), NIX_DIRS_MODE, &source, out)
        };
        let broken_output = write(file_nar(), Failing { left: 50 * 1024 });
        assert!(matches!(broken_output, Err(LayerError::Sink(_))));
        let mut cut = file_nar();
        cut.truncate(60 * 1024);
        let broken_nar = write(cut, Failing { left: usize::MAX });
        assert!(matches!(broken_nar, Err(LayerError::Read { .. })));
        assert!(write(file_nar(), Failing { left: usize::MAX }).is_ok());
    }
}
