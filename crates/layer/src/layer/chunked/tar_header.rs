//! What the zstd:chunked writer needs to know of each tar header going by: the entry's kind,
//! name, link target, size, mode, owner and time, with PAX records (`x`) and GNU long names
//! (`L`, `K`) applied to the header they precede. Only read, never rewritten: the tar bytes
//! pass through as they are.

use std::collections::BTreeMap;
use std::io;

use base64::Engine as _;

/// A tar block.
pub const BLOCK: usize = 512;

/// One entry's header, as the table of contents describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub typeflag: u8,
    pub name: String,
    pub linkname: String,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub devmajor: u64,
    pub devminor: u64,
    /// PAX `SCHILY.xattr.NAME` records: name -> the value in base64.
    pub xattrs: BTreeMap<String, String>,
}

impl Header {
    /// Whether the entry's data is a file's content (a regular file: `0`, NUL, `7`), which
    /// zstd:chunked puts in a frame of its own; other data (a PAX record, a long name) is part
    /// of the header.
    pub fn has_file_content(&self) -> bool {
        matches!(self.typeflag, b'0' | 0 | b'7') && self.size > 0
    }
}

/// What extended headers said of the next entry.
#[derive(Clone, Debug, Default)]
pub struct Pending {
    path: Option<String>,
    linkpath: Option<String>,
    size: Option<u64>,
    mtime: Option<i64>,
    uid: Option<u64>,
    gid: Option<u64>,
    xattrs: BTreeMap<String, String>,
}

impl Pending {
    /// Takes in the data of an extended header of kind `typeflag` (`x`, `L`, `K`; a global
    /// `g` header is not applied).
    pub fn take(&mut self, typeflag: u8, data: &[u8]) -> io::Result<()> {
        let text = |d: &[u8]| {
            let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            String::from_utf8_lossy(&d[..end]).into_owned()
        };
        match typeflag {
            b'L' => self.path = Some(text(data)),
            b'K' => self.linkpath = Some(text(data)),
            b'x' => {
                for (key, value) in pax_records(data)? {
                    let number = || value.split('.').next().and_then(|v| v.parse().ok());
                    match key.as_str() {
                        "path" => self.path = Some(value.clone()),
                        "linkpath" => self.linkpath = Some(value.clone()),
                        "size" => self.size = number(),
                        "mtime" => self.mtime = number().map(|n: u64| n as i64),
                        "uid" => self.uid = number(),
                        "gid" => self.gid = number(),
                        _ => {
                            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                                let value = base64::engine::general_purpose::STANDARD
                                    .encode(value.as_bytes());
                                self.xattrs.insert(name.to_owned(), value);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether `block` is all zeros (the end of the archive).
pub fn is_zero(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// The header `block` describes, what `pending` extended headers said applied over it.
pub fn parse(block: &[u8; BLOCK], pending: Pending) -> io::Result<Header> {
    let stored: u32 = block[148..156]
        .iter()
        .copied()
        .filter(|b| (b'0'..=b'7').contains(b))
        .fold(0, |a, b| a * 8 + u32::from(b - b'0'));
    if crate::layer::tar::header_checksum(block) != stored {
        return Err(invalid("a tar header with a wrong checksum"));
    }
    let string = |r: std::ops::Range<usize>| {
        let field = &block[r];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).into_owned()
    };
    let mut name = string(0..100);
    if &block[257..262] == b"ustar" {
        let prefix = string(345..500);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(Header {
        typeflag: block[156],
        name: pending.path.unwrap_or(name),
        linkname: pending.linkpath.unwrap_or_else(|| string(157..257)),
        size: match pending.size {
            Some(size) => size,
            None => number(&block[124..136])?,
        },
        mode: number(&block[100..108])? as u32,
        uid: match pending.uid {
            Some(uid) => uid,
            None => number(&block[108..116])?,
        },
        gid: match pending.gid {
            Some(gid) => gid,
            None => number(&block[116..124])?,
        },
        mtime: match pending.mtime {
            Some(mtime) => mtime,
            None => number(&block[136..148])? as i64,
        },
        devmajor: number(&block[329..337])?,
        devminor: number(&block[337..345])?,
        xattrs: pending.xattrs,
    })
}

/// The data size of a header block, before any extended header is applied.
pub fn raw_size(block: &[u8; BLOCK]) -> io::Result<u64> {
    number(&block[124..136])
}

/// A numeric field: octal (NUL- or space-terminated), or base-256 with the high bit set.
fn number(field: &[u8]) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(|| invalid("a tar number too large"))?;
        }
        return Ok(n);
    }
    let digits = field
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b));
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(8)
            .map(|n| n + u64::from(d - b'0'))
            .ok_or_else(|| invalid("a tar number too large"))?;
    }
    Ok(n)
}

/// PAX records, `"<len> <key>=<value>\n"` each.
fn pax_records(mut data: &[u8]) -> io::Result<Vec<(String, String)>> {
    let mut records = Vec::new();
    while !data.is_empty() && data[0] != 0 {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| invalid("a PAX record without its length"))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > space && *l <= data.len())
            .ok_or_else(|| invalid("a PAX record of a wrong length"))?;
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            records.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        data = &data[len..];
    }
    Ok(records)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a valid tar: {what}"),
    )
}
