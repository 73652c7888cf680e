//! A NAR's SHA-256 in each of the spellings Nix uses: `sha256-<base64>` (SRI, what `nix
//! path-info --json` prints since Nix 2.4), `sha256:<base-32>` (narinfo files, signatures, older
//! Nix) and `sha256:<hex>`. Layer keys and the SBOM read one value whichever spelling a source
//! gave, so a path read from a binary cache keys its layer exactly as the local store does.

use std::fmt;

use base64::Engine as _;

/// The SHA-256 of a store path's NAR serialisation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NarHash([u8; 32]);

impl NarHash {
    /// Reads any of the spellings above; `None` for another algorithm or a malformed value.
    pub fn parse(s: &str) -> Option<NarHash> {
        let bytes = if let Some(b64) = s.strip_prefix("sha256-") {
            base64::engine::general_purpose::STANDARD.decode(b64).ok()?
        } else {
            let rest = s.strip_prefix("sha256:")?;
            match rest.len() {
                64 => hex::decode(rest).ok()?,
                52 => nix_base32::from_nix_base32(rest)?,
                _ => return None,
            }
        };
        Some(NarHash(bytes.try_into().ok()?))
    }

    /// The hash of `bytes` (a NAR read in full).
    pub fn from_bytes(bytes: [u8; 32]) -> NarHash {
        NarHash(bytes)
    }

    /// `sha256-<base64>`: the spelling the local store's metadata uses, so layer keys do not
    /// depend on where a path was read from.
    pub fn sri(&self) -> String {
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }

    /// `sha256:<base-32>`: the spelling of narinfo files and of what their signatures sign.
    pub fn nix_base32(&self) -> String {
        format!("sha256:{}", nix_base32::to_nix_base32(&self.0))
    }

    /// Lowercase hex, as SBOM checksums are written.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sri())
    }
}

impl fmt::Display for NarHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_nix_prints_is_one_hash() {
        // The same NAR as `nix path-info --json` (SRI) and its narinfo (base-32) name it,
        // checked with `nix hash to-base32` / `nix hash to-sri` of Nix 2.8.
        let sri = "sha256-HQSV/PgXO9v7Qj5uQt71RduDHcAQxi0aEJPTEw2BpFQ=";
        let a = NarHash::parse(sri).unwrap();
        let b = NarHash::parse(&a.nix_base32()).unwrap();
        let c = NarHash::parse(&format!("sha256:{}", a.hex())).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.sri(), sri);
        assert_eq!(
            a.nix_base32(),
            "sha256:0m54h46i7lwk20d2vihhq0fq7ns5ypg44viy8bxxnfqpz3y9a10x"
        );
        assert_eq!(NarHash::parse("md5:abc"), None);
        assert_eq!(NarHash::parse("sha256:zz"), None);
    }
}
