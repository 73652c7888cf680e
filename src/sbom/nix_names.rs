//! Nix's own ways of naming: a derivation name split into name and version as
//! `builtins.parseDrvName` does, and a `narHash` (SRI `sha256-<base64>` or the older
//! `sha256:<nix base-32>`) as lowercase hex.

/// `builtins.parseDrvName`: the version starts at the first `-` followed by a character that is
/// not a letter (`hello-2.12.1` -> `hello`, `2.12.1`; `python3.11-numpy-1.26` ->
/// `python3.11-numpy`, `1.26`); no such dash, no version.
pub fn parse_drv_name(name: &str) -> (String, Option<String>) {
    let bytes = name.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (name[..i].to_owned(), Some(name[i + 1..].to_owned()));
        }
    }
    (name.to_owned(), None)
}

/// The SHA-256 of a `narHash`, as lowercase hex; `None` for another algorithm or a malformed one.
pub fn nar_hash_hex(nar_hash: &str) -> Option<String> {
    crate::nix::NarHash::parse(nar_hash).map(|h| h.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_as_nix_does() {
        let split = |s: &str| parse_drv_name(s);
        assert_eq!(
            split("hello-2.12.1"),
            ("hello".into(), Some("2.12.1".into()))
        );
        assert_eq!(
            split("python3.11-numpy-1.26.4"),
            ("python3.11-numpy".into(), Some("1.26.4".into()))
        );
        assert_eq!(split("busybox"), ("busybox".into(), None));
        assert_eq!(
            split("app-customisation-layer"),
            ("app-customisation-layer".into(), None)
        );
        assert_eq!(
            split("glibc-2.39-52"),
            ("glibc".into(), Some("2.39-52".into()))
        );
    }

    #[test]
    fn nar_hashes_in_either_form_give_the_same_hex() {
        // `nix hash to-base32` / `to-base16` of the SRI form, by Nix 2.8.
        let hex = "d9d5746d63057f8e79b2cfe0a8f5765d1d57f113a4f973a9a0de5f6ad6766bf3";
        assert_eq!(
            nar_hash_hex("sha256-2dV0bWMFf455ss/gqPV2XR1X8ROk+XOpoN5fatZ2a/M=").unwrap(),
            hex
        );
        assert_eq!(
            nar_hash_hex("sha256:1wvbfvb6lpyyl2lp7yd42gqmf7axfvssiq6gn9wqwzq5cdnp9mfr").unwrap(),
            hex
        );
        assert_eq!(nar_hash_hex("sha512-AAAA"), None);
        assert_eq!(nar_hash_hex("sha256:not-base32!"), None);
    }
}
