//! The tar-split of a zstd:chunked layer: the tar's bytes that are not file content (headers,
//! padding, the end of the archive) as segments, and each file's name, size and CRC-64/ISO, one
//! JSON object per line, as `vbatts/tar-split` packs them. Newer containers/storage readers
//! rebuild the tar from it and the files they fetched, and check it against the layer's
//! diff_id; without it they pull the whole layer. Kept zstd-compressed in memory until the
//! blob's end: a few hundred bytes per entry before compression.

use std::io::{self, Write};

use base64::Engine as _;
use serde::Serialize;

/// The checksum tar-split keeps of each file's content (Go's `crc64.ISO`).
pub const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);

/// tar-split's entry types.
const FILE_TYPE: u8 = 1;
const SEGMENT_TYPE: u8 = 2;

#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    size: u64,
    payload: Option<String>,
    position: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The tar-split, being written.
pub struct TarSplit {
    out: zstd::stream::write::Encoder<'static, Vec<u8>>,
    position: u64,
    uncompressed: u64,
}

impl TarSplit {
    pub fn new(level: i32) -> io::Result<Self> {
        Ok(TarSplit {
            out: zstd::stream::write::Encoder::new(Vec::new(), level)?,
            position: 0,
            uncompressed: 0,
        })
    }

    fn line(&mut self, entry: &Entry<'_>) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.uncompressed += line.len() as u64;
        self.position += 1;
        Ok(())
    }

    /// Raw tar bytes between files' contents.
    pub fn segment(&mut self, raw: &[u8]) -> io::Result<()> {
        let payload = base64::engine::general_purpose::STANDARD.encode(raw);
        self.line(&Entry {
            kind: SEGMENT_TYPE,
            name: None,
            size: 0,
            payload: Some(payload),
            position: self.position,
        })
    }

    /// An entry's content: its name, its size and the CRC-64 of its bytes (none when empty).
    pub fn file(&mut self, name: &str, size: u64, crc: Option<u64>) -> io::Result<()> {
        let payload =
            crc.map(|c| base64::engine::general_purpose::STANDARD.encode(c.to_be_bytes()));
        self.line(&Entry {
            kind: FILE_TYPE,
            name: Some(name),
            size,
            payload,
            position: self.position,
        })
    }

    /// The compressed tar-split, and its length before compression.
    pub fn finish(self) -> io::Result<(Vec<u8>, u64)> {
        Ok((self.out.finish()?, self.uncompressed))
    }
}
