//! Running `nix` and `nix-store`: stdout is captured (JSON or paths for nixpush), stderr goes
//! straight to the user's terminal so build logs and nix's own errors appear as nix prints them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::NixError;

/// The `nix` program; `NIXPUSH_NIX` lets tests and wrappers point elsewhere.
fn nix_program() -> OsString {
    std::env::var_os("NIXPUSH_NIX").unwrap_or_else(|| "nix".into())
}

/// `nix-store`, next to `NIXPUSH_NIX` when that is set.
fn nix_store_program() -> OsString {
    match std::env::var_os("NIXPUSH_NIX").map(PathBuf::from) {
        Some(nix) => nix.with_file_name("nix-store").into_os_string(),
        None => "nix-store".into(),
    }
}

/// Runs `nix ARGS...` and returns its stdout.
pub async fn nix_stdout(args: &[&str]) -> Result<Vec<u8>, NixError> {
    stdout_of(nix_program(), "nix", args).await
}

/// Runs `nix-store ARGS...` (the stable CLI, for what `nix` spells differently across versions).
pub async fn nix_store_stdout(args: &[&str]) -> Result<Vec<u8>, NixError> {
    stdout_of(nix_store_program(), "nix-store", args).await
}

async fn stdout_of(program: OsString, name: &str, args: &[&str]) -> Result<Vec<u8>, NixError> {
    let command = format!("{name} {}", args.first().copied().unwrap_or_default());
    let mut cmd = Command::new(program);
    // Even killed outright: `kill_on_drop` covers every other way out.
    crate::child::dies_with_us(cmd.as_std_mut());
    let output = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        // Not `output()`: tokio's `output()` pipes stderr whatever was set, hiding nix's log.
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => NixError::NotInstalled,
            _ => NixError::Spawn {
                command: command.clone(),
                source,
            },
        })?
        .wait_with_output()
        .await
        .map_err(|source| NixError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(NixError::Failed {
            command,
            status: output.status,
        });
    }
    Ok(output.stdout)
}
