//! A key's passphrase: held only as long as the key is read, wiped when dropped, and never shown
//! (`Debug` says only that there is one).

use zeroize::Zeroizing;

/// The passphrase of an encrypted private key.
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Passphrase {
        Passphrase(Zeroizing::new(bytes.into()))
    }

    /// A passphrase read from a file: its first line, as skopeo and podman read
    /// `--sign-passphrase-file` (the line end is not part of it).
    pub fn from_file_contents(contents: &[u8]) -> Passphrase {
        let line = contents.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Passphrase::new(line.to_vec())
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_its_first_line_and_debug_hides_it() {
        let p = Passphrase::from_file_contents(b"hunter2\r\nsecond line\n");
        assert_eq!(p.bytes(), b"hunter2");
        assert_eq!(Passphrase::from_file_contents(b"").bytes(), b"");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
