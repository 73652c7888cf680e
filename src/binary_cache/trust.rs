//! Which narinfos are trusted: those signed by one of the keys the user trusts, as Nix checks
//! them (ed25519 over the narinfo's fingerprint). Keys are written as Nix writes them,
//! `NAME:BASE64` (what `nix key convert-secret-to-public` prints). The check is ring's ed25519,
//! the crypto provider rustls already uses: one implementation of the curve in the build.

use std::fmt;

use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519};

use super::narinfo::NarInfo;

/// The public keys narinfos may be signed with.
#[derive(Clone, Default)]
pub struct TrustedKeys(Vec<(String, [u8; ED25519_KEY_LEN])>);

/// A key that is not `NAME:BASE64` of 32 bytes. Neither its `Display` nor its `Debug` shows
/// the key's bytes: what was given may be a secret key, or another secret pasted by mistake.
#[derive(Debug, thiserror::Error)]
#[error("the trusted public key{} {}", shown_name(.name), .kind)]
pub struct BadKey {
    /// The key's name (before `:`), when it reads as a key name.
    name: Option<String>,
    kind: BadKeyKind,
}

/// What is wrong with a trusted public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadKeyKind {
    #[error("looks like a secret key (what `nix key generate-secret` writes, never to be shown or shared): give its public half, as `nix key convert-secret-to-public` prints it")]
    Secret,
    #[error("is not NAME:KEY with a base64 ed25519 public key (what `nix key convert-secret-to-public` prints)")]
    Malformed,
}

impl BadKey {
    pub fn kind(&self) -> BadKeyKind {
        self.kind
    }
}

/// Longest key name shown in a message.
const MAX_SHOWN_NAME: usize = 64;

fn shown_name(name: &Option<String>) -> String {
    match name {
        Some(n) => format!(" named {n:?}"),
        None => String::new(),
    }
}

/// `name` if it reads as a key name (`cache.example.org-1`): short, printable, no spaces.
fn key_name(name: &str) -> Option<String> {
    let plausible = !name.is_empty()
        && name.len() <= MAX_SHOWN_NAME
        && name.bytes().all(|b| b.is_ascii_graphic());
    plausible.then(|| name.to_owned())
}

/// Length of an ed25519 secret key as Nix writes it (the seed, then the public key).
const SECRET_KEY_LEN: usize = 64;

/// Length of an ed25519 public key.
const ED25519_KEY_LEN: usize = 32;

impl TrustedKeys {
    /// Reads keys as Nix writes them.
    pub fn parse<S: AsRef<str>>(keys: &[S]) -> Result<TrustedKeys, BadKey> {
        keys.iter()
            .map(|k| {
                let k = k.as_ref().trim();
                let (name, b64) = k.split_once(':').unwrap_or(("", k));
                let bad = || BadKey {
                    name: key_name(name),
                    kind: BadKeyKind::Malformed,
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| bad())?;
                if bytes.len() == SECRET_KEY_LEN {
                    return Err(BadKey {
                        name: key_name(name),
                        kind: BadKeyKind::Secret,
                    });
                }
                let key: [u8; ED25519_KEY_LEN] = bytes.try_into().map_err(|_| bad())?;
                if name.is_empty() {
                    return Err(bad());
                }
                Ok((name.to_owned(), key))
            })
            .collect::<Result<_, _>>()
            .map(TrustedKeys)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `info` carries a good signature by a trusted key; if not, why not.
    pub fn check(&self, info: &NarInfo) -> Result<(), SignatureProblem> {
        if info.sigs.is_empty() {
            return Err(SignatureProblem::Unsigned);
        }
        let fingerprint = info.fingerprint();
        let mut bad = None;
        for (name, sig) in &info.sigs {
            for (_, key) in self.0.iter().filter(|(k, _)| k == name) {
                let good = UnparsedPublicKey::new(&ED25519, key)
                    .verify(fingerprint.as_bytes(), sig)
                    .is_ok();
                if good {
                    return Ok(());
                }
                bad = Some(name.clone());
            }
        }
        Err(match bad {
            Some(key) => SignatureProblem::Bad { key },
            None => SignatureProblem::UnknownKeys {
                keys: info.sigs.iter().map(|(n, _)| n.clone()).collect(),
            },
        })
    }
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// Why a narinfo is not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureProblem {
    /// It carries no signature at all.
    Unsigned,
    /// It is signed, but by none of the trusted keys.
    UnknownKeys { keys: Vec<String> },
    /// A trusted key's signature does not match what it signs.
    Bad { key: String },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::Unsigned => {
                f.write_str("it has no signature (pass --no-check-sigs to accept unsigned paths)")
            }
            SignatureProblem::UnknownKeys { keys } => write!(
                f,
                "its signature is by {}, which is not a trusted key (--trusted-public-key)",
                keys.join(", ")
            ),
            SignatureProblem::Bad { key } => {
                write!(f, "its signature by {key} does not match its contents")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key pair from `nix key generate-secret --key-name test-1` and the narinfo `nix copy`
    /// signed with it (Nix 2.8).
    const KEY: &str = "test-1:HKu2UAMVs1qq/c+prxcOr3ebos3qj3rF2nCQ4hgxQIM=";
    const NARINFO: &str = "StorePath: /nix/store/fxlacw53k5d503916v8lf8zjb5c5kdm7-chain-b
URL: nar/1mnxg5agdag1lnayn8avrd2b466a2wl0md9avxbqhv4hn2iia7ql.nar.xz
Compression: xz
NarHash: sha256:1mpg4j6fpnwsln9vn2c2dbd8396k46l6kv0vvlzd0z4h16sryd2y
NarSize: 336
References: rwxnkgmpgirpm20jj10i9h15p3lba116-chain-a
Sig: test-1:qT2vxig97ygF6GfPPg0LWRdXjJXvPziru/cE/X8OJSigpO5uSqFoG4R9+iM+6k/OrrOcRKbIfYWhL1e83OpnDg==
";

    #[test]
    fn nix_signatures_verify_and_any_change_breaks_them() {
        let keys = TrustedKeys::parse(&[KEY]).unwrap();
        let info = NarInfo::parse(NARINFO).unwrap();
        assert_eq!(keys.check(&info), Ok(()));

        let changed = NarInfo::parse(&NARINFO.replace("NarSize: 336", "NarSize: 337")).unwrap();
        assert_eq!(
            keys.check(&changed),
            Err(SignatureProblem::Bad {
                key: "test-1".into()
            })
        );
        let unsigned = NarInfo {
            sigs: vec![],
            ..info.clone()
        };
        assert_eq!(keys.check(&unsigned), Err(SignatureProblem::Unsigned));
        let other =
            TrustedKeys::parse(&["other-1:HKu2UAMVs1qq/c+prxcOr3ebos3qj3rF2nCQ4hgxQIM="]).unwrap();
        assert_eq!(
            other.check(&info),
            Err(SignatureProblem::UnknownKeys {
                keys: vec!["test-1".into()]
            })
        );
    }

    /// What `nix key generate-secret --key-name test-2` printed (Nix 2.8).
    const SECRET: &str = "test-2:6VbjJPbXkx+6Y06SuXAM6OLUK8kwKtlXK3A5N2igsqvDNsJ0/coMhXexMm4tsNdzEte8JwagZ4owrFMPUpathg==";

    #[test]
    fn malformed_keys_are_refused_and_never_printed_as_bytes() {
        for bad in [
            "test-1",
            "test-1:abc",
            ":HKu2UAMVs1qq/c+prxcOr3ebos3qj3rF2nCQ4hgxQIM=",
            "HKu2UAMVs1qq/c+prxcOr3ebos3qj3rF2nCQ4hgxQIM=",
        ] {
            let e = TrustedKeys::parse(&[bad]).unwrap_err();
            assert_eq!(e.kind(), BadKeyKind::Malformed, "{bad}");
            for part in bad.split(':').filter(|p| p.len() > 6) {
                assert!(!format!("{e} {e:?}").contains(part), "{e}");
            }
        }
        let keys = TrustedKeys::parse(&[KEY]).unwrap();
        assert_eq!(format!("{keys:?}"), "[\"test-1\"]");
    }

    #[test]
    fn a_secret_key_is_named_as_one_and_never_shown() {
        let b64 = SECRET.split_once(':').unwrap().1;
        for given in [
            SECRET.to_owned(),
            format!("{SECRET}\n"),
            b64.to_owned(),
            format!("other:{b64}"),
        ] {
            let e = TrustedKeys::parse(&[given.as_str()]).unwrap_err();
            assert_eq!(e.kind(), BadKeyKind::Secret);
            let shown = format!("{e} {e:?}");
            assert!(shown.contains("secret key"), "{shown}");
            // Neither the whole key nor any run of it long enough to matter.
            for w in b64.as_bytes().windows(8) {
                assert!(!shown.contains(std::str::from_utf8(w).unwrap()), "{shown}");
            }
        }
        let e = TrustedKeys::parse(&[SECRET]).unwrap_err();
        assert!(e.to_string().contains("\"test-2\""), "{e}");
    }
}
