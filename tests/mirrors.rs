//! `--mirror REF`: one push, the image built once, in several registries: each mirror gets the
//! blobs (streamed from the destination registry, or mounted on the same one), the attachments,
//! its own signatures and the same tags, each tag only once that mirror holds everything; a
//! mirror that fails does not stop the others, and the run says which failed (exit 1, `--json`).

use crate::common;

use common::*;

const PASSPHRASE: &str = "mirror passphrase";

#[test]
fn every_mirror_gets_the_image_its_attachments_its_signature_and_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let (a, b) = (Registry::start(), Registry::start());
    let image = format!("{}/main/app:v1", a.host());
    let (far, near) = (
        format!("{}/far/app", b.host()),
        format!("{}/near/app", a.host()),
    );
    let run = Nixpush::new().run_with(
        &[
            &fixture("demo", "app"),
            &image,
            "--tag",
            "stable",
            "--mirror",
            &far,
            "--mirror",
            &near,
            "--sbom",
            "--sign-key",
            key.to_str().unwrap(),
            "--json",
        ],
        &[("NIXPUSH_SIGN_PASSPHRASE", PASSPHRASE.into())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let digest = json["images"][0]["manifestDigest"].as_str().unwrap();
    assert_eq!(
        json["mirrors"][0]["reference"],
        format!("{far}@{digest}").as_str()
    );
    assert_eq!(
        json["mirrors"][1]["reference"],
        format!("{near}@{digest}").as_str()
    );
    // Built and uploaded once: each layer is pushed once, then copied.
    assert_eq!(
        run.stderr.matches(": pushed sha256:").count(),
        3,
        "{}",
        run.stderr
    );
    for repo in [&far, &near] {
        for tag in ["v1", "stable"] {
            assert_eq!(skopeo_digest(&format!("{repo}:{tag}")), digest);
        }
        // Signed for the mirror's own repository: nixpush and sigstore-rs accept it there.
        let verify = Nixpush::new().run(&[
            "verify",
            &format!("{repo}:v1"),
            "--key",
            public.to_str().unwrap(),
        ]);
        verify.assert_ok();
        let out = sigstore_verify(&format!("{repo}@{digest}"), &public);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The SBOM went along.
        let referrers = fallback_referrers(&format!("{repo}@{digest}"));
        assert_eq!(
            referrers["manifests"][0]["artifactType"],
            "application/spdx+json"
        );
    }
    // On the same registry the mirror's blobs were mounted, not sent again.
    assert!(a.requests("POST", "mount=") > 0, "{}", a.log());
}

#[test]
fn a_mirror_that_fails_does_not_stop_the_others_and_the_run_says_which() {
    let a = Registry::start();
    let read_only = Registry::start_with(RegistryConfig {
        read_only: true,
        ..Default::default()
    });
    let b = Registry::start();
    let image = format!("{}/main/app:v1", a.host());
    let refusing = format!("{}/ro/app", read_only.host());
    let good = format!("{}/ok/app", b.host());
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &image,
        "--mirror",
        &refusing,
        "--mirror",
        &good,
        "--json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("not to every mirror") && line.contains(&refusing),
        "{line}"
    );
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(json["mirrors"][0]["error"].is_string());
    assert!(json["mirrors"][1]["reference"].is_string());
    let digest = json["images"][0]["manifestDigest"].as_str().unwrap();
    assert_eq!(skopeo_digest(&format!("{good}:v1")), digest);
    assert_eq!(read_only.manifest_status("ro/app", "v1", None), 404);
}

#[test]
fn a_mirror_with_a_local_destination_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("oci:{}", dir.path().display()),
        "--mirror",
        "127.0.0.1:1/x/y",
    ]);
    assert_refused(&run, 2, &["--mirror", "local destination"]);
}
