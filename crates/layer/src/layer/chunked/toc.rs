//! zstd:chunked's table of contents: one entry per tar entry (its metadata, its content's sha256
//! and where that content's zstd frame lies in the blob), as containers/storage's `pkg/chunked`
//! reads it; written after the last frame in a zstd skippable frame, found through the footer
//! and the layer annotations.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tar_header::Header;
use crate::digest::Digest;

/// The layer annotations that announce a zstd:chunked layer, as containers/storage before 1.44
/// names them (Debian's podman 4.3 reads these): the sha256 of the compressed table of
/// contents, and where it is (`offset:length:uncompressed length:type`).
pub const MANIFEST_CHECKSUM: &str = "io.containers.zstd-chunked.manifest-checksum";
pub const MANIFEST_POSITION: &str = "io.containers.zstd-chunked.manifest-position";
/// The same, as containers/storage names them since 1.44, and where the tar-split is
/// (`offset:length:uncompressed length`).
pub const TOC_CHECKSUM: &str = "io.github.containers.zstd-chunked.manifest-checksum";
pub const TOC_POSITION: &str = "io.github.containers.zstd-chunked.manifest-position";
pub const TAR_SPLIT_POSITION: &str = "io.github.containers.zstd-chunked.tarsplit-position";
/// The table of contents' type: the only one there is (`ManifestTypeCRFS`).
pub const TOC_TYPE: u64 = 1;
/// The footer's closing magic (`ZstdChunkedFrameMagic`, since containers/storage 1.50; older
/// readers find the table through the annotations, never the footer).
pub const FOOTER_MAGIC: &[u8; 8] = b"GNUlInUx";
/// A zstd skippable frame's magic number (the first of the sixteen), little-endian on disk.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// The whole table, with the digest of the compressed tar-split beside it.
#[derive(Serialize)]
pub struct Toc<'a> {
    pub version: u32,
    pub entries: &'a [TocEntry],
    #[serde(rename = "tarSplitDigest")]
    pub tar_split_digest: String,
}

/// One tar entry (`FileMetadata` in containers/storage). Fields at their zero value are left
/// out, as Go's `omitempty` leaves them out. Owner and time are spelt `UID`, `GID` and
/// `ModTime`: containers/storage 1.43 matches keys by case and knows only those spellings,
/// later versions match any case. Times the tar lacks (access, change) are left out.
#[derive(Clone, Debug, Serialize)]
pub struct TocEntry {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    #[serde(rename = "linkName", skip_serializing_if = "String::is_empty")]
    pub link_name: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub mode: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(rename = "UID", skip_serializing_if = "is_zero")]
    pub uid: u64,
    #[serde(rename = "GID", skip_serializing_if = "is_zero")]
    pub gid: u64,
    #[serde(rename = "ModTime", skip_serializing_if = "Option::is_none")]
    pub modtime: Option<String>,
    #[serde(rename = "devMajor", skip_serializing_if = "is_zero")]
    pub dev_major: u64,
    #[serde(rename = "devMinor", skip_serializing_if = "is_zero")]
    pub dev_minor: u64,
    /// Extended attributes (PAX `SCHILY.xattr.*`), each value in base64.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(rename = "endOffset", skip_serializing_if = "is_zero")]
    pub end_offset: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TocEntry {
    /// The entry of `header`; its content's digest and frame are filled in when it has been read.
    pub fn of(header: &Header) -> TocEntry {
        let kind = match header.typeflag {
            b'1' => "hardlink",
            b'2' => "symlink",
            b'3' => "char",
            b'4' => "block",
            b'5' => "dir",
            b'6' => "fifo",
            _ => "reg",
        };
        TocEntry {
            kind,
            name: header.name.clone(),
            link_name: header.linkname.clone(),
            mode: u64::from(header.mode),
            size: if kind == "reg" { header.size } else { 0 },
            uid: header.uid,
            gid: header.gid,
            // Go's zero time and the epoch both read as no time.
            modtime: (header.mtime != 0).then(|| crate::time::format_unix(header.mtime)),
            dev_major: header.devmajor,
            dev_minor: header.devminor,
            xattrs: header.xattrs.clone(),
            digest: String::new(),
            offset: 0,
            end_offset: 0,
        }
    }

    /// Its content was the frame `[offset, end_offset)` of the blob, of sha256 `digest`.
    pub fn located(&mut self, digest: &Digest, offset: u64, end_offset: u64) {
        self.digest = digest.to_string();
        self.offset = offset;
        self.end_offset = end_offset;
    }
}

/// Where a part of the blob's end is: its offset, its length and its length uncompressed.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub offset: u64,
    pub length: u64,
    pub uncompressed: u64,
}

/// The footer's data (containers/storage 1.50's 64 bytes): where the table of contents and
/// the tar-split are, and the magic.
pub fn footer(toc: Place, tar_split: Place) -> Vec<u8> {
    let mut data = Vec::with_capacity(64);
    for n in [
        toc.offset,
        toc.length,
        toc.uncompressed,
        TOC_TYPE,
        tar_split.offset,
        tar_split.length,
        tar_split.uncompressed,
    ] {
        data.extend_from_slice(&n.to_le_bytes());
    }
    data.extend_from_slice(FOOTER_MAGIC);
    data
}

/// The layer annotations that announce the table of contents and the tar-split, under both
/// readers' names.
pub fn annotations(checksum: &Digest, toc: Place, tar_split: Place) -> BTreeMap<String, String> {
    let position = format!(
        "{}:{}:{}:{TOC_TYPE}",
        toc.offset, toc.length, toc.uncompressed
    );
    let tar_split = format!(
        "{}:{}:{}",
        tar_split.offset, tar_split.length, tar_split.uncompressed
    );
    [
        (MANIFEST_CHECKSUM, checksum.to_string()),
        (MANIFEST_POSITION, position.clone()),
        (TOC_CHECKSUM, checksum.to_string()),
        (TOC_POSITION, position),
        (TAR_SPLIT_POSITION, tar_split),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
