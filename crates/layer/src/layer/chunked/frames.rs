//! zstd:chunked's frames: zstd frames one after another, each ended where the layout says (a
//! file's content starts or ends), libzstd's single-threaded encoder reused from frame to frame;
//! the skippable frames at the blob's end; and the count of bytes written, which gives the
//! offsets the table of contents names.

use std::io::{self, Write};

use zstd::stream::raw::{Encoder as RawEncoder, InBuffer, Operation, OutBuffer};

use super::toc::SKIPPABLE_MAGIC;

/// Output buffer between libzstd and the blob.
const OUT_BUFFER: usize = 64 * 1024;

/// zstd frames one after another, each ended when asked, and the count of bytes written.
pub(super) struct Frames<W: Write> {
    pub(super) inner: W,
    encoder: RawEncoder<'static>,
    out: Vec<u8>,
    open: bool,
    pub(super) written: u64,
}

impl<W: Write> Frames<W> {
    pub(super) fn new(inner: W, level: i32) -> io::Result<Self> {
        Ok(Frames {
            inner,
            encoder: RawEncoder::new(level)?,
            out: vec![0; OUT_BUFFER],
            open: false,
            written: 0,
        })
    }

    fn emit(&mut self, n: usize) -> io::Result<()> {
        self.inner.write_all(&self.out[..n])?;
        self.written += n as u64;
        Ok(())
    }

    /// Compresses `data` into the current frame (opening one if none is).
    pub(super) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.open = true;
        while !data.is_empty() {
            let mut input = InBuffer::around(data);
            let mut output = OutBuffer::around(&mut self.out[..]);
            self.encoder.run(&mut input, &mut output)?;
            let (consumed, produced) = (input.pos(), output.pos());
            self.emit(produced)?;
            data = &data[consumed..];
        }
        Ok(())
    }

    /// Ends the current frame, if one is open.
    pub(super) fn end_frame(&mut self) -> io::Result<()> {
        if !self.open {
            return Ok(());
        }
        loop {
            let mut output = OutBuffer::around(&mut self.out[..]);
            let remaining = self.encoder.finish(&mut output, true)?;
            let produced = output.pos();
            self.emit(produced)?;
            if remaining == 0 {
                break;
            }
        }
        self.encoder.reinit()?;
        self.open = false;
        Ok(())
    }

    /// A skippable frame holding `data`.
    pub(super) fn skippable(&mut self, data: &[u8]) -> io::Result<()> {
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        header[4..].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(data)?;
        self.written += (header.len() + data.len()) as u64;
        Ok(())
    }
}
