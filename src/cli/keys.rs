//! `nixpush key generate PREFIX`: a new ECDSA P-256 key pair for `--sign-key`, written as cosign
//! writes one (`PREFIX.key` encrypted in cosign's format, `PREFIX.pub` as a PKIX PEM), so cosign,
//! skopeo, podman and Kyverno take the same files.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use nixpush::signing::{KeyError, KeyPair, Passphrase};

use super::sign_args::{passphrase_file, PASSPHRASE_VAR};

/// `nixpush key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new key pair: PREFIX.key (encrypted, cosign's format, mode 0600) and PREFIX.pub.
    /// Existing files are never overwritten.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where to write: PREFIX.key and PREFIX.pub.
    #[arg(value_name = "PREFIX")]
    pub prefix: PathBuf,
    /// Encrypt the key with the first line of this file [default: NIXPUSH_SIGN_PASSPHRASE, else
    /// asked twice on the terminal].
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Runs `nixpush key ...`; what to tell the user.
pub fn key_command(args: KeyArgs) -> Result<String, KeyError> {
    let KeyCommand::Generate(args) = args.command;
    let passphrase = new_passphrase(&args)?;
    let (key, public) = KeyPair::generate(&args.prefix, &passphrase)?;
    Ok(format!(
        "wrote the private key {} and the public key {}",
        key.display(),
        public.display()
    ))
}

/// The new key's passphrase: from the file, the environment, or typed twice on a terminal.
fn new_passphrase(args: &GenerateArgs) -> Result<Passphrase, KeyError> {
    if let Some(file) = &args.passphrase_file {
        return passphrase_file(file);
    }
    if let Some(value) = std::env::var_os(PASSPHRASE_VAR) {
        return Ok(Passphrase::new(value.into_encoded_bytes()));
    }
    let no_passphrase = || KeyError::NoPassphrase {
        path: format!("{}.key", args.prefix.display()),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(no_passphrase());
    }
    let first =
        rpassword::prompt_password("Passphrase for the new key: ").map_err(|_| no_passphrase())?;
    let second =
        rpassword::prompt_password("The same passphrase again: ").map_err(|_| no_passphrase())?;
    if first != second {
        return Err(KeyError::PassphrasesDiffer);
    }
    Ok(Passphrase::new(first))
}
