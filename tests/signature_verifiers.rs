//! nixpush's signatures judged by implementations other than nixpush's: sigstore-rs (the cosign
//! verifier Kubewarden uses) accepts them, for a single and a multi-arch image, with a key made
//! by a tool other than nixpush (tests/tools/cosign_key.py) and with `nixpush key generate`'s,
//! and refuses another key and an unsigned image; skopeo's and podman's `sigstoreSigned` policy
//! finds them;
//! sigstore-rs opens `nixpush key generate`'s encrypted key. The other way round, `nixpush
//! verify` accepts cosign-format signatures made by another signer (tests/tools/cosign_sign.py)
//! and refuses a forged one. And `verify --against` shows reproducibility.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::*;

const PASSPHRASE: &str = "independent passphrase";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Pushes `args` (an installable and image, or `--platform`s and an image) signed with `key`.
fn push_signed(args: &[&str], key: &Path) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--sign-key", key.to_str().unwrap(), "--json"]);
    let run = Nixpush::new().run_with(
        &all,
        &[("NIXPUSH_SIGN_PASSPHRASE", PASSPHRASE.into())],
        None,
    );
    serde_json::from_str(run.assert_ok()).unwrap()
}

#[test]
fn sigstore_rs_accepts_nixpush_signatures_made_with_a_cosign_key_from_another_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let registry = Registry::start();
    let image = format!("{}/indep/app:v1", registry.host());
    let json = push_signed(&[&fixture("demo", "app"), &image], &key);
    let digest = json["images"][0]["manifestDigest"].as_str().unwrap();
    let pinned = format!("{}/indep/app@{digest}", registry.host());
    let out = sigstore_verify(&pinned, &public);
    assert!(out.status.success(), "{}", text(&out));
    assert!(sigstore_verify(&image, &public).status.success());

    // Another key, and an unsigned image, are refused.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keypair(other.path(), PASSPHRASE);
    assert!(!sigstore_verify(&pinned, &other_public).status.success());
    let unsigned = format!("{}/indep/unsigned:v1", registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &unsigned])
        .assert_ok();
    assert!(!sigstore_verify(&unsigned, &public).status.success());

    // skopeo's sigstoreSigned policy finds the signature (Debian's build then refuses every
    // sigstore signature for that reason), and finds none on the unsigned image.
    let policy = sigstore_policy(dir.path(), &registry.host(), &public);
    let found = skopeo_copy_with_policy(&image, &policy);
    assert!(
        text(&found).contains("Debian-local change: sigstore disabled"),
        "{}",
        text(&found)
    );
    let none = skopeo_copy_with_policy(&unsigned, &policy);
    assert!(
        text(&none).contains("no signature exists"),
        "{}",
        text(&none)
    );
}

#[test]
fn sigstore_rs_accepts_a_multi_arch_push_signed_with_a_nixpush_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = nixpush_keypair(dir.path(), PASSPHRASE);
    // sigstore-rs opens nixpush's encrypted key as cosign's own.
    let pair = sigstore_key_pair(&key, &public, PASSPHRASE);
    assert!(pair.status.success(), "{}", text(&pair));

    let registry = Registry::start();
    let image = format!("{}/indep/multi:v1", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let json = push_signed(&["--platform", &amd, "--platform", &arm, &image], &key);
    let repo = format!("{}/indep/multi", registry.host());
    let index = json["images"][0]["indexDigest"].as_str().unwrap();
    let out = sigstore_verify(&format!("{repo}@{index}"), &public);
    assert!(out.status.success(), "{}", text(&out));
    for image in json["images"].as_array().unwrap() {
        let digest = image["manifestDigest"].as_str().unwrap();
        let out = sigstore_verify(&format!("{repo}@{digest}"), &public);
        assert!(out.status.success(), "{}", text(&out));
    }
}

#[test]
fn nixpush_verify_accepts_another_signer_s_signature_and_refuses_a_forged_one() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let registry = Registry::start();
    let image = format!("{}/other/app:v1", registry.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &image, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let digest = json["images"][0]["manifestDigest"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = || Nixpush::new().run(&["verify", &image, "--key", public.to_str().unwrap()]);

    // A forged signature: by the key, stored under this image, naming another digest.
    let elsewhere = format!("sha256:{}", "ab".repeat(32));
    python_sign_naming(
        registry.port,
        ("other/app", &digest),
        &elsewhere,
        &key,
        PASSPHRASE,
    );
    assert_refused(
        &verify(),
        1,
        &["no valid signature by this key", "for another image"],
    );

    python_sign(registry.port, "other/app", &digest, &key, PASSPHRASE);
    let ok = verify();
    let out = ok.assert_ok();
    assert!(
        out.contains(&format!("signature of {digest}: valid")),
        "{out}"
    );
}

#[test]
fn verify_against_says_reproduced_for_the_pushed_installable_and_names_the_first_other_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let registry = Registry::start();
    let image = format!("{}/repro/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let json = push_signed(&[&installable, &image], &key);
    let verify = |against: &str| {
        Nixpush::new().run(&[
            "verify",
            &image,
            "--key",
            public.to_str().unwrap(),
            "--against",
            against,
        ])
    };
    let ok = verify(&installable);
    assert!(
        ok.assert_ok().contains("reproduced: the same config"),
        "{}",
        ok.stdout
    );
    let other = verify(&fixture("demo", "docker"));
    assert_refused(&other, 1, &["not reproduced: layer", "/nix/store/"]);
    // The config and the signatures' payloads were read; never a layer blob.
    for layer in json["images"][0]["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(
            registry.requests("GET", digest),
            0,
            "{digest} was downloaded"
        );
    }
}
