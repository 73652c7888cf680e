//! A secret signing key given where a public one belongs (`--trusted-public-key "$(cat
//! secret-key)"`, or Nix's own `trusted-public-keys`) is named as a secret key and never
//! printed, not even with `--verbose`; nor is a cache's password in a bad `--substituter`.
//! Before, the whole secret key was echoed in the error.

use crate::common;

use std::process::Command;

use common::*;

/// A store path no store holds: a push of it reads the binary caches.
const ABSENT: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-absent-for-secret-keys";

/// A fresh secret key, as `nix key generate-secret` prints it (`NAME:BASE64`).
fn secret_key(name: &str) -> String {
    let out = run_ok(
        nix_env(Command::new("nix").args(["key", "generate-secret", "--key-name", name])),
        "nix key generate-secret",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Neither `secret` nor any 8 characters of it appear in what `run` printed.
fn assert_never_shown(run: &Run, secret: &str) {
    let printed = format!("{}\n{}", run.stdout, run.stderr);
    for part in secret.as_bytes().windows(8) {
        let part = std::str::from_utf8(part).unwrap();
        assert!(
            !printed.contains(part),
            "{part:?} of the secret in:\n{printed}"
        );
    }
}

#[test]
fn a_secret_key_given_as_a_trusted_key_is_named_never_shown() {
    let secret = secret_key("secret-keys-1");
    let b64 = secret.split_once(':').unwrap().1.to_owned();
    let nixpush = Nixpush::new();
    for given in [secret.clone(), format!("{secret}\n"), b64.clone()] {
        for verbose in [false, true] {
            let mut args = vec![
                ABSENT,
                "oci:/tmp/nixpush-secret-keys-never-written",
                "--substituter",
                "http://127.0.0.1:9/cache",
                "--trusted-public-key",
                given.as_str(),
            ];
            if verbose {
                args.push("--verbose");
            }
            let run = nixpush.run(&args);
            assert_eq!(run.code, 2, "{}", run.stderr);
            assert!(run.error_line().contains("secret key"), "{}", run.stderr);
            assert!(run.error_line().contains("public"), "{}", run.stderr);
            assert_never_shown(&run, &b64);
        }
    }
    assert!(!std::path::Path::new("/tmp/nixpush-secret-keys-never-written").exists());
}

#[test]
fn a_secret_key_in_nix_s_trusted_keys_is_named_never_shown() {
    let secret = secret_key("secret-keys-2");
    let b64 = secret.split_once(':').unwrap().1.to_owned();
    // No --substituter: the caches and keys Nix is configured with are read.
    let config =
        format!("substituters = http://127.0.0.1:9/cache\ntrusted-public-keys = {secret}\n");
    let run = Nixpush::new().run_with(
        &[
            ABSENT,
            "oci:/tmp/nixpush-secret-keys-never-written-2",
            "--verbose",
        ],
        &[("NIX_CONFIG", config)],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.error_line().contains("secret key"), "{}", run.stderr);
    assert!(
        run.error_line().contains("\"secret-keys-2\""),
        "{}",
        run.stderr
    );
    assert_never_shown(&run, &b64);
}

#[test]
fn a_malformed_key_or_cache_url_shows_no_credential() {
    let nixpush = Nixpush::new();
    // A public key cut short: its bytes are not shown either (it may be anything pasted).
    let run = nixpush.run(&[
        ABSENT,
        "oci:/tmp/x",
        "--trusted-public-key",
        "cache-1:c2VjcmV0LXRva2VuLXBhc3RlZC1ieS1taXN0YWtl",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("\"cache-1\""), "{}", run.stderr);
    assert_never_shown(&run, "c2VjcmV0LXRva2VuLXBhc3RlZC1ieS1taXN0YWtl");
    for url in [
        "htp://reader:Pw-9fK2mQz7@cache.example/x",
        "https://reader:Pw-9fK2mQz7/x@[bad",
    ] {
        let run = nixpush.run(&[ABSENT, "oci:/tmp/x", "--substituter", url]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.error_line().contains("--substituter"), "{}", run.stderr);
        assert_never_shown(&run, "Pw-9fK2mQz7");
    }
}
