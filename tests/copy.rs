//! `nixpush copy SRC DST`: an image moved between real registries with its digest unchanged and
//! everything that refers to it (SBOM and provenance referrers, kept in the destination's
//! fallback tag; cosign's `.sig` and `.att` tags), checked by skopeo, sigstore-rs and
//! securesystemslib at the destination; the tag written last; a second copy moves no blob; within
//! one registry every blob is mounted; an index with its images; bad sources refused in one line.

use crate::common;

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use common::*;

const PASSPHRASE: &str = "copy passphrase";

fn keypair(dir: &Path) -> (PathBuf, PathBuf) {
    cosign_keypair(dir, PASSPHRASE)
}

/// Pushes the demo app to `image`, signed, with an SBOM and provenance; its manifest digest.
fn push_attached(image: &str, key: &Path) -> String {
    let run = Nixpush::new().run_with(
        &[
            &fixture("demo", "app"),
            image,
            "--sign-key",
            key.to_str().unwrap(),
            "--sbom",
            "--provenance",
            "--json",
        ],
        &[("NIXPUSH_SIGN_PASSPHRASE", PASSPHRASE.into())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    json["images"][0]["manifestDigest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn copy(src: &str, dst: &str) -> serde_json::Value {
    let run = Nixpush::new().run(&["copy", src, dst, "--json"]);
    serde_json::from_str(run.assert_ok()).unwrap()
}

#[test]
fn a_copy_to_another_registry_keeps_the_digest_and_carries_every_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path());
    let (a, b) = (Registry::start(), Registry::start());
    let source = format!("{}/team/app:v1", a.host());
    let digest = push_attached(&source, &key);

    let json = copy(&source, &format!("{}/mirror/app", b.host()));
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["tags"][0], "v1");
    assert_eq!(json["blobsMounted"], 0);
    assert!(json["blobsStreamed"].as_u64().unwrap() > 0);
    let copied = format!("{}/mirror/app:v1", b.host());
    assert_eq!(skopeo_digest(&copied), digest);

    // The attachments: both referrers listed in the destination's fallback tag...
    let pinned = format!("{}/mirror/app@{digest}", b.host());
    let referrers = fallback_referrers(&pinned);
    let mut types: Vec<&str> = referrers["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    // ...the signature, which sigstore-rs accepts there...
    let out = sigstore_verify(&pinned, &public);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // ...and the attestation, which securesystemslib accepts there.
    let att = dsse_from_registry(b.port, "mirror/app", &digest, &public);
    assert!(
        att.status.success(),
        "{}",
        String::from_utf8_lossy(&att.stderr)
    );
    // nixpush verify finds the signature intact: it names the repository it was made for.
    let verify = Nixpush::new().run(&["verify", &copied, "--key", public.to_str().unwrap()]);
    assert_refused(
        &verify,
        1,
        &["for another repository", &format!("{}/team/app", a.host())],
    );

    // The tag was written after the signature, in B's own access log.
    let hex = digest.strip_prefix("sha256:").unwrap();
    let position = |path_end: &str| {
        b.log().lines().position(|l| {
            l.split("\"PUT ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|p| p.ends_with(path_end))
        })
    };
    let sig = position(&format!("/manifests/sha256-{hex}.sig"));
    let tag = position("/manifests/v1");
    assert!(sig.is_some() && sig < tag, "{}", b.log());

    // A second copy moves no blob and writes no manifest.
    let uploads = b.requests("POST", "/blobs/uploads/");
    let again = copy(&source, &format!("{}/mirror/app", b.host()));
    assert_eq!(again["blobsStreamed"], 0);
    assert_eq!(again["manifestsWritten"], 0);
    assert_eq!(b.requests("POST", "/blobs/uploads/"), uploads);
}

#[test]
fn a_copy_within_one_registry_mounts_every_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keypair(dir.path());
    let registry = Registry::start();
    let source = format!("{}/team/app:v1", registry.host());
    let digest = push_attached(&source, &key);
    let json = copy(&source, &format!("{}/other/app:v2", registry.host()));
    assert_eq!(json["blobsStreamed"], 0);
    assert!(json["blobsMounted"].as_u64().unwrap() > 0);
    assert_eq!(
        registry.requests("GET", "/blobs/sha256:"),
        0,
        "no blob was read"
    );
    assert_eq!(
        skopeo_digest(&format!("{}/other/app:v2", registry.host())),
        digest
    );
}

#[test]
fn an_index_is_copied_with_each_of_its_images() {
    let (a, b) = (Registry::start(), Registry::start());
    let source = format!("{}/multi/app:v1", a.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let run = Nixpush::new().run(&["--platform", &amd, "--platform", &arm, &source, "--json"]);
    let pushed: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let index = pushed["images"][0]["indexDigest"].as_str().unwrap();
    let json = copy(&source, &format!("{}/multi/app", b.host()));
    assert_eq!(json["digest"], index);
    for image in pushed["images"].as_array().unwrap() {
        let digest = image["manifestDigest"].as_str().unwrap();
        let raw = skopeo_raw(&format!("{}/multi/app@{digest}", b.host()));
        assert_eq!(
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw))),
            digest
        );
    }
    // skopeo reads the copied index whole, every platform.
    let out = tempfile::tempdir().unwrap();
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/multi/app:v1", b.host()),
        &format!("oci:{}:x", out.path().display()),
    ]);
}

#[test]
fn a_missing_source_and_a_refusing_destination_are_one_line_each() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        "copy",
        &format!("{}/nothing/here:v1", registry.host()),
        &format!("{}/x/y", registry.host()),
    ]);
    assert_refused(&run, 1, &["no manifest at", "nothing/here:v1"]);

    let source = format!("{}/team/app:v1", registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &source])
        .assert_ok();
    let read_only = Registry::start_with(RegistryConfig {
        read_only: true,
        ..Default::default()
    });
    let run = Nixpush::new().run(&["copy", &source, &format!("{}/x/y", read_only.host())]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line().starts_with("nixpush: error: "),
        "{}",
        run.stderr
    );
    assert_eq!(read_only.manifest_status("x/y", "v1", None), 404);
}

#[test]
fn a_blob_cut_on_the_way_is_streamed_again_and_the_copy_lands() {
    let (a, b) = (Registry::start(), Registry::start());
    let source = format!("{}/team/app:v1", a.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &source, "--json"]);
    let pushed: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    // The largest layer (over a MiB): its upload into B is cut 4 KiB in, as a dropped
    // connection would. Its commit `PUT ...?digest=sha256%3A<hex>` names it, and nothing else.
    let largest = pushed["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let hex = largest.strip_prefix("sha256:").unwrap();
    let needle: &'static [u8] = Box::leak(
        format!("digest=sha256%3A{hex}")
            .into_bytes()
            .into_boxed_slice(),
    );
    let proxy = FaultProxy::start(b.port, needle, 4096);
    let run = Nixpush::new().run(&[
        "copy",
        &source,
        &format!("{}/faulty/app", proxy.host()),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert!(proxy.tripped(), "the fault never happened");
    // Streamed again from the source: A sent that blob twice.
    assert_eq!(a.requests("GET", &largest), 2, "{}", a.log());
    assert_eq!(
        skopeo_digest(&format!("{}/faulty/app:v1", b.host())),
        json["digest"].as_str().unwrap()
    );
}
