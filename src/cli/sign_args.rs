//! The signing flags of a push (`--sign-key`, `--sign-passphrase-file`, `--provenance`) and
//! where a key's passphrase comes from: the file, else `NIXPUSH_SIGN_PASSPHRASE`, else a prompt
//! on the terminal. The key is read once, before anything is built or sent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use nixpush::signing::{KeyError, Passphrase, Signer};

/// The environment variable a passphrase may come from.
pub const PASSPHRASE_VAR: &str = "NIXPUSH_SIGN_PASSPHRASE";

#[derive(Clone, Debug, Default, Args)]
pub struct SignArgs {
    /// Sign every manifest the push writes (each platform's, the index, the SBOM's) with this
    /// ECDSA P-256 key, cosign's way (the `sha256-<digest>.sig` tag), before any tag moves. A
    /// key from `nixpush key generate`, cosign or skopeo, or an unencrypted PKCS#8 PEM.
    #[arg(long, value_name = "FILE", help_heading = "Signing")]
    pub sign_key: Option<PathBuf>,
    /// The key's passphrase is the first line of this file [default: NIXPUSH_SIGN_PASSPHRASE,
    /// else asked on the terminal].
    #[arg(
        long,
        value_name = "FILE",
        requires = "sign_key",
        help_heading = "Signing"
    )]
    pub sign_passphrase_file: Option<PathBuf>,
    /// Attach SLSA provenance (in-toto, SLSA Provenance v1) of the exact Nix inputs to each
    /// image: the installable, the flake's locked reference and inputs, every store path's NAR
    /// hash. Signed with --sign-key; without it, attached unsigned (and said so).
    #[arg(long, help_heading = "Signing")]
    pub provenance: bool,
}

impl SignArgs {
    /// The key to sign with, read now (asking for its passphrase if it is encrypted).
    pub fn signer(&self) -> Result<Option<Arc<Signer>>, KeyError> {
        let Some(path) = &self.sign_key else {
            return Ok(None);
        };
        let mut from_file = match &self.sign_passphrase_file {
            Some(file) => Some(passphrase_file(file)?),
            None => None,
        };
        let mut ask = || {
            from_file
                .take()
                .or_else(|| passphrase("Passphrase for the signing key: "))
        };
        Signer::load(path, &mut ask).map(|s| Some(Arc::new(s)))
    }
}

/// The first line of a passphrase file.
pub fn passphrase_file(file: &Path) -> Result<Passphrase, KeyError> {
    let bytes = std::fs::read(file).map_err(|e| KeyError::Unreadable {
        path: file.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    Ok(Passphrase::from_file_contents(&bytes))
}

/// A passphrase from the environment, else the terminal (`prompt`); `None` when there is no
/// way to get one.
pub fn passphrase(prompt: &str) -> Option<Passphrase> {
    if let Some(value) = std::env::var_os(PASSPHRASE_VAR) {
        return Some(Passphrase::new(value.into_encoded_bytes()));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password(prompt).ok().map(Passphrase::new);
    }
    None
}
