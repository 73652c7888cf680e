//! The writer every local layer goes through on its way to disk or to the archive: it counts the
//! bytes, reports them as the layer's progress, and refuses to go on once the write is stopped,
//! which is how a failure elsewhere (or Ctrl-C) ends a blocking layer build early.

use std::io::{self, Write};
use std::sync::Arc;

use super::LocalError;
use crate::progress::Reporter;
use crate::stop::Stop;

/// Bytes between progress reports: a few reports per MiB, whatever sizes the writes have.
const REPORT_EVERY: u64 = 256 * 1024;

/// Counts what passes to `inner`, reports it for layer `index`, and fails once `cancel` is stopped.
pub(crate) struct LayerOutput<W> {
    inner: W,
    cancel: Stop,
    progress: Option<(usize, Arc<dyn Reporter>)>,
    written: u64,
    unreported: u64,
}

impl<W: Write> LayerOutput<W> {
    pub(crate) fn new(inner: W, cancel: Stop) -> Self {
        LayerOutput {
            inner,
            cancel,
            progress: None,
            written: 0,
            unreported: 0,
        }
    }

    /// Reports the bytes written as layer `index`'s progress.
    pub(crate) fn reporting(mut self, index: usize, reporter: Arc<dyn Reporter>) -> Self {
        self.progress = Some((index, reporter));
        self
    }

    /// Reports what is left and returns the inner writer and the byte count.
    pub(crate) fn finish(mut self) -> (W, u64) {
        self.report();
        (self.inner, self.written)
    }

    fn report(&mut self) {
        if let Some((index, reporter)) = &self.progress {
            if self.unreported > 0 {
                reporter.layer_bytes(*index, self.unreported);
            }
        }
        self.unreported = 0;
    }
}

impl<W: Write> Write for LayerOutput<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cancel.is_stopped() {
            // Not `ErrorKind::Interrupted`: `write_all` would retry that forever.
            return Err(io::Error::other(LocalError::Cancelled));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        self.unreported += n as u64;
        if self.unreported >= REPORT_EVERY {
            self.report();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_stops_when_cancelled() {
        let cancel = Stop::default();
        let mut out = LayerOutput::new(Vec::new(), cancel.clone());
        out.write_all(b"hello").unwrap();
        cancel.stop();
        let err = out.write_all(b"more").unwrap_err();
        assert_eq!(err.to_string(), "writing was stopped");
        assert_eq!(out.finish(), (b"hello".to_vec(), 5));
    }
}
