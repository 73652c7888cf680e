//! gzip for layers, compressed on every core and still byte-for-byte deterministic, the way pigz
//! does it: the input is cut into fixed-size blocks; each block is deflated on its own, primed
//! with the 32 KiB of input before it (what a decoder's window holds there), and ends with a sync
//! flush (byte-aligned, every deflate block closed), so the blocks' outputs simply follow each
//! other in one gzip member. A block's bytes depend only on the block and the 32 KiB before it,
//! never on which thread compressed it or how many there are.
//!
//! Adaptive per block: a block that looks incompressible (random-looking bytes: already-compressed
//! files, which store paths are full of) is written as stored blocks (RFC 1951, BTYPE 00) instead
//! of deflated, which costs almost no CPU and almost no bytes, since deflate cannot shrink it
//! either. The judgement is integer arithmetic on the block's bytes alone (no floating point), so
//! every machine decides alike.
//!
//! The container is plain RFC 1952 gzip (header, raw deflate, CRC-32 and size), written here
//! because flate2's `GzEncoder` cannot interleave stored data. Blocks are compressed by a
//! process-wide pool of one thread per core the process may run on; with one core they are
//! compressed in place, to the same bytes.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use flate2::{Compress, Crc, FlushCompress, Status};

/// Input block size: each block is compressed on its own.
pub const BLOCK: usize = 128 * 1024;
/// What a block is primed with: deflate's window.
const WINDOW: usize = 32 * 1024;
/// Output buffer per call into deflate.
const OUT_BUFFER: usize = 64 * 1024;
/// Largest stored block deflate allows.
const MAX_STORED_BLOCK: usize = 65535;
/// Smallest block worth judging: below this, byte statistics say little.
const MIN_JUDGED: usize = 4096;
/// A block whose byte histogram is this close to uniform is stored, not deflated: the chi-square
/// statistic of uniform random bytes over 256 values is about 255 (±23); text and code are in the
/// many thousands.
const STORED_CHI_SQUARE: u64 = 512;
/// The last deflate block: empty, fixed Huffman, BFINAL set.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// A gzip stream into `inner`.
pub struct GzipStream<W: Write> {
    inner: W,
    crc: Crc,
    level: u32,
    /// Input not yet made into a block.
    block: Vec<u8>,
    /// The last [`WINDOW`] bytes of input before `block`.
    window: Vec<u8>,
    /// Blocks being compressed, oldest first; none in place (one core).
    pool: Option<&'static Pool>,
    in_flight: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> GzipStream<W> {
    pub fn new(inner: W, level: u32) -> io::Result<Self> {
        GzipStream::with_pool(inner, level, Pool::shared())
    }

    /// The same stream, its blocks compressed by `pool` (none: in place, on this thread).
    pub fn with_pool(mut inner: W, level: u32, pool: Option<&'static Pool>) -> io::Result<Self> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=255 (unknown): no name, no time, no host.
        let xfl = match level {
            0 | 1 => 4,
            9 => 2,
            _ => 0,
        };
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        Ok(GzipStream {
            inner,
            crc: Crc::new(),
            level,
            block: Vec::with_capacity(BLOCK),
            window: Vec::new(),
            pool,
            in_flight: VecDeque::new(),
        })
    }

    /// Takes input; full blocks go to be compressed. Any chunking of the input gives the same
    /// bytes.
    pub fn feed(&mut self, mut input: &[u8]) -> io::Result<()> {
        self.crc.update(input);
        while !input.is_empty() {
            let n = (BLOCK - self.block.len()).min(input.len());
            self.block.extend_from_slice(&input[..n]);
            input = &input[n..];
            if self.block.len() == BLOCK {
                self.submit()?;
            }
        }
        Ok(())
    }

    /// Ends the stream (the last block, deflate's end, CRC-32, size) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() {
            self.submit()?;
        }
        while let Some(done) = self.in_flight.pop_front() {
            self.write_block(done)?;
        }
        self.inner.write_all(&FINAL_BLOCK)?;
        let size = self.crc.amount();
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        Ok(self.inner)
    }

    /// Compresses the current block (in the pool, or here), keeping what primes the next.
    fn submit(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let dictionary = std::mem::take(&mut self.window);
        // The next block's window: the last 32 KiB of input, wherever they lie.
        let mut window = if block.len() >= WINDOW {
            Vec::new()
        } else {
            dictionary[dictionary.len().saturating_sub(WINDOW - block.len())..].to_vec()
        };
        window.extend_from_slice(&block[block.len().saturating_sub(WINDOW)..]);
        self.window = window;
        let Some(pool) = self.pool else {
            let out = compress_block(&dictionary, &block, self.level)?;
            return self.inner.write_all(&out);
        };
        // Bounded: a few blocks per worker in flight; the oldest is written before more start.
        while self.in_flight.len() >= 2 * pool.workers {
            let done = self.in_flight.pop_front().expect("not empty");
            self.write_block(done)?;
        }
        self.in_flight
            .push_back(pool.compress(self.level, dictionary, block));
        Ok(())
    }

    fn write_block(&mut self, done: mpsc::Receiver<io::Result<Vec<u8>>>) -> io::Result<()> {
        let out = done
            .recv()
            .map_err(|_| io::Error::other("a compression thread stopped"))??;
        self.inner.write_all(&out)
    }
}

/// One block's deflate output: stored when it looks incompressible, else deflated primed with
/// `dictionary` and ended with a sync flush, by a compressor made for this block alone. Depends
/// only on its arguments: a compressor reused after `reset` carries something of the blocks
/// before it into its output (a test saw bytes differ with the thread that compressed them), so
/// none is reused.
fn compress_block(dictionary: &[u8], block: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len() / 2 + 64);
    if level > 0 && looks_incompressible(block) {
        for part in block.chunks(MAX_STORED_BLOCK) {
            let len = part.len() as u16;
            // BFINAL=0, BTYPE=00, padding to the byte boundary; LEN; NLEN; the bytes.
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(part);
        }
        return Ok(out);
    }
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        deflate
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let mut input = block;
    let mut buffer = Vec::with_capacity(OUT_BUFFER);
    loop {
        buffer.clear();
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(input, &mut buffer, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
        out.extend_from_slice(&buffer);
        let out_full = buffer.len() == buffer.capacity();
        if (input.is_empty() && !out_full) || status == Status::StreamEnd {
            return Ok(out);
        }
    }
}

/// Threads compressing blocks for every gzip stream of the process.
pub struct Pool {
    workers: usize,
    jobs: Mutex<mpsc::Sender<Job>>,
}

struct Job {
    level: u32,
    dictionary: Vec<u8>,
    block: Vec<u8>,
    done: mpsc::SyncSender<io::Result<Vec<u8>>>,
}

impl Pool {
    /// The process's pool: one thread per core it may run on (its CPU affinity, cgroup quota);
    /// none with one core.
    pub fn shared() -> Option<&'static Pool> {
        static POOL: OnceLock<Option<Pool>> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores > 1).then(|| Pool::new(cores))
        })
        .as_ref()
    }

    /// A pool of `workers` threads, for as long as the process runs.
    pub fn new(workers: usize) -> Pool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..workers {
            let queue = queue.clone();
            std::thread::spawn(move || loop {
                let job = match queue.lock().map(|q| q.recv()) {
                    Ok(Ok(job)) => job,
                    _ => return,
                };
                let out = compress_block(&job.dictionary, &job.block, job.level);
                let _ = job.done.send(out);
            });
        }
        Pool {
            workers,
            jobs: Mutex::new(jobs),
        }
    }

    fn compress(
        &self,
        level: u32,
        dictionary: Vec<u8>,
        block: Vec<u8>,
    ) -> mpsc::Receiver<io::Result<Vec<u8>>> {
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            level,
            dictionary,
            block,
            done,
        };
        if let Ok(jobs) = self.jobs.lock() {
            let _ = jobs.send(job);
        }
        result
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
        gzip_with(chunks, level, None)
    }

    fn gzip_with(chunks: &[&[u8]], level: u32, pool: Option<&'static Pool>) -> Vec<u8> {
        let mut g = GzipStream::with_pool(Vec::new(), level, pool).unwrap();
        for c in chunks {
            g.feed(c).unwrap();
        }
        g.finish().unwrap()
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_threads_or_the_input_chunking() {
        static ONE: OnceLock<Pool> = OnceLock::new();
        static EIGHT: OnceLock<Pool> = OnceLock::new();
        let text = b"a store path's text, compressible enough to deflate. ".repeat(40_000);
        let data = [text.clone(), noise(300_000, 11), text[..77_777].to_vec()].concat();
        let in_place = gzip(&[&data], 1);
        let one = gzip_with(&[&data], 1, Some(ONE.get_or_init(|| Pool::new(1))));
        let chunks: Vec<&[u8]> = data.chunks(10_007).collect();
        let eight = gzip_with(&chunks, 1, Some(EIGHT.get_or_init(|| Pool::new(8))));
        assert_eq!(in_place, one);
        assert_eq!(in_place, eight);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&eight[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Primed blocks: far smaller than the text alone would be if each block started cold.
        assert!(
            eight.len() < 300_000 + data.len() / 20,
            "{} bytes",
            eight.len()
        );
    }

    #[test]
    fn real_data_gives_the_same_bytes_in_place_and_in_any_pool() {
        static THREE: OnceLock<Pool> = OnceLock::new();
        // A real binary (this test's own), cut short: code, tables and strings.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let data = &exe[..exe.len().min(3 << 20)];
        let in_place = gzip(&[data], 1);
        let pooled = gzip_with(&[data], 1, Some(THREE.get_or_init(|| Pool::new(3))));
        assert_eq!(in_place, pooled);
        // Twice through the same pool, after other work: the same again.
        let _ = gzip_with(&[&data[1000..]], 1, THREE.get());
        assert_eq!(gzip_with(&[data], 1, THREE.get()), in_place);
    }

    #[test]
    fn an_empty_stream_is_a_valid_gzip_of_nothing() {
        let out = gzip(&[], 1);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
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
        // One block of text, two of random bytes, a little text: blocks align with the parts.
        let text = b"store path text ".repeat(BLOCK / 16);
        let random = noise(2 * BLOCK, 3);
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
