//! A tar writer that produces, byte for byte, what Python's `tarfile` writes in stream mode with
//! its default PAX format: the writer nixpkgs' `stream_layered_image.py` uses. Matching it is the
//! contract that gives a layer the same diff_id whether nixpkgs or nixpush made it.
//!
//! The `tar` crate is not used: its header helpers fall back to GNU long-name records and fill the
//! ustar prefix field, neither of which `tarfile` ever writes. The rules followed here:
//! - ustar headers (magic `ustar\0`, version `00`), empty devmajor/devminor, no prefix field;
//! - a PAX `x` header named `././@PaxHeader` before an entry for each string field that does not
//!   fit its ustar field or is not ASCII (`path` > 100, `linkpath` > 100, `uname`/`gname` > 32
//!   bytes) and each number too large for its octal field (value 0 in the ustar field);
//! - non-ASCII characters in ustar string fields become `?`, one per character;
//! - the checksum is six octal digits, a NUL and a space;
//! - the archive ends with two zero blocks, padded with zeros to a multiple of 10240 bytes.

use std::io::{self, Write};

const BLOCK: usize = 512;
/// `tarfile.RECORDSIZE`: archives are padded to a multiple of 20 blocks.
const RECORD: u64 = 20 * BLOCK as u64;
const NAME_LEN: usize = 100;
const OWNER_NAME_LEN: usize = 32;

/// A header block's checksum: the sum of its bytes, its own checksum field read as spaces.
pub fn header_checksum(block: &[u8; BLOCK]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum()
}

/// Who owns every entry, and when it was last modified: the same for a whole layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    pub mtime: u64,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
}

impl Default for Owner {
    /// dockerTools' defaults: root, and 1970-01-01T00:00:01Z (mtime 1, as nixpkgs sets it).
    fn default() -> Self {
        Owner {
            mtime: 1,
            uid: 0,
            gid: 0,
            uname: "root".to_owned(),
            gname: "root".to_owned(),
        }
    }
}

/// The kind of one tar entry.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    File { size: u64 },
    Directory,
    Symlink { target: &'a [u8] },
}

/// Writes entries to `inner`, keeping count of the offset for the final padding.
pub struct TarWriter<W> {
    inner: W,
    offset: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> Self {
        TarWriter { inner, offset: 0 }
    }

    /// Writes the header(s) of one entry. `name` is the full archive name; a directory's name
    /// gets its trailing `/` here, as `tarfile` adds it. A file's content must follow with
    /// [`TarWriter::write_content`] and exactly `size` bytes.
    pub fn append_header(
        &mut self,
        name: &[u8],
        kind: Kind<'_>,
        mode: u32,
        owner: &Owner,
    ) -> io::Result<()> {
        let mut name = name.to_vec();
        let (typeflag, size, linkname): (u8, u64, &[u8]) = match kind {
            Kind::File { size } => (b'0', size, b""),
            Kind::Directory => {
                if name.last() != Some(&b'/') {
                    name.push(b'/');
                }
                (b'5', 0, b"")
            }
            Kind::Symlink { target } => (b'2', 0, target),
        };

        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let needs_pax_string = |v: &[u8], limit: usize| !v.is_ascii() || v.len() > limit;
        if needs_pax_string(&name, NAME_LEN) {
            pax.push(("path", name.clone()));
        }
        if needs_pax_string(linkname, NAME_LEN) {
            pax.push(("linkpath", linkname.to_vec()));
        }
        if needs_pax_string(owner.uname.as_bytes(), OWNER_NAME_LEN) {
            pax.push(("uname", owner.uname.as_bytes().to_vec()));
        }
        if needs_pax_string(owner.gname.as_bytes(), OWNER_NAME_LEN) {
            pax.push(("gname", owner.gname.as_bytes().to_vec()));
        }
        let mut number = |key: &'static str, value: u64, digits: u32| {
            if value < 8u64.pow(digits - 1) {
                value
            } else {
                pax.push((key, value.to_string().into_bytes()));
                0
            }
        };
        let uid = number("uid", owner.uid, 8);
        let gid = number("gid", owner.gid, 8);
        let size_field = number("size", size, 12);
        let mtime = number("mtime", owner.mtime, 12);

        if !pax.is_empty() {
            let records = pax_records(&pax);
            let header = Header {
                name: b"././@PaxHeader",
                mode: 0,
                uid: 0,
                gid: 0,
                size: records.len() as u64,
                mtime: 0,
                typeflag: b'x',
                linkname: b"",
                uname: b"",
                gname: b"",
            };
            self.write_block(&header.encode())?;
            self.write_content(&records)?;
            self.pad(records.len() as u64)?;
        }
        let header = Header {
            name: &name,
            mode: mode & 0o7777,
            uid,
            gid,
            size: size_field,
            mtime,
            typeflag,
            linkname,
            uname: owner.uname.as_bytes(),
            gname: owner.gname.as_bytes(),
        };
        self.write_block(&header.encode())
    }

    /// Writes part of a file's content.
    pub fn write_content(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// Pads a file of `size` bytes to the next block boundary.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.write_content(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// The writer the archive goes to.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Ends the archive: two zero blocks, then zeros up to a whole record.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_content(&[0u8; 2 * BLOCK])?;
        let rem = self.offset % RECORD;
        if rem != 0 {
            let zeros = vec![0u8; (RECORD - rem) as usize];
            self.write_content(&zeros)?;
        }
        Ok(self.inner)
    }

    fn write_block(&mut self, block: &[u8; BLOCK]) -> io::Result<()> {
        self.write_content(block)
    }
}

/// `tarfile._create_pax_generic_header`'s records: `"<len> <key>=<value>\n"`, where `<len>`
/// counts itself; `hdrcharset=BINARY` first when a value is not UTF-8.
fn pax_records(fields: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    if fields.iter().any(|(_, v)| std::str::from_utf8(v).is_err()) {
        out.extend_from_slice(b"21 hdrcharset=BINARY\n");
    }
    for (key, value) in fields {
        let body = key.len() + value.len() + 3;
        let mut len = body;
        loop {
            let total = body + len.to_string().len();
            if total == len {
                break;
            }
            len = total;
        }
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

struct Header<'a> {
    name: &'a [u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
}

impl Header<'_> {
    fn encode(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        put_string(&mut b[0..100], self.name);
        put_octal(&mut b[100..108], self.mode as u64);
        put_octal(&mut b[108..116], self.uid);
        put_octal(&mut b[116..124], self.gid);
        put_octal(&mut b[124..136], self.size);
        put_octal(&mut b[136..148], self.mtime);
        b[148..156].copy_from_slice(b"        ");
        b[156] = self.typeflag;
        put_string(&mut b[157..257], self.linkname);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_string(&mut b[265..297], self.uname);
        put_string(&mut b[297..329], self.gname);
        // devmajor, devminor (329..345) and prefix (345..500) stay NUL, as tarfile leaves them.
        let sum: u32 = b.iter().map(|&x| x as u32).sum();
        let chksum = format!("{sum:06o}\0");
        b[148..155].copy_from_slice(chksum.as_bytes());
        b
    }
}

/// `tarfile.stn(s, length, "ascii", "replace")`: non-ASCII characters become one `?` each (an
/// undecodable byte counts as one character), then truncate, NUL-padded.
fn put_string(field: &mut [u8], value: &[u8]) {
    let mut ascii = Vec::with_capacity(value.len());
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            ascii.push(if c.is_ascii() { c as u8 } else { b'?' });
        }
        ascii.extend(std::iter::repeat_n(b'?', chunk.invalid().len()));
    }
    let n = ascii.len().min(field.len());
    field[..n].copy_from_slice(&ascii[..n]);
}

/// `tarfile.itn` for values that fit: zero-padded octal, then NUL.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_length_counts_its_own_digits() {
        // "30 path=" + 21 bytes + "\n": 2 + 1 + 4 + 1 + 21 + 1 = 30.
        let r = pax_records(&[("path", b"aaaaaaaaaaaaaaaaaaaaa".to_vec())]);
        assert_eq!(r, b"30 path=aaaaaaaaaaaaaaaaaaaaa\n");
        // Crossing a power of ten: body 97 + 2 digits = 99; body 98 + 2 = 100 needs 3 digits = 101.
        let v = vec![b'a'; 90];
        assert_eq!(pax_records(&[("path", v)]).len(), 99);
        let v = vec![b'a'; 91];
        assert_eq!(pax_records(&[("path", v)]).len(), 101);
    }

    #[test]
    fn non_utf8_values_are_marked_binary() {
        let r = pax_records(&[("path", vec![b'/', 0xff])]);
        assert!(r.starts_with(b"21 hdrcharset=BINARY\n"));
    }

    #[test]
    fn ustar_strings_replace_each_non_ascii_character_once() {
        let mut f = [0u8; 10];
        put_string(&mut f, "hé\u{65e5}x".as_bytes());
        assert_eq!(&f, b"h??x\0\0\0\0\0\0");
        let mut f = [0u8; 4];
        put_string(&mut f, &[b'a', 0xff, 0xfe, b'b', b'c']);
        assert_eq!(&f, b"a??b");
    }

    #[test]
    fn archive_is_padded_to_whole_records() {
        let mut w = TarWriter::new(Vec::new());
        w.append_header(b"/nix", Kind::Directory, 0o755, &Owner::default())
            .unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len(), 10240);
        assert_eq!(&out[..5], b"/nix/");
    }
}
