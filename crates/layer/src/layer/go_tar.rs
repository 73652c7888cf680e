//! A tar writer that produces, byte for byte, what Go's `archive/tar` writes for a header whose
//! format is left unset: the writer nix2container's layers come from. Matching it is what gives
//! a nix2container layer the digest its image JSON already names.
//!
//! The rules of Go's writer followed here (its format chosen per header):
//! - ustar when every field fits: a name over 100 bytes split at a `/` into the 155-byte prefix
//!   and the 100-byte name when it can be (the last `/` within the first 156 bytes);
//! - otherwise PAX: an `x` header named `DIR/PaxHeaders.0/FILE` (cut to 100 bytes) with mode, uid,
//!   gid and mtime `0`, empty owner names and empty device fields, holding the records in key
//!   order; then the entry's ustar-shaped header with its fields cut to fit (non-ASCII bytes
//!   dropped, a number that does not fit written as 0), the prefix left empty;
//! - numbers are octal, zero-padded to one short of the field and NUL-ended; device numbers are
//!   written (`0000000`); the checksum is six octal digits, a NUL and a space;
//! - the archive ends with two zero blocks and nothing more.

use std::io::{self, Write};

use super::tar::header_checksum;

const BLOCK: usize = 512;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const OWNER_NAME_LEN: usize = 32;

/// What one entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoKind<'a> {
    File { size: u64 },
    Directory,
    Symlink { target: &'a [u8] },
}

/// One header as nix2container fills it: mtime is always 1.
#[derive(Clone, Debug)]
pub struct GoHeader<'a> {
    pub name: &'a [u8],
    pub kind: GoKind<'a>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: &'a [u8],
    pub gname: &'a [u8],
}

/// Writes entries as Go's `archive/tar` does.
pub struct GoTarWriter<W> {
    inner: W,
}

impl<W: Write> GoTarWriter<W> {
    pub fn new(inner: W) -> Self {
        GoTarWriter { inner }
    }

    /// Writes `h`'s header (and its PAX header before it, when Go's writer would write one).
    pub fn append_header(&mut self, h: &GoHeader<'_>) -> io::Result<()> {
        let (typeflag, size, link): (u8, u64, &[u8]) = match h.kind {
            GoKind::File { size } => (b'0', size, b""),
            GoKind::Directory => (b'5', 0, b""),
            GoKind::Symlink { target } => (b'2', 0, target),
        };
        // A long name goes in a PAX record whenever there is a PAX header; it alone makes one
        // only when it cannot be split into ustar's prefix and name.
        let mut records: Vec<(&str, Vec<u8>)> = Vec::new();
        let long_name = h.name.len() > NAME_LEN || !h.name.is_ascii();
        let split = split_ustar_path(h.name);
        if long_name {
            records.push(("path", h.name.to_vec()));
        }
        for (key, value, len) in [
            ("linkpath", link, NAME_LEN),
            ("uname", h.uname, OWNER_NAME_LEN),
            ("gname", h.gname, OWNER_NAME_LEN),
        ] {
            if value.len() > len || !value.is_ascii() {
                records.push((key, value.to_vec()));
            }
        }
        for (key, value, len) in [("uid", h.uid, 8), ("gid", h.gid, 8), ("size", size, 12)] {
            if !fits_octal(len, value) {
                records.push((key, value.to_string().into_bytes()));
            }
        }
        let mut block = [0u8; BLOCK];
        let ustar =
            records.iter().all(|(key, _)| *key == "path") && (!long_name || split.is_some());
        if ustar {
            let (prefix, name) = split.unwrap_or((&b""[..], h.name));
            fill(&mut block, h, typeflag, name, link, size);
            format_string(&mut block[345..345 + PREFIX_LEN], prefix);
        } else {
            records.sort_by(|a, b| a.0.cmp(b.0));
            let mut data = Vec::new();
            for (key, value) in &records {
                data.extend(pax_record(key, value));
            }
            self.write_pax(h.name, &data)?;
            let name = ascii_only(h.name);
            let link = ascii_only(link);
            fill(&mut block, h, typeflag, &name, &link, size);
        }
        set_magic_and_checksum(&mut block);
        self.inner.write_all(&block)
    }

    /// Writes `data` as content, then the padding to the next block once `size` bytes are in.
    pub fn write_content(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)
    }

    /// The zeros after `size` bytes of content.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.inner.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// The two zero blocks that end the archive.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.inner)
    }

    /// The `x` header before an entry, and its records.
    fn write_pax(&mut self, real_name: &[u8], data: &[u8]) -> io::Result<()> {
        let (dir, file) = match real_name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&real_name[..=i], &real_name[i + 1..]),
            None => (&b""[..], real_name),
        };
        let joined = [dir, b"PaxHeaders.0/", file].concat();
        let mut name = ascii_only(&clean(&joined));
        name.truncate(NAME_LEN);
        while name.last() == Some(&b'/') {
            name.pop();
        }
        let mut block = [0u8; BLOCK];
        block[156] = b'x';
        format_string(&mut block[0..100], &name);
        format_octal(&mut block[100..108], 0);
        format_octal(&mut block[108..116], 0);
        format_octal(&mut block[116..124], 0);
        format_octal(&mut block[124..136], data.len() as u64);
        format_octal(&mut block[136..148], 0);
        set_magic_and_checksum(&mut block);
        self.inner.write_all(&block)?;
        self.inner.write_all(data)?;
        self.pad(data.len() as u64)
    }
}

/// Fills the fields every header shares (Go's `templateV7Plus`).
fn fill(
    block: &mut [u8; BLOCK],
    h: &GoHeader<'_>,
    typeflag: u8,
    name: &[u8],
    link: &[u8],
    size: u64,
) {
    block[156] = typeflag;
    format_string(&mut block[0..100], name);
    format_string(&mut block[157..257], link);
    format_octal(&mut block[100..108], u64::from(h.mode));
    format_octal(&mut block[108..116], h.uid);
    format_octal(&mut block[116..124], h.gid);
    format_octal(&mut block[124..136], size);
    format_octal(&mut block[136..148], 1);
    format_string(&mut block[265..297], &ascii_only(h.uname));
    format_string(&mut block[297..329], &ascii_only(h.gname));
    format_octal(&mut block[329..337], 0);
    format_octal(&mut block[337..345], 0);
}

/// `ustar\0`, `00`, then the checksum over the block with its own field read as spaces.
fn set_magic_and_checksum(block: &mut [u8; BLOCK]) {
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    let sum = u64::from(header_checksum(block));
    format_octal(&mut block[148..155], sum);
    block[155] = b' ';
}

/// Go's `formatString`: the bytes, cut to the field, NUL-ended when shorter; a cut name whose
/// last kept byte is `/` loses its trailing slashes.
fn format_string(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = &s[..field.len() - 1];
        let end = kept.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        field[end] = 0;
    }
}

/// Go's `formatOctal`: octal digits zero-padded to one short of the field; 0 if it does not fit.
fn format_octal(field: &mut [u8], value: u64) {
    let value = if fits_octal(field.len(), value) {
        value
    } else {
        0
    };
    let digits = format!("{value:o}");
    let width = field.len() - 1;
    let s = if digits.len() < width {
        format!("{}{digits}", "0".repeat(width - digits.len()))
    } else {
        digits
    };
    format_string(field, s.as_bytes());
}

fn fits_octal(len: usize, value: u64) -> bool {
    let digits = (len - 1) as u32;
    value < 1u64 << (3 * digits).min(63)
}

/// Go's `splitUSTARPath`: a long ASCII name cut at the last `/` that leaves a prefix of at most
/// 155 bytes and a name of at most 100.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME_LEN || !name.is_ascii() {
        return None;
    } else if length > PREFIX_LEN + 1 {
        length = PREFIX_LEN + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&b| b == b'/')?;
    let suffix = name.len() - i - 1;
    if i == 0 || suffix > NAME_LEN || suffix == 0 || i > PREFIX_LEN {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// One PAX record: its length (counting itself), `key=value`, a newline.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut size = body + body.to_string().len();
    if size.to_string().len() + body > size {
        size += 1;
    }
    let mut record = format!("{size} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Go's `toASCII`: the bytes below 0x80, in order (a multi-byte character disappears).
fn ascii_only(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(u8::is_ascii).collect()
}

/// Go's `path.Clean` for the PAX header's name (`path.Join` cleans what it joins).
pub(super) fn clean(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [&b"/"[..], &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pax_record_counts_its_own_length() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        // 9 bytes of body need one digit, which makes ten: two digits.
        let long = vec![b'a'; 93];
        let r = pax_record("path", &long);
        assert_eq!(r.len().to_string().as_bytes(), &r[..3]);
    }

    #[test]
    fn names_are_split_where_go_splits_them() {
        let name = format!("/nix/store/{}/{}", "a".repeat(60), "b".repeat(60));
        let (prefix, rest) = split_ustar_path(name.as_bytes()).unwrap();
        assert_eq!(rest, "b".repeat(60).as_bytes());
        assert_eq!(prefix.len(), name.len() - 61);
        assert!(split_ustar_path(format!("/{}", "c".repeat(120)).as_bytes()).is_none());
    }

    #[test]
    fn paths_are_cleaned_as_go_cleans_them() {
        for (input, want) in [
            ("/a//b/./c/..", "/a/b"),
            ("a/../..", ".."),
            ("/../x", "/x"),
            ("", "."),
            ("/", "/"),
        ] {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "{input}");
        }
    }

    #[test]
    fn octal_fields_are_padded_and_nul_ended() {
        let mut field = [0xffu8; 8];
        format_octal(&mut field, 0o755);
        assert_eq!(&field, b"0000755\0");
        let mut field = [0u8; 8];
        format_octal(&mut field, 1 << 21);
        assert_eq!(&field, b"0000000\0");
    }
}
