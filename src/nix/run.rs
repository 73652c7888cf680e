//! Running one `nix` command: its stdout is captured (JSON for nixpush), its stderr goes straight
//! to the user's terminal so build logs and nix's own errors appear as nix prints them.

use std::process::Stdio;

use tokio::process::Command;

use super::NixError;

/// The program to run; `NIXPUSH_NIX` lets tests and wrappers point elsewhere.
fn nix_program() -> std::ffi::OsString {
    std::env::var_os("NIXPUSH_NIX").unwrap_or_else(|| "nix".into())
}

/// Runs `nix ARGS...` and returns its stdout, or the reason it failed.
pub async fn nix_stdout(args: &[&str]) -> Result<Vec<u8>, NixError> {
    let command = args.first().copied().unwrap_or_default().to_owned();
    let output = Command::new(nix_program())
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
