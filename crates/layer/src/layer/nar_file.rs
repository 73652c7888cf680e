//! The content of a store path that is one regular file (an image archive Nix built), read
//! straight out of its NAR as a stream: the NAR's few header tokens are parsed, then the
//! file's bytes are handed on as they come. Whoever reads to the end also reads the NAR's end,
//! so a checking reader below (`binary_cache::checked_nar`) compares the hash; whoever stops
//! early (one layer of an archive) has read only up to what it needed.

use std::io::{self, Read};

use super::nar::{invalid, Tokens};

/// The file's content, as a reader over its NAR.
pub struct NarFile<R> {
    nar: Tokens<R>,
    size: u64,
    left: u64,
    ended: bool,
}

/// The single file the NAR `nar` holds, or `None` when its root is a directory or a symlink.
pub fn open_nar_file<R: Read>(nar: R) -> io::Result<Option<NarFile<R>>> {
    let mut nar = Tokens { inner: nar };
    nar.expect(b"nix-archive-1")?;
    nar.expect(b"(")?;
    nar.expect(b"type")?;
    if nar.string()? != b"regular" {
        return Ok(None);
    }
    let mut token = nar.string()?;
    if token == b"executable" {
        nar.expect(b"")?;
        token = nar.string()?;
    }
    if token != b"contents" {
        return Err(invalid("a regular file without contents"));
    }
    let size = nar.u64()?;
    Ok(Some(NarFile {
        nar,
        size,
        left: size,
        ended: false,
    }))
}

impl<R: Read> NarFile<R> {
    /// After the content: its padding, the closing token, then nothing.
    fn end(&mut self) -> io::Result<()> {
        self.nar.padding(self.size)?;
        self.nar.expect(b")")?;
        self.nar.nothing_after()
    }
}

impl<R: Read> Read for NarFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if !self.ended {
                self.end()?;
                self.ended = true;
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.nar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::layer::nar::{nar_token as token, regular_file_nar as file_nar};

    fn nar_of(tokens: &[&[u8]]) -> Vec<u8> {
        let mut nar = Vec::new();
        for t in tokens {
            token(&mut nar, t);
        }
        nar
    }

    /// Counts what was read from below.
    struct Counted<'a>(&'a [u8], usize);
    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn the_content_is_read_out_and_the_end_checked() {
        let nar = file_nar(b"archive bytes");
        let mut file = open_nar_file(&nar[..]).unwrap().unwrap();
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"archive bytes");

        let mut longer = nar.clone();
        longer.extend_from_slice(&[0; 8]);
        let mut out = Vec::new();
        let e = open_nar_file(&longer[..])
            .unwrap()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let cut = &nar[..nar.len() - 16];
        let e = open_nar_file(cut)
            .unwrap()
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_executable_file_is_a_file_and_a_directory_is_none() {
        let nar = nar_of(&[
            b"nix-archive-1",
            b"(",
            b"type",
            b"regular",
            b"executable",
            b"",
            b"contents",
            b"x",
            b")",
        ]);
        let mut out = Vec::new();
        open_nar_file(&nar[..])
            .unwrap()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"x");
        let dir = nar_of(&[b"nix-archive-1", b"(", b"type", b"directory", b")"]);
        assert!(open_nar_file(&dir[..]).unwrap().is_none());
    }

    #[test]
    fn a_reader_that_stops_early_reads_no_further() {
        let content = vec![7u8; 100_000];
        let nar = file_nar(&content);
        let mut counted = Counted(&nar, 0);
        {
            let mut file = open_nar_file(&mut counted).unwrap().unwrap();
            let mut first = [0u8; 1000];
            file.read_exact(&mut first).unwrap();
        }
        assert!(
            counted.1 < 2000,
            "read {} bytes for the first 1000",
            counted.1
        );
    }
}
