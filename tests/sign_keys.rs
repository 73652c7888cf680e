//! `nixpush key generate` and where a signing key's passphrase comes from: typed on a terminal
//! (twice for a new key, under a real pseudo-terminal from util-linux's `script`), a file, the
//! environment; the key file is private (0600) and never overwritten, and the passphrase never
//! printed.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// Runs `command` (a shell line) on a pseudo-terminal, typing `lines` into it one at a time.
fn on_terminal(command: &str, lines: &[&str]) -> Run {
    require("script");
    let typed: String = lines
        .iter()
        .map(|l| format!("sleep 0.5; printf '%s\\n' '{l}'; "))
        .collect();
    let shell = format!("({typed}sleep 1) | script -qec \"{command}\" /dev/null");
    let out = Command::new("sh")
        .args(["-c", &shell])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from_output(out)
}

fn nixpush_bin() -> String {
    env!("CARGO_BIN_EXE_nixpush").to_owned()
}

#[test]
fn a_new_key_is_asked_for_twice_on_a_terminal_written_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("typed");
    let generate = format!("{} key generate {}", nixpush_bin(), prefix.display());
    let run = on_terminal(&generate, &["typed secret", "typed secret"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Passphrase for the new key"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("typed secret"),
        "the passphrase was echoed"
    );
    let key = dir.path().join("typed.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));

    // The same prefix again: refused, nothing overwritten.
    let again = Nixpush::new().run_with(
        &["key", "generate", prefix.to_str().unwrap()],
        &[("NIXPUSH_SIGN_PASSPHRASE", "other".into())],
        None,
    );
    assert_refused(&again, 2, &["typed.key", "exists already"]);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), pem);

    // Two passphrases that differ: no key.
    let differ = dir.path().join("differ");
    let run = on_terminal(
        &format!("{} key generate {}", nixpush_bin(), differ.display()),
        &["one", "two"],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stdout.contains("the passphrases typed differ"),
        "{}",
        run.stdout
    );
    assert!(!Path::new(&format!("{}.key", differ.display())).exists());

    // No terminal and no passphrase anywhere: one line, exit 2.
    let none = Nixpush::new().run(&["key", "generate", dir.path().join("n").to_str().unwrap()]);
    assert_refused(&none, 2, &["no passphrase for"]);
}

#[test]
fn a_push_asks_for_the_key_s_passphrase_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), "asked on the terminal");
    let registry = Registry::start();
    let image = format!("{}/typed/app:v1", registry.host());
    let push = format!(
        "env NIX_REMOTE=local NIX_CONF_DIR={} {} {} {image} --sign-key {} -q",
        repo_root().join("fixtures").display(),
        nixpush_bin(),
        fixture("demo", "app"),
        key.display()
    );
    let run = on_terminal(&push, &["asked on the terminal"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Passphrase for the signing key"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("asked on the terminal"));
    let verified = Nixpush::new().run(&["verify", &image, "--key", public.to_str().unwrap()]);
    verified.assert_ok();
}
