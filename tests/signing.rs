//! `--sign-key`: every manifest a push writes is signed cosign's way before any tag moves; an
//! unchanged re-push adds a missing signature and moves nothing else; a key that cannot sign
//! (wrong passphrase, another curve or type, unreadable) and a registry refusing the `.sig` tag
//! stop the push with one line and no tag. `nixpush verify` tells a valid signature from one by
//! another key, for another digest or for another repository. All against a real registry; the
//! signatures are also checked by implementations other than nixpush's in
//! tests/signature_verifiers.rs.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::quirks::{quirk_front, Quirks};
use common::*;

const PASSPHRASE: &str = "correct horse battery staple";

/// A key pair from `nixpush key generate` under `dir`, and the passphrase file.
fn keypair(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    nixpush_keypair(dir, PASSPHRASE)
}

fn sign_args<'a>(key: &'a Path, pass: &'a Path) -> Vec<&'a str> {
    vec![
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        pass.to_str().unwrap(),
    ]
}

/// The position in the registry's access log of the first `method` request whose path ends
/// with `path_end`.
fn log_position(registry: &Registry, method: &str, path_end: &str) -> Option<usize> {
    registry.log().lines().position(|l| {
        l.split(&format!("\"{method} "))
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .is_some_and(|p| p.ends_with(path_end))
    })
}

fn verify(image: &str, public: &Path) -> Run {
    Nixpush::new().run(&["verify", image, "--key", public.to_str().unwrap()])
}

#[test]
fn the_signature_is_written_before_the_tag_and_verifies_with_the_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, pass) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/signed/app:v1", registry.host());
    let mut args = vec![
        fixture("demo", "app"),
        image.clone(),
        "--json".into(),
        "--sbom".into(),
    ];
    args.extend(sign_args(&key, &pass).into_iter().map(String::from));
    let run = Nixpush::new().run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let digest = json["images"][0]["manifestDigest"]
        .as_str()
        .unwrap()
        .to_owned();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let sig_tag = format!("sha256-{hex}.sig");
    assert_eq!(json["images"][0]["signatures"][0]["tag"], sig_tag.as_str());
    // The SBOM's artifact manifest is signed too.
    assert_eq!(
        json["images"][0]["signatures"][1]["subject"],
        json["images"][0]["sbomDigest"]
    );
    assert_no_secret(&run, "", &[PASSPHRASE]);

    // The registry's own access log: the `.sig` manifest went in before the image's tag.
    let sig_at = log_position(&registry, "PUT", &format!("/manifests/{sig_tag}"));
    let tag_at = log_position(&registry, "PUT", "/manifests/v1");
    assert!(sig_at.is_some() && tag_at.is_some(), "{}", registry.log());
    assert!(
        sig_at < tag_at,
        "the tag moved before the signature was written"
    );

    // cosign's layout: one simple-signing layer with the signature annotation.
    let repo = format!("{}/signed/app", registry.host());
    let sig: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&format!("{repo}:{sig_tag}"))).unwrap();
    let layer = &sig["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());

    let ok = verify(&image, &public);
    assert!(
        ok.stdout.contains(&format!("signature of {digest}: valid")),
        "{}",
        ok.stdout
    );
    ok.assert_ok();

    // Another key: one line, exit 1.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public, _) = keypair(other.path());
    let refused = verify(&image, &other_public);
    assert_refused(
        &refused,
        1,
        &["no valid signature by this key", "not made by this key"],
    );
}

#[test]
fn an_unchanged_repush_adds_the_missing_signature_and_moves_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, pass) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/later/app:v1", registry.host());
    let installable = fixture("demo", "app");
    Nixpush::new().run(&[&installable, &image]).assert_ok();
    assert_refused(&verify(&image, &public), 1, &["is not signed", ".sig tag"]);
    let digest_before = skopeo_digest(&image);
    let blobs_before = registry.requests("PUT", "/blobs/uploads/");

    let mut args = vec![installable.as_str(), image.as_str()];
    args.extend(sign_args(&key, &pass));
    let run = Nixpush::new().run(&args);
    run.assert_ok();
    assert!(
        run.stderr.contains("unchanged, nothing sent"),
        "{}",
        run.stderr
    );
    assert_eq!(skopeo_digest(&image), digest_before);
    // Only the signature's own two small blobs (its payload and config) went up.
    assert_eq!(
        registry.requests("PUT", "/blobs/uploads/"),
        blobs_before + 2
    );
    verify(&image, &public).assert_ok();

    // Signed already: the `.sig` manifest is not written again.
    let sig_puts = registry.requests("PUT", ".sig");
    Nixpush::new().run(&args).assert_ok();
    assert_eq!(registry.requests("PUT", ".sig"), sig_puts);
}

#[test]
fn a_multi_arch_push_signs_the_index_and_each_platform_image() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, pass) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/signed/multi:v1", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let mut args = vec!["--platform", &amd, "--platform", &arm, &image, "--json"];
    args.extend(sign_args(&key, &pass));
    let json: serde_json::Value =
        serde_json::from_str(Nixpush::new().run(&args).assert_ok()).unwrap();
    let signed: Vec<&str> = json["images"][0]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subject"].as_str().unwrap())
        .collect();
    let index = json["images"][0]["indexDigest"].as_str().unwrap();
    assert!(signed.contains(&index));
    for image in json["images"].as_array().unwrap() {
        assert!(signed.contains(&image["manifestDigest"].as_str().unwrap()));
    }
    let ok = verify(&image, &public);
    let out = ok.assert_ok().to_owned();
    // The index's signature and both platform images'.
    assert_eq!(out.matches(": valid").count(), 3, "{out}");
}

#[test]
fn a_key_that_cannot_sign_stops_the_push_before_anything_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/bad/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let push = |key: &Path, pass: &Path| {
        let mut args = vec![installable.as_str(), image.as_str()];
        args.extend(sign_args(key, pass));
        Nixpush::new().run(&args)
    };
    let run = push(&key, &wrong);
    assert_refused(&run, 2, &["wrong passphrase for", "nixpush.key"]);
    assert_no_secret(&run, "", &["not the passphrase"]);

    // Keys of another curve or type, made by openssl.
    for (algorithm, options, named) in [
        ("ed25519", vec![], "Ed25519"),
        (
            "EC",
            vec!["-pkeyopt", "ec_paramgen_curve:P-384"],
            "ECDSA P-384",
        ),
        ("RSA", vec!["-pkeyopt", "rsa_keygen_bits:2048"], "RSA"),
    ] {
        let path = dir.path().join(format!("{algorithm}.pem"));
        let mut openssl = Command::new("openssl");
        openssl
            .args(["genpkey", "-algorithm", algorithm])
            .args(&options);
        openssl.arg("-out").arg(&path);
        run_ok(&mut openssl, "openssl genpkey");
        let run = push(&path, &wrong);
        assert_refused(&run, 2, &[named, "only ECDSA P-256 keys"]);
    }
    let run = push(&dir.path().join("missing.key"), &wrong);
    assert_refused(&run, 2, &["cannot read the key file", "missing.key"]);
    // Nothing was pushed: not a blob, not a tag.
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), 0);
    assert_eq!(registry.manifest_status("bad/app", "v1", None), 404);
}

#[test]
fn a_registry_refusing_the_signature_tag_leaves_the_image_untagged() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, pass) = keypair(dir.path());
    let registry = Registry::start();
    let front = quirk_front(
        registry.port,
        Quirks {
            denied_tag_suffix: Some(".sig".into()),
            ..Default::default()
        },
    );
    let image = format!("127.0.0.1:{}/policy/app:v1", front.port);
    let installable = fixture("demo", "app");
    let mut args = vec![installable.as_str(), image.as_str()];
    args.extend(sign_args(&key, &pass));
    let run = Nixpush::new().run(&args);
    assert_refused(&run, 1, &["403", "denied"]);
    assert_eq!(registry.manifest_status("policy/app", "v1", None), 404);
}
