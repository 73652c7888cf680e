//! gzip for layers, adaptive per chunk: a chunk that looks incompressible (random-looking bytes:
//! already-compressed files, which store paths are full of) is stored instead of deflated, which
//! costs almost no CPU and almost no bytes, since deflate cannot shrink it either. Everything else
//! is deflated at the chosen level.
//!
//! Deterministic: the decision is made per fixed-size input chunk from integer arithmetic on the
//! chunk's bytes alone (no floating point, so every machine decides alike), and switching levels
//! always goes through a sync flush first, so the output depends only on the input.
//!
//! How: deflated data ends with a sync flush (byte-aligned, every block closed), then the chunk
//! goes out as stored blocks written here (RFC 1951, BTYPE 00), and the compressor is reset before
//! it deflates again, so it never refers back into bytes it did not see. The container is plain
//! RFC 1952 gzip (header, raw deflate, CRC-32 and size), written here because flate2's
//! `GzEncoder` cannot interleave stored data.

use std::io::{self, Write};

use flate2::{Compress, Crc, FlushCompress, Status};

/// Output buffer per call into deflate.
const OUT_BUFFER: usize = 128 * 1024;
/// Largest stored block deflate allows.
const MAX_STORED_BLOCK: usize = 65535;
/// Smallest chunk worth judging: below this, byte statistics say little.
const MIN_JUDGED: usize = 4096;
/// A chunk whose byte histogram is this close to uniform is stored, not deflated: the chi-square
/// statistic of uniform random bytes over 256 values is about 255 (±23); text and code are in the
/// many thousands.
const STORED_CHI_SQUARE: u64 = 512;

/// A gzip stream into `inner`.
pub struct GzipStream<W: Write> {
    inner: W,
    deflate: Compress,
    crc: Crc,
    level: u32,
    /// Input went into the compressor since its last flush or reset.
    pending: bool,
    /// Stored blocks were written since the compressor's last reset.
    stale: bool,
    out: Vec<u8>,
}

impl<W: Write> GzipStream<W> {
    pub fn new(mut inner: W, level: u32) -> io::Result<Self> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=255 (unknown): no name, no time, no host.
        let xfl = match level {
            0 | 1 => 4,
            9 => 2,
            _ => 0,
        };
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        Ok(GzipStream {
            inner,
            deflate: Compress::new(flate2::Compression::new(level), false),
            crc: Crc::new(),
            level,
            pending: false,
            stale: false,
            out: Vec::with_capacity(OUT_BUFFER),
        })
    }

    /// Compresses one input chunk (callers feed fixed-size chunks for deterministic output).
    pub fn feed(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.crc.update(chunk);
        if self.level > 0 && looks_incompressible(chunk) {
            if self.pending {
                self.run(&[], FlushCompress::Sync)?;
                self.pending = false;
            }
            for block in chunk.chunks(MAX_STORED_BLOCK) {
                let len = block.len() as u16;
                // BFINAL=0, BTYPE=00, padding to the byte boundary; LEN; NLEN; the bytes.
                self.inner.write_all(&[0])?;
                self.inner.write_all(&len.to_le_bytes())?;
                self.inner.write_all(&(!len).to_le_bytes())?;
                self.inner.write_all(block)?;
            }
            self.stale = true;
            return Ok(());
        }
        if self.stale {
            // The decoder's window now holds bytes the compressor never saw: start it afresh.
            self.deflate.reset();
            self.stale = false;
        }
        self.pending = true;
        self.run(chunk, FlushCompress::None)
    }

    /// Ends the stream (deflate end, CRC-32, size) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.stale {
            self.deflate.reset();
        }
        // The final block (empty when the last chunk was stored).
        self.run(&[], FlushCompress::Finish)?;
        let size = self.crc.amount();
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        Ok(self.inner)
    }

    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.out.clear();
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            self.inner.write_all(&self.out)?;
            let out_full = self.out.len() == self.out.capacity();
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty() && !out_full,
            };
            if done {
                return Ok(());
            }
        }
    }
}

/// Whether a chunk's bytes are spread (nearly) evenly over all 256 values, as random and
/// already-compressed data are: chi-square against the uniform distribution, in integers.
fn looks_incompressible(chunk: &[u8]) -> bool {
    if chunk.len() < MIN_JUDGED {
        return false;
    }
    let mut counts = [0u64; 256];
    for &b in chunk {
        counts[b as usize] += 1;
    }
    let n = chunk.len() as u64;
    // chi² = Σ (c - n/256)² / (n/256) = 256·Σc²/n - n
    let sum_sq: u64 = counts.iter().map(|c| c * c).sum();
    (256 * sum_sq / n).saturating_sub(n) < STORED_CHI_SQUARE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Deterministic pseudo-random bytes (xorshift), standing in for compressed files.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    fn gzip(chunks: &[&[u8]], level: u32) -> Vec<u8> {
        let mut g = GzipStream::new(Vec::new(), level).unwrap();
        for c in chunks {
            g.feed(c).unwrap();
        }
        g.finish().unwrap()
    }

    #[test]
    fn judges_noise_incompressible_and_text_or_code_not() {
        assert!(looks_incompressible(&noise(65536, 7)));
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog 0123456789\n"
            .iter()
            .cycle()
            .take(65536)
            .copied()
            .collect();
        assert!(!looks_incompressible(&text));
        let mut code = noise(65536, 9);
        code.iter_mut().step_by(3).for_each(|b| *b = 0);
        assert!(
            !looks_incompressible(&code),
            "a third zero bytes is compressible"
        );
        assert!(!looks_incompressible(&noise(100, 1)), "too small to judge");
    }

    #[test]
    fn mixed_content_round_trips_through_a_standard_gzip_reader() {
        let text = b"store path text ".repeat(8192);
        let random = noise(200_000, 3);
        let out = gzip(
            &[&text, &random[..65536], &random[65536..], &text[..1000]],
            1,
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        let mut expected = text.clone();
        expected.extend_from_slice(&random);
        expected.extend_from_slice(&text[..1000]);
        assert_eq!(back, expected);
        // The random part is stored: the output is barely larger than the random input.
        assert!(out.len() < random.len() + 2000, "{} bytes", out.len());
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let data = [b"abc ".repeat(20_000), noise(70_000, 5)].concat();
        let chunks: Vec<&[u8]> = data.chunks(65536).collect();
        assert_eq!(gzip(&chunks, 1), gzip(&chunks, 1));
        assert_ne!(gzip(&chunks, 1), gzip(&chunks, 6), "the level matters");
    }
}
