//! The independent signature tools agree with each other, so they can be trusted to judge
//! nixpush's own signatures and provenance: a cosign key made in Python opens in sigstore-rs;
//! an image signed in Python as cosign signs is accepted by sigstore-rs with that key only,
//! never when unsigned or when the payload names another digest; skopeo's policy finds the
//! signature (and, built without sigstore on Debian, refuses it for that reason, not for a
//! missing one); securesystemslib accepts DSSE envelopes made by it and by hand, and refuses a
//! tampered payload or another key.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::*;

const PASSPHRASE: &str = "correct horse";

/// The demo image pushed unsigned by nixpush to `registry` as `repo:v1`; its digest.
fn push_unsigned(registry: &Registry, repo: &str) -> String {
    let nixpush = Nixpush::new();
    let image = format!("{}/{repo}:v1", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    json["images"][0]["manifestDigest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_accepted(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} refused:\n{}{}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Refused: exit 1 and one line on stdout containing `reason`.
fn assert_refused_with(out: &Output, reason: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stdout(out));
    assert_eq!(stdout(out).lines().count(), 1, "{}", stdout(out));
    assert!(stdout(out).contains(reason), "{}", stdout(out));
}

#[test]
fn a_python_cosign_key_opens_in_sigstore_rs_with_its_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert_accepted(
        &sigstore_key_pair(&key, &public, PASSPHRASE),
        "the key pair",
    );
    assert_refused_with(&sigstore_key_pair(&key, &public, "wrong"), "cannot open");
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keypair(other.path(), "");
    assert_refused_with(
        &sigstore_key_pair(&key, &other_public, PASSPHRASE),
        "is not the one in",
    );
    // An empty passphrase is a passphrase too (cosign's default in CI).
    let (empty_key, empty_public) = cosign_keypair(other.path(), "");
    assert_accepted(&sigstore_key_pair(&empty_key, &empty_public, ""), "empty");
}

#[test]
fn sigstore_rs_accepts_a_python_signature_with_its_key_only() {
    let registry = Registry::start();
    let digest = push_unsigned(&registry, "signed/app");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    python_sign(registry.port, "signed/app", &digest, &key, PASSPHRASE);

    let pinned = format!("{}/signed/app@{digest}", registry.host());
    let out = sigstore_verify(&pinned, &public);
    assert_accepted(&out, "the signature");
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains(&format!("{digest} signed as {}", registry.host())));
    // By tag as well: sigstore-rs resolves it to the same digest.
    let tagged = format!("{}/signed/app:v1", registry.host());
    assert_accepted(&sigstore_verify(&tagged, &public), "by tag");

    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keypair(other.path(), PASSPHRASE);
    assert_refused_with(
        &sigstore_verify(&pinned, &other_public),
        "none of the 1 signatures",
    );
}

#[test]
fn a_second_signature_joins_the_first_and_both_verify() {
    let registry = Registry::start();
    let digest = push_unsigned(&registry, "twice/app");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (key_a, public_a) = cosign_keypair(a.path(), PASSPHRASE);
    let (key_b, public_b) = cosign_keypair(b.path(), "");
    python_sign(registry.port, "twice/app", &digest, &key_a, PASSPHRASE);
    python_sign(registry.port, "twice/app", &digest, &key_b, "");

    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let sig_manifest = skopeo_inspect(&format!("{}/twice/app:{sig_tag}", registry.host()), "--raw");
    assert_eq!(sig_manifest["layers"].as_array().unwrap().len(), 2);
    let pinned = format!("{}/twice/app@{digest}", registry.host());
    assert_accepted(&sigstore_verify(&pinned, &public_a), "key a");
    assert_accepted(&sigstore_verify(&pinned, &public_b), "key b");
}

#[test]
fn sigstore_rs_refuses_an_unsigned_image() {
    let registry = Registry::start();
    let digest = push_unsigned(&registry, "unsigned/app");
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let pinned = format!("{}/unsigned/app@{digest}", registry.host());
    assert_refused_with(&sigstore_verify(&pinned, &public), "no signature of");
}

#[test]
fn sigstore_rs_refuses_a_signature_whose_payload_names_another_digest() {
    let registry = Registry::start();
    let digest = push_unsigned(&registry, "forged/app");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let elsewhere = format!("sha256:{}", "1".repeat(64));
    python_sign_naming(
        registry.port,
        ("forged/app", &digest),
        &elsewhere,
        &key,
        PASSPHRASE,
    );
    let pinned = format!("{}/forged/app@{digest}", registry.host());
    assert_refused_with(&sigstore_verify(&pinned, &public), "no signature of");
}

/// skopeo's last line: containers/image's one fatal message.
fn skopeo_error(out: &Output) -> String {
    assert!(!out.status.success(), "skopeo accepted the image");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn skopeo_finds_the_signature_and_stops_only_at_debian_s_disabled_sigstore() {
    let registry = Registry::start();
    let signed = push_unsigned(&registry, "policy/signed");
    let unsigned = push_unsigned(&registry, "policy/unsigned");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    python_sign(registry.port, "policy/signed", &signed, &key, PASSPHRASE);

    let policy = sigstore_policy(dir.path(), &registry.host(), &public);
    let found = skopeo_error(&skopeo_copy_with_policy(
        &format!("{}/policy/signed@{signed}", registry.host()),
        &policy,
    ));
    // One signature: "Source image rejected: Debian-local change: sigstore disabled"; with
    // several, containers/image gives that reason for each ("None of the signatures were
    // accepted, reasons: ...").
    assert!(
        found.contains("Source image rejected: Debian-local change: sigstore disabled"),
        "{found}"
    );
    let missing = skopeo_error(&skopeo_copy_with_policy(
        &format!("{}/policy/unsigned@{unsigned}", registry.host()),
        &policy,
    ));
    assert!(
        missing
            .contains("Source image rejected: A signature was required, but no signature exists"),
        "{missing}"
    );
}

/// An in-toto statement about `digest` in `dir`, as a file.
fn statement(dir: &Path, digest: &str) -> std::path::PathBuf {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.com/test"}},
    });
    let path = dir.join("statement.json");
    std::fs::write(&path, statement.to_string()).unwrap();
    path
}

#[test]
fn securesystemslib_accepts_a_dsse_envelope_and_refuses_a_tampered_one() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keypair(other.path(), "");
    let statement = statement(dir.path(), &format!("sha256:{}", "a".repeat(64)));
    for signer in [DsseSigner::Securesystemslib, DsseSigner::ByHand] {
        let envelope = dsse_sign(&statement, &key, PASSPHRASE, signer);
        let path = dir.path().join("envelope.json");
        std::fs::write(&path, &envelope).unwrap();
        let out = dsse_verify(&path, &public);
        assert_accepted(&out, "the envelope");
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, read_json(&statement));
        assert_refused_with(&dsse_verify(&path, &other_public), "no signature verifies");

        // The same signature over a payload naming another subject.
        let mut tampered: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
        let mut body = printed.clone();
        body["subject"][0]["digest"]["sha256"] = "b".repeat(64).into();
        tampered["payload"] = b64.encode(body.to_string()).into();
        std::fs::write(&path, tampered.to_string()).unwrap();
        assert_refused_with(&dsse_verify(&path, &public), "no signature verifies");
    }
}

#[test]
fn dsse_envelopes_attached_as_cosign_attests_are_read_back_from_the_registry() {
    let registry = Registry::start();
    let digest = push_unsigned(&registry, "attested/app");
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let statement = statement(dir.path(), &digest);
    for _ in 0..2 {
        dsse_attach(
            registry.port,
            ("attested/app", &digest),
            &statement,
            &key,
            PASSPHRASE,
        );
    }
    let out = dsse_from_registry(registry.port, "attested/app", &digest, &public);
    assert_accepted(&out, "the attestations");
    let statements: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statements.as_array().unwrap().len(), 2);
    assert_eq!(statements[1], read_json(&statement));

    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_keypair(other.path(), "");
    let out = dsse_from_registry(registry.port, "attested/app", &digest, &other_public);
    assert_refused_with(&out, "no signature verifies");
    let unsigned = format!("sha256:{}", "0".repeat(64));
    let out = dsse_from_registry(registry.port, "attested/app", &unsigned, &public);
    assert_refused_with(&out, "no attestation tag");
}
