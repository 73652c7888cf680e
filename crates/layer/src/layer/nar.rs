//! Reading a NAR (Nix's archive format) as it streams: its entries handed to a visitor in the
//! order the NAR lists them, and the copies a binary cache needs (one member; a dockerTools
//! customisation layer's tar and checksum). `nar_tar.rs` writes a store path's layer entries
//! from it.
//!
//! Written here rather than taken from a crate: the NAR crates on crates.io read names as UTF-8,
//! while a store path may hold any bytes but `/` and NUL in a name (the tar writer keeps them).
//! Names are checked as Nix checks them (not empty, `.` or `..`, no `/` or NUL, strictly
//! increasing), so no entry can land outside its store path.

use std::io::{self, Read, Write};

/// Longest token the format allows here: symlink targets are at most `PATH_MAX`.
const MAX_STRING: u64 = 4096;
/// Longest name of a directory entry: Linux's `NAME_MAX`, so Nix (which unpacks NARs on such
/// file systems) and every container runtime (which unpacks layers there) could create it.
const MAX_NAME: usize = 255;
/// Deepest directory nesting accepted (a path is at most `PATH_MAX` bytes).
const MAX_DEPTH: usize = 2048;

/// What a NAR holds at one place, as the parser meets it.
pub enum NarEntry<'a> {
    Directory,
    Symlink {
        target: &'a [u8],
    },
    /// A regular file: its content must be read from `content` (what is not read is skipped).
    File {
        executable: bool,
        size: u64,
        content: &'a mut dyn Read,
    },
}

/// Receives each entry with its path below the NAR's root (empty for the root).
pub trait NarVisitor {
    fn entry(&mut self, path: &[u8], entry: NarEntry<'_>) -> io::Result<()>;
}

/// Reads a whole NAR from `reader`, handing each entry to `visit`, then checks that nothing
/// follows it (reading on to the end is what lets a checking reader compare the hash).
pub fn read_nar(reader: impl Read, visit: &mut dyn NarVisitor) -> io::Result<()> {
    let mut nar = Tokens { inner: reader };
    nar.expect(b"nix-archive-1")?;
    let mut path = Vec::new();
    nar.node(&mut path, 0, visit)?;
    nar.nothing_after()
}

/// Copies the content of the regular file `member` (a name directly below the NAR's root
/// directory) into `out`, reading the whole NAR.
pub fn copy_nar_member<W: Write>(nar: impl Read, member: &[u8], out: &mut W) -> io::Result<()> {
    struct Copy<'o, W> {
        member: &'o [u8],
        out: &'o mut W,
        found: bool,
    }
    impl<W: Write> NarVisitor for Copy<'_, W> {
        fn entry(&mut self, path: &[u8], entry: NarEntry<'_>) -> io::Result<()> {
            if path != self.member {
                return Ok(());
            }
            if let NarEntry::File { content, .. } = entry {
                io::copy(content, self.out)?;
                self.found = true;
            }
            Ok(())
        }
    }
    let mut copy = Copy {
        member,
        out,
        found: false,
    };
    read_nar(nar, &mut copy)?;
    if copy.found {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the NAR has no file {:?}", String::from_utf8_lossy(member)),
        ))
    }
}

/// Largest `checksum` file of a customisation layer read (64 hex digits and a newline).
const MAX_CHECKSUM: u64 = 1024;

/// Copies the `layer.tar` of a dockerTools customisation layer's NAR into `out`, and returns
/// the content of its `checksum` file, reading the whole NAR.
pub fn copy_customisation_layer<W: Write>(nar: impl Read, out: &mut W) -> io::Result<Vec<u8>> {
    struct Layer<'o, W> {
        out: &'o mut W,
        tar: bool,
        checksum: Option<Vec<u8>>,
    }
    impl<W: Write> NarVisitor for Layer<'_, W> {
        fn entry(&mut self, path: &[u8], entry: NarEntry<'_>) -> io::Result<()> {
            let NarEntry::File { content, size, .. } = entry else {
                return Ok(());
            };
            match path {
                b"layer.tar" => {
                    io::copy(content, self.out)?;
                    self.tar = true;
                }
                b"checksum" if size <= MAX_CHECKSUM => {
                    let mut text = Vec::new();
                    content.read_to_end(&mut text)?;
                    self.checksum = Some(text);
                }
                _ => {}
            }
            Ok(())
        }
    }
    let mut layer = Layer {
        out,
        tar: false,
        checksum: None,
    };
    read_nar(nar, &mut layer)?;
    match (layer.tar, layer.checksum) {
        (true, Some(checksum)) => Ok(checksum),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "it is not a customisation layer: it has no layer.tar and checksum",
        )),
    }
}

pub(super) fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a valid NAR: {what}"),
    )
}

/// The NAR's tokens: each a little-endian u64 length, the bytes, zeros up to a multiple of 8.
pub(super) struct Tokens<R> {
    pub(super) inner: R,
}

impl<R: Read> Tokens<R> {
    /// Checks that the archive has ended: nothing follows its last token.
    pub(super) fn nothing_after(&mut self) -> io::Result<()> {
        let mut extra = [0u8; 1];
        loop {
            match self.inner.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(invalid("data after the end of the archive")),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub(super) fn padding(&mut self, len: u64) -> io::Result<()> {
        let pad = (8 - len % 8) % 8;
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b[..pad as usize])?;
        if b.iter().any(|&x| x != 0) {
            return Err(invalid("non-zero padding"));
        }
        Ok(())
    }

    pub(super) fn string(&mut self) -> io::Result<Vec<u8>> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(invalid("a name or token is too long"));
        }
        let mut s = vec![0u8; len as usize];
        self.inner.read_exact(&mut s)?;
        self.padding(len)?;
        Ok(s)
    }

    pub(super) fn expect(&mut self, token: &[u8]) -> io::Result<()> {
        let s = self.string()?;
        if s == token {
            Ok(())
        } else {
            Err(invalid(&format!(
                "expected {:?}, found {:?}",
                String::from_utf8_lossy(token),
                String::from_utf8_lossy(&s)
            )))
        }
    }

    /// One node at `path`, handed to `visit`, with everything below it.
    fn node(
        &mut self,
        path: &mut Vec<u8>,
        depth: usize,
        visit: &mut dyn NarVisitor,
    ) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(invalid("directories nested too deep"));
        }
        self.expect(b"(")?;
        self.expect(b"type")?;
        match self.string()?.as_slice() {
            b"regular" => {
                let mut token = self.string()?;
                let executable = token == b"executable";
                if executable {
                    self.expect(b"")?;
                    token = self.string()?;
                }
                if token != b"contents" {
                    return Err(invalid("a regular file without contents"));
                }
                let size = self.u64()?;
                let mut content = (&mut self.inner).take(size);
                visit.entry(
                    path,
                    NarEntry::File {
                        executable,
                        size,
                        content: &mut content,
                    },
                )?;
                // What the visitor did not read is skipped.
                io::copy(&mut content, &mut io::sink())?;
                if content.limit() != 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.padding(size)?;
            }
            b"symlink" => {
                self.expect(b"target")?;
                let target = self.string()?;
                if target.is_empty() || target.contains(&0) {
                    return Err(invalid("an empty symlink target"));
                }
                visit.entry(path, NarEntry::Symlink { target: &target })?;
            }
            b"directory" => {
                visit.entry(path, NarEntry::Directory)?;
                let mut previous: Option<Vec<u8>> = None;
                loop {
                    match self.string()?.as_slice() {
                        b")" => return Ok(()),
                        b"entry" => {}
                        _ => return Err(invalid("expected a directory entry")),
                    }
                    self.expect(b"(")?;
                    self.expect(b"name")?;
                    let name = self.string()?;
                    if name.is_empty()
                        || name == b"."
                        || name == b".."
                        || name.contains(&b'/')
                        || name.contains(&0)
                    {
                        return Err(invalid("a directory entry with a forbidden name"));
                    }
                    if name.len() > MAX_NAME {
                        return Err(name_too_long(path, &name));
                    }
                    if previous.as_ref().is_some_and(|p| *p >= name) {
                        return Err(invalid("directory entries out of order"));
                    }
                    self.expect(b"node")?;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(&name);
                    self.node(path, depth + 1, visit)?;
                    path.truncate(len);
                    self.expect(b")")?;
                    previous = Some(name);
                }
            }
            _ => return Err(invalid("an unknown node type")),
        }
        self.expect(b")")
    }
}

/// The error of an entry whose name is longer than [`MAX_NAME`], naming where it is (the
/// start of the name, which may be thousands of bytes).
fn name_too_long(parent: &[u8], name: &[u8]) -> io::Error {
    const SHOWN: usize = 40;
    let mut shown = String::from_utf8_lossy(parent).into_owned();
    if !shown.is_empty() {
        shown.push('/');
    }
    shown.push_str(&String::from_utf8_lossy(&name[..SHOWN.min(name.len())]));
    invalid(&format!(
        "the entry {shown:?}... has a name of {} bytes; Linux allows {MAX_NAME}",
        name.len()
    ))
}

/// Appends a NAR token to `out` (for the tests that write NARs).
#[cfg(test)]
pub(super) fn nar_token(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
    out.resize(out.len().next_multiple_of(8), 0);
}

/// The NAR of a store path that is one regular file holding `content` (for the tests).
#[cfg(test)]
pub(super) fn regular_file_nar(content: &[u8]) -> Vec<u8> {
    let mut nar = Vec::new();
    for token in [
        &b"nix-archive-1"[..],
        b"(",
        b"type",
        b"regular",
        b"contents",
        content,
        b")",
    ] {
        nar_token(&mut nar, token);
    }
    nar
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::nar_token as t;

    fn file_nar(names: &[&[u8]]) -> Vec<u8> {
        let mut n = Vec::new();
        for s in [&b"nix-archive-1"[..], b"(", b"type", b"directory"] {
            t(&mut n, s);
        }
        for name in names {
            for s in [&b"entry"[..], b"(", b"name", name, b"node", b"(", b"type"] {
                t(&mut n, s);
            }
            for s in [&b"regular"[..], b"contents", b"hello", b")", b")"] {
                t(&mut n, s);
            }
        }
        t(&mut n, b")");
        n
    }

    struct Names(Vec<Vec<u8>>);
    impl NarVisitor for Names {
        fn entry(&mut self, path: &[u8], _: NarEntry<'_>) -> io::Result<()> {
            self.0.push(path.to_vec());
            Ok(())
        }
    }

    #[test]
    fn names_are_read_as_bytes_in_order() {
        let mut names = Names(Vec::new());
        read_nar(&file_nar(&[b"a", b"b\xff"])[..], &mut names).unwrap();
        assert_eq!(names.0, [&b""[..], b"a", b"b\xff"]);
    }

    #[test]
    fn names_that_would_escape_or_repeat_are_refused() {
        for bad in [
            &[&b".."[..]][..],
            &[b"a/b"],
            &[b""],
            &[b"b", b"a"],
            &[b"a", b"a"],
        ] {
            let e = read_nar(&file_nar(bad)[..], &mut Names(Vec::new())).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
        }
    }

    #[test]
    fn names_over_255_bytes_are_refused_naming_the_entry() {
        let longest = vec![b'n'; 255];
        let mut names = Names(Vec::new());
        read_nar(&file_nar(&[&longest])[..], &mut names).unwrap();
        assert_eq!(names.0[1], longest);
        for len in [256, 4095] {
            let long = vec![b'l'; len];
            let e = read_nar(&file_nar(&[b"a", &long])[..], &mut Names(Vec::new())).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let line = e.to_string();
            assert!(line.contains(&format!("{len} bytes")), "{line}");
            assert!(line.contains("lllllllll") && line.contains("255"), "{line}");
            assert!(line.len() < 200, "{line}");
        }
    }

    #[test]
    fn a_cut_or_extended_nar_is_refused() {
        let nar = file_nar(&[b"a"]);
        assert!(read_nar(&nar[..nar.len() - 8], &mut Names(Vec::new())).is_err());
        let mut longer = nar.clone();
        longer.push(0);
        assert!(read_nar(&longer[..], &mut Names(Vec::new())).is_err());
    }

    #[test]
    fn a_member_is_copied_out() {
        let mut out = Vec::new();
        copy_nar_member(&file_nar(&[b"a", b"layer.tar"])[..], b"layer.tar", &mut out).unwrap();
        assert_eq!(out, b"hello");
        let e = copy_nar_member(&file_nar(&[b"a"])[..], b"layer.tar", &mut Vec::new());
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
