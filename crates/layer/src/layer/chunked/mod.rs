//! zstd:chunked layers, written while the tar streams by: every regular file's content in a
//! zstd frame of its own, the tar headers (and padding) in frames between them, then the table
//! of contents in a skippable frame and the footer, as containers/storage's `pkg/chunked`
//! reads them. A runtime that holds most of a layer's files already (an earlier version of
//! the same store path) fetches only the other files' frames, by HTTP `Range`.
//!
//! The frames together decompress to exactly the tar that went in (its end-of-archive blocks
//! and record padding included), so a plain zstd reader sees an ordinary zstd layer with the
//! gzip layer's diff_id. Single-threaded libzstd per frame, fed what the tar gives it: the same
//! bytes on any machine and with any number of cores.

mod frames;
mod tar_header;
mod tar_split;
mod toc;

use std::collections::BTreeMap;
use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use frames::Frames;
use tar_header::{Pending, BLOCK};
use tar_split::{TarSplit, CRC64};
use toc::{Place, Toc, TocEntry};

/// Most bytes of extended headers (PAX records, GNU long names) kept for one entry.
const MAX_EXTENDED: u64 = 1024 * 1024;

/// Where the tar stream is.
enum Part {
    /// Collecting a header block.
    Header,
    /// In an extended header's data (`x`, `g`, `L`, `K`): part of the next entry's header.
    Extended { typeflag: u8, left: u64, pad: u64 },
    /// In a regular file's content: a frame of its own.
    Content { left: u64, pad: u64 },
    /// In other data (a hard link or device with a size): kept with the headers.
    Other { left: u64, pad: u64 },
    /// In the padding after data, which goes with the next header.
    Padding { left: u64 },
    /// After the first block of zeros: the end of the archive.
    End,
}

/// A zstd:chunked compressor over `W`.
pub struct ChunkedWriter<W: Write> {
    frames: Frames<W>,
    part: Part,
    block: Vec<u8>,
    extended: Vec<u8>,
    pending: Pending,
    entries: Vec<TocEntry>,
    /// The content being read: its entry's index, its sha256, its CRC-64 and where its frame
    /// began.
    content: Option<Content>,
    /// The tar's bytes since the last file content (the next tar-split segment), and where in
    /// them the end of the archive began.
    segment: Vec<u8>,
    end_at: Option<usize>,
    tar_split: TarSplit,
    level: i32,
}

/// A file's content, as it goes by.
struct Content {
    entry: usize,
    sha256: Sha256,
    crc: crc::Digest<'static, u64>,
    start: u64,
}

impl<W: Write> ChunkedWriter<W> {
    pub fn new(inner: W, level: u32) -> io::Result<Self> {
        Ok(ChunkedWriter {
            frames: Frames::new(inner, level as i32)?,
            part: Part::Header,
            block: Vec::with_capacity(BLOCK),
            extended: Vec::new(),
            pending: Pending::default(),
            entries: Vec::new(),
            content: None,
            segment: Vec::new(),
            end_at: None,
            tar_split: TarSplit::new(level as i32)?,
            level: level as i32,
        })
    }

    /// Takes in as much of `data` as the current part of the tar spans; returns how much.
    fn step(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.part {
            Part::Header => {
                let n = (BLOCK - self.block.len()).min(data.len());
                self.block.extend_from_slice(&data[..n]);
                if self.block.len() == BLOCK {
                    let block: [u8; BLOCK] = self.block[..].try_into().expect("a block");
                    self.block.clear();
                    self.frames.write(&block)?;
                    self.segment.extend_from_slice(&block);
                    self.header(&block)?;
                }
                Ok(n)
            }
            Part::Extended {
                typeflag,
                left,
                pad,
            } => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.frames.write(&data[..n])?;
                self.segment.extend_from_slice(&data[..n]);
                if (self.extended.len() as u64) < MAX_EXTENDED {
                    self.extended.extend_from_slice(&data[..n]);
                }
                *left -= n as u64;
                if *left == 0 {
                    let (typeflag, pad) = (*typeflag, *pad);
                    let extended = std::mem::take(&mut self.extended);
                    self.pending.take(typeflag, &extended)?;
                    self.part = padding(pad);
                }
                Ok(n)
            }
            Part::Content { left, pad } => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.frames.write(&data[..n])?;
                if let Some(content) = &mut self.content {
                    content.sha256.update(&data[..n]);
                    content.crc.update(&data[..n]);
                }
                *left -= n as u64;
                if *left == 0 {
                    let pad = *pad;
                    self.frames.end_frame()?;
                    let content = self.content.take().expect("a file's content");
                    let digest = Digest::from_sha256(content.sha256.finalize().into());
                    let entry = &mut self.entries[content.entry];
                    entry.located(&digest, content.start, self.frames.written);
                    let (name, size) = (entry.name.clone(), entry.size);
                    self.tar_split
                        .file(&name, size, Some(content.crc.finalize()))?;
                    self.part = padding(pad);
                }
                Ok(n)
            }
            Part::Other { left, pad } => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.frames.write(&data[..n])?;
                self.segment.extend_from_slice(&data[..n]);
                *left -= n as u64;
                if *left == 0 {
                    self.part = padding(*pad);
                }
                Ok(n)
            }
            Part::Padding { left } => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                self.frames.write(&data[..n])?;
                self.segment.extend_from_slice(&data[..n]);
                *left -= n as u64;
                if *left == 0 {
                    self.part = Part::Header;
                }
                Ok(n)
            }
            Part::End => {
                self.frames.write(data)?;
                self.segment.extend_from_slice(data);
                Ok(data.len())
            }
        }
    }

    /// A whole header block has gone by: what comes after it.
    fn header(&mut self, block: &[u8; BLOCK]) -> io::Result<()> {
        if tar_header::is_zero(block) {
            self.part = Part::End;
            self.end_at = Some(self.segment.len() - BLOCK);
            return Ok(());
        }
        let typeflag = block[156];
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            let size = tar_header::raw_size(block)?;
            self.part = data_part(size, |left, pad| Part::Extended {
                typeflag,
                left,
                pad,
            });
            return Ok(());
        }
        let header = tar_header::parse(block, std::mem::take(&mut self.pending))?;
        self.entries.push(TocEntry::of(&header));
        // The headers since the last content are one segment, then the entry.
        self.tar_split.segment(&std::mem::take(&mut self.segment))?;
        let size = header.size;
        self.part = if header.has_file_content() {
            // The file's content starts a frame of its own.
            self.frames.end_frame()?;
            self.content = Some(Content {
                entry: self.entries.len() - 1,
                sha256: Sha256::new(),
                crc: CRC64.digest(),
                start: self.frames.written,
            });
            data_part(size, |left, pad| Part::Content { left, pad })
        } else {
            self.tar_split.file(&header.name, 0, None)?;
            data_part(size, |left, pad| Part::Other { left, pad })
        };
        Ok(())
    }

    /// Ends the last frame, writes the table of contents and the footer: the blob is complete.
    /// Returns the inner writer and the annotations the layer's descriptor must carry.
    pub fn finish(mut self) -> io::Result<(W, BTreeMap<String, String>)> {
        if !matches!(self.part, Part::End | Part::Header) || !self.block.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the layer's tar ended inside an entry",
            ));
        }
        self.frames.end_frame()?;
        // The end of the archive as Go's tar reader reads it (the padding before it and its
        // two blocks of zeros), then the rest (a record's padding), as tar-split keeps them.
        let end = self.end_at.map_or(self.segment.len(), |at| {
            (at + 2 * BLOCK).min(self.segment.len())
        });
        let rest = self.segment.split_off(end);
        self.tar_split.segment(&self.segment)?;
        self.tar_split.segment(&rest)?;
        let (tar_split, tar_split_len) = self.tar_split.finish()?;
        let toc = serde_json::to_vec(&Toc {
            version: 1,
            entries: &self.entries,
            tar_split_digest: Digest::of(&tar_split).to_string(),
        })
        .map_err(io::Error::other)?;
        let compressed = zstd::bulk::compress(&toc, self.level)?;
        let toc_place = Place {
            offset: self.frames.written + 8,
            length: compressed.len() as u64,
            uncompressed: toc.len() as u64,
        };
        self.frames.skippable(&compressed)?;
        let split_place = Place {
            offset: self.frames.written + 8,
            length: tar_split.len() as u64,
            uncompressed: tar_split_len,
        };
        self.frames.skippable(&tar_split)?;
        self.frames
            .skippable(&toc::footer(toc_place, split_place))?;
        let annotations = toc::annotations(&Digest::of(&compressed), toc_place, split_place);
        Ok((self.frames.inner, annotations))
    }
}

/// The padding after data, if there is any.
fn padding(left: u64) -> Part {
    match left {
        0 => Part::Header,
        left => Part::Padding { left },
    }
}

/// The part for `size` bytes of data (then padding to the block), or the next header if none.
fn data_part(size: u64, part: impl FnOnce(u64, u64) -> Part) -> Part {
    match size {
        0 => Part::Header,
        _ => part(size, size.next_multiple_of(BLOCK as u64) - size),
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < data.len() {
            done += self.step(&data[done..])?;
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// A tar with a directory, files (one empty, one with a long PAX name), a symlink and a
    /// hard link, padded to a whole record as GNU tar pads it.
    fn sample_tar() -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |kind: tar::EntryType, name: &str, link: Option<&str>, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o444
            });
            header.set_mtime(1);
            match link {
                Some(target) => tar.append_link(&mut header, name, target).unwrap(),
                None => tar.append_data(&mut header, name, data).unwrap(),
            }
        };
        add(tar::EntryType::Directory, "nix/store/a-pkg/", None, b"");
        add(
            tar::EntryType::Regular,
            "nix/store/a-pkg/big",
            None,
            &vec![7u8; 100_000],
        );
        add(tar::EntryType::Regular, "nix/store/a-pkg/empty", None, b"");
        let long = format!("nix/store/a-pkg/{}", "n".repeat(150));
        add(
            tar::EntryType::Regular,
            &long,
            None,
            b"a file with a long name\n",
        );
        add(
            tar::EntryType::Symlink,
            "nix/store/a-pkg/link",
            Some("big"),
            b"",
        );
        add(
            tar::EntryType::Link,
            "nix/store/a-pkg/hard",
            Some("nix/store/a-pkg/big"),
            b"",
        );
        let mut bytes = tar.into_inner().unwrap();
        bytes.resize(bytes.len().next_multiple_of(10240), 0);
        bytes
    }

    fn chunked(tar: &[u8], piece: usize) -> (Vec<u8>, BTreeMap<String, String>) {
        let mut w = ChunkedWriter::new(Vec::new(), 3).unwrap();
        for p in tar.chunks(piece) {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap()
    }

    /// The skippable frame at `offset - 8`, decompressed.
    fn skippable_at(blob: &[u8], offset: usize, length: usize) -> Vec<u8> {
        assert_eq!(
            blob[offset - 8..offset - 4],
            toc::SKIPPABLE_MAGIC.to_le_bytes()
        );
        zstd::stream::decode_all(&blob[offset..offset + length]).unwrap()
    }

    fn place(annotation: &str) -> (usize, usize, usize) {
        let n: Vec<usize> = annotation.split(':').map(|n| n.parse().unwrap()).collect();
        (n[0], n[1], n[2])
    }

    #[test]
    fn the_frames_are_the_tar_byte_for_byte_whatever_the_write_sizes() {
        let tar = sample_tar();
        let (blob, annotations) = chunked(&tar, 1000);
        assert_eq!(zstd::stream::decode_all(&blob[..]).unwrap(), tar);
        assert_eq!((blob.clone(), annotations.clone()), chunked(&tar, 1));
        assert_eq!((blob, annotations), chunked(&tar, 65536));
    }

    #[test]
    fn each_file_is_its_own_frame_named_by_the_table_of_contents() {
        let tar = sample_tar();
        let (blob, annotations) = chunked(&tar, 4096);
        let (offset, length, uncompressed) = place(&annotations[toc::MANIFEST_POSITION]);
        assert_eq!(
            annotations[toc::MANIFEST_POSITION],
            annotations[toc::TOC_POSITION]
        );
        assert!(annotations[toc::MANIFEST_POSITION].ends_with(":1"));
        assert_eq!(
            annotations[toc::MANIFEST_CHECKSUM],
            Digest::of(&blob[offset..offset + length]).to_string()
        );
        let toc_json = skippable_at(&blob, offset, length);
        assert_eq!(toc_json.len(), uncompressed);
        let toc: serde_json::Value = serde_json::from_slice(&toc_json).unwrap();
        let entries = toc["entries"].as_array().unwrap();
        let kinds: Vec<&str> = entries
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["dir", "reg", "reg", "reg", "symlink", "hardlink"]);
        assert_eq!(
            entries[3]["name"],
            format!("nix/store/a-pkg/{}", "n".repeat(150))
        );
        assert_eq!(entries[0]["ModTime"], "1970-01-01T00:00:01Z");
        assert_eq!(entries[4]["linkName"], "big");
        for e in entries
            .iter()
            .filter(|e| e["size"].as_u64().unwrap_or(0) > 0)
        {
            let (start, end) = (
                e["offset"].as_u64().unwrap(),
                e["endOffset"].as_u64().unwrap(),
            );
            let content = zstd::stream::decode_all(&blob[start as usize..end as usize]).unwrap();
            assert_eq!(content.len() as u64, e["size"].as_u64().unwrap());
            assert_eq!(
                Digest::of(&content).to_string(),
                e["digest"].as_str().unwrap()
            );
        }
        assert!(
            entries[2].get("digest").is_none(),
            "an empty file has no frame"
        );

        // The tar-split: segments and files that give the tar back, its digest in the TOC.
        let (offset, length, uncompressed) = place(&annotations[toc::TAR_SPLIT_POSITION]);
        assert_eq!(
            toc["tarSplitDigest"],
            Digest::of(&blob[offset..offset + length]).to_string()
        );
        let split = skippable_at(&blob, offset, length);
        assert_eq!(split.len(), uncompressed);
        let mut rebuilt = Vec::new();
        let contents: Vec<Vec<u8>> =
            vec![vec![7u8; 100_000], b"a file with a long name\n".to_vec()];
        let mut next = contents.iter();
        for line in split.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let e: serde_json::Value = serde_json::from_slice(line).unwrap();
            let payload = e["payload"]
                .as_str()
                .map(|p| base64::engine::general_purpose::STANDARD.decode(p).unwrap());
            match e["type"].as_u64().unwrap() {
                2 => rebuilt.extend(payload.unwrap()),
                1 if e["size"].as_u64().unwrap_or(0) > 0 => {
                    let content = next.next().unwrap();
                    assert_eq!(payload.unwrap(), CRC64.checksum(content).to_be_bytes());
                    rebuilt.extend(content);
                }
                1 => assert!(payload.is_none()),
                t => panic!("type {t}"),
            }
        }
        assert_eq!(rebuilt, tar);

        // The footer: where both are, and the magic.
        let footer = &blob[blob.len() - 64..];
        assert_eq!(&footer[56..], b"GNUlInUx");
        assert_eq!(
            u64::from_le_bytes(footer[32..40].try_into().unwrap()),
            offset as u64
        );
    }

    #[test]
    fn a_tar_cut_inside_an_entry_is_refused() {
        let tar = sample_tar();
        let mut w = ChunkedWriter::new(Vec::new(), 3).unwrap();
        w.write_all(&tar[..2000]).unwrap();
        assert!(w.finish().is_err());
    }
}
