//! A `.narinfo`: what a binary cache says of one store path (its NAR's URL, compression, hash
//! and size, its references) and who signed that.
//!
//! Parsed here rather than with the `narinfo` crate: that one refuses any key it does not know
//! (`CA`, which Nix writes for content-addressed paths, among them), where Nix ignores them.

use std::path::PathBuf;

use base64::Engine as _;

use crate::nix::{check_store_path, NarHash, STORE_DIR};

/// How a NAR is compressed in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NarCompression {
    None,
    Xz,
    Bzip2,
    Zstd,
    Gzip,
}

/// One `.narinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NarInfo {
    pub store_path: PathBuf,
    /// The NAR's location, relative to the cache's root.
    pub url: String,
    pub compression: NarCompression,
    pub nar_hash: NarHash,
    pub nar_size: u64,
    /// Full store paths, sorted; may include the path itself.
    pub references: Vec<PathBuf>,
    /// The derivation's system, when the cache says (most do not).
    pub system: Option<String>,
    /// `(key name, signature)` pairs.
    pub sigs: Vec<(String, Vec<u8>)>,
}

impl NarInfo {
    /// Parses a narinfo's text; the error says which line or field is wrong.
    pub fn parse(text: &str) -> Result<NarInfo, String> {
        let mut store_path = None;
        let mut url = None;
        let mut compression = None;
        let mut nar_hash = None;
        let mut nar_size = None;
        let mut references = Vec::new();
        let mut system = None;
        let mut sigs = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| format!("a line without a key: {line:?}"))?;
            let value = value.trim();
            match key {
                "StorePath" => {
                    store_path = Some(check_store_path(value).map_err(|e| e.to_string())?)
                }
                "URL" => url = Some(value.to_owned()),
                "Compression" => {
                    compression = Some(match value {
                        "none" | "" => NarCompression::None,
                        "xz" => NarCompression::Xz,
                        "bzip2" => NarCompression::Bzip2,
                        "zstd" => NarCompression::Zstd,
                        "gzip" => NarCompression::Gzip,
                        other => return Err(format!("NARs compressed with {other:?} cannot be read (xz, zstd, bzip2, gzip and none can)")),
                    })
                }
                "NarHash" => {
                    nar_hash = Some(
                        NarHash::parse(value)
                            .ok_or_else(|| format!("NarHash {value:?} is not a sha256"))?,
                    )
                }
                "NarSize" => {
                    nar_size = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| format!("NarSize {value:?} is not a number"))?,
                    )
                }
                "References" => {
                    for r in value.split(' ').filter(|r| !r.is_empty()) {
                        references.push(
                            check_store_path(&format!("{STORE_DIR}/{r}"))
                                .map_err(|e| e.to_string())?,
                        );
                    }
                }
                "System" => system = Some(value.to_owned()),
                "Sig" => {
                    let (name, sig) = value
                        .split_once(':')
                        .ok_or_else(|| format!("Sig {value:?} names no key"))?;
                    let sig = base64::engine::general_purpose::STANDARD
                        .decode(sig)
                        .map_err(|_| format!("Sig {value:?} is not base64"))?;
                    sigs.push((name.to_owned(), sig));
                }
                // FileHash, FileSize, Deriver, CA and what later Nix adds: not needed.
                _ => {}
            }
        }
        let missing = |field: &str| format!("it has no {field}");
        references.sort();
        references.dedup();
        Ok(NarInfo {
            store_path: store_path.ok_or_else(|| missing("StorePath"))?,
            url: url.ok_or_else(|| missing("URL"))?,
            // Nix's own default for a narinfo that does not say.
            compression: compression.unwrap_or(NarCompression::Bzip2),
            nar_hash: nar_hash.ok_or_else(|| missing("NarHash"))?,
            nar_size: nar_size.ok_or_else(|| missing("NarSize"))?,
            references,
            system,
            sigs,
        })
    }

    /// What a signature signs: `1;<path>;<sha256:base-32 NAR hash>;<NAR size>;<references,
    /// comma-separated full paths>`, as Nix computes it.
    pub fn fingerprint(&self) -> String {
        let refs: Vec<String> = self
            .references
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        format!(
            "1;{};{};{};{}",
            self.store_path.display(),
            self.nar_hash.nix_base32(),
            self.nar_size,
            refs.join(",")
        )
    }

    /// The references other than the path itself.
    pub fn others(&self) -> impl Iterator<Item = &PathBuf> {
        self.references.iter().filter(|r| **r != self.store_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `nix copy --to file://...?secret-key=...` (Nix 2.8) for the edge fixture's
    /// chain-b.
    const CHAIN_B: &str = "StorePath: /nix/store/fxlacw53k5d503916v8lf8zjb5c5kdm7-chain-b
URL: nar/1mnxg5agdag1lnayn8avrd2b466a2wl0md9avxbqhv4hn2iia7ql.nar.xz
Compression: xz
FileHash: sha256:1mnxg5agdag1lnayn8avrd2b466a2wl0md9avxbqhv4hn2iia7ql
FileSize: 212
NarHash: sha256:1mpg4j6fpnwsln9vn2c2dbd8396k46l6kv0vvlzd0z4h16sryd2y
NarSize: 336
References: rwxnkgmpgirpm20jj10i9h15p3lba116-chain-a
Deriver: vwf69xwkj52gq42aj784cicar6iipm51-chain-b.drv
Sig: test-1:qT2vxig97ygF6GfPPg0LWRdXjJXvPziru/cE/X8OJSigpO5uSqFoG4R9+iM+6k/OrrOcRKbIfYWhL1e83OpnDg==
CA: fixed:r:sha256:1mpg4j6fpnwsln9vn2c2dbd8396k46l6kv0vvlzd0z4h16sryd2y
";

    #[test]
    fn reads_what_nix_copy_writes() {
        let info = NarInfo::parse(CHAIN_B).unwrap();
        assert_eq!(
            info.store_path,
            PathBuf::from("/nix/store/fxlacw53k5d503916v8lf8zjb5c5kdm7-chain-b")
        );
        assert_eq!(info.compression, NarCompression::Xz);
        assert_eq!(info.nar_size, 336);
        assert_eq!(
            info.references,
            [PathBuf::from(
                "/nix/store/rwxnkgmpgirpm20jj10i9h15p3lba116-chain-a"
            )]
        );
        assert_eq!(info.sigs[0].0, "test-1");
        assert_eq!(info.sigs[0].1.len(), 64);
        assert_eq!(
            info.fingerprint(),
            "1;/nix/store/fxlacw53k5d503916v8lf8zjb5c5kdm7-chain-b;sha256:1mpg4j6fpnwsln9vn2c2dbd8396k46l6kv0vvlzd0z4h16sryd2y;336;/nix/store/rwxnkgmpgirpm20jj10i9h15p3lba116-chain-a"
        );
    }

    #[test]
    fn a_narinfo_without_compression_is_bzip2_and_bad_fields_are_named() {
        let text = CHAIN_B.replace("Compression: xz\n", "");
        assert_eq!(
            NarInfo::parse(&text).unwrap().compression,
            NarCompression::Bzip2
        );
        let e = NarInfo::parse(&CHAIN_B.replace("NarSize: 336", "NarSize: x")).unwrap_err();
        assert!(e.contains("NarSize"), "{e}");
        let e = NarInfo::parse(&CHAIN_B.replace("Compression: xz", "Compression: br")).unwrap_err();
        assert!(e.contains("br"), "{e}");
        let e = NarInfo::parse(&CHAIN_B.replace("StorePath", "Path")).unwrap_err();
        assert!(e.contains("StorePath"), "{e}");
    }
}
