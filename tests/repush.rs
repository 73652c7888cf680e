//! Pushing the same image again costs no blob upload, and the same inputs always give the same
//! manifest digest, whatever the cache or registry holds.

use crate::common;

use common::*;

#[test]
fn second_push_sends_no_blob_data_and_gives_the_same_digest() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/demo/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let args = [
        installable.as_str(),
        image.as_str(),
        "--entrypoint",
        "bin/app",
    ];

    let first = nixpush.run(&args).assert_ok().to_owned();
    // A layer per store path and the generated root filesystem.
    let layers = nix_closure(&nix_build(&installable)).len() + 1;
    // One upload per layer, plus the config.
    assert_eq!(registry.uploads_started(), layers + 1);
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/"), layers);
    let manifests = registry.requests("PUT", "/manifests/");

    let blob_requests = || {
        ["HEAD", "GET", "POST", "PATCH", "PUT", "DELETE"]
            .iter()
            .map(|m| registry.requests(m, "/blobs/"))
            .sum::<usize>()
    };
    let blobs_before = blob_requests();

    // The tag already names exactly this manifest: no blob is asked about, nothing is written,
    // and stdout is the same pinned reference.
    let second = nixpush.run(&args).assert_ok().to_owned();
    assert_eq!(second, first, "same inputs, same manifest digest");
    assert_eq!(blob_requests(), blobs_before, "{}", registry.log());
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests);
    let json_args = [&args[..], &["--json"]].concat();
    let json: serde_json::Value =
        serde_json::from_str(nixpush.run(&json_args).assert_ok()).unwrap();
    assert_eq!(json["images"][0]["unchanged"], true);
    assert_eq!(blob_requests(), blobs_before);

    // A fresh machine (empty cache) learns the layers from the tag's own manifest: the same.
    let fresh = Nixpush::new().run(&args).assert_ok().to_owned();
    assert_eq!(fresh, first);
    assert_eq!(blob_requests(), blobs_before, "{}", registry.log());
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests);

    // --verify trusts nothing: every layer is rebuilt and checked against the registry, and
    // the tag is written again; still nothing uploaded.
    let verify = [&args[..], &["--verify", "--json"]].concat();
    let json: serde_json::Value = serde_json::from_str(nixpush.run(&verify).assert_ok()).unwrap();
    assert_eq!(json["images"][0]["unchanged"], false);
    assert!(
        registry.requests("HEAD", "/blobs/") >= layers,
        "{}",
        registry.log()
    );
    assert_eq!(registry.uploads_started(), layers + 1, "no upload");
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests + 1);

    // A changed image is no unchanged push: the tag moves.
    let other = [&args[..], &["--env", "CHANGED=1"]].concat();
    let moved = nixpush.run(&other).assert_ok().to_owned();
    assert_ne!(moved, first);
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests + 2);
}

#[test]
fn fresh_cache_and_fresh_registry_give_identical_digests() {
    let installable = fixture("edge", "all");
    let push = || {
        let registry = Registry::start();
        let nixpush = Nixpush::new();
        let out = nixpush
            .run(&[&installable, &format!("{}/edge/all:v1", registry.host())])
            .assert_ok()
            .to_owned();
        let (_, digest) = out.split_once('@').unwrap();
        digest.to_owned()
    };
    assert_eq!(push(), push());
}

#[test]
fn a_cached_layer_whose_blob_is_gone_is_uploaded_again() {
    let installable = fixture("demo", "app");
    let nixpush = Nixpush::new();
    let first = Registry::start();
    nixpush
        .run(&[&installable, &format!("{}/demo/app:v1", first.host())])
        .assert_ok();
    // Same cache, another registry that has none of the blobs.
    let second = Registry::start();
    let out = nixpush
        .run(&[&installable, &format!("{}/demo/app:v1", second.host())])
        .assert_ok()
        .to_owned();
    let layers = nix_closure(&nix_build(&installable)).len() + 1;
    assert_eq!(second.uploads_started(), layers + 1);
    let (_, digest) = out.split_once('@').unwrap();
    assert_eq!(second.manifest_status("demo/app", digest, None), 200);
}

/// Digests of an image's layers, in order.
fn layer_digests(image: &str) -> Vec<String> {
    OciCopy::pull(image).manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_update_of_one_store_path_changes_and_uploads_only_its_layer() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let v1 = format!("{}/fleet/app:v1", registry.host());
    let v2 = format!("{}/fleet/app:v2", registry.host());
    nixpush.run(&[&fixture("demo", "app"), &v1]).assert_ok();
    let uploads_before = registry.uploads_started();
    let patches_before = registry.requests("PATCH", "/blobs/uploads/");
    nixpush.run(&[&fixture("demo", "app-v2"), &v2]).assert_ok();

    let (old, new) = (layer_digests(&v1), layer_digests(&v2));
    assert_eq!(old.len(), new.len());
    let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
    assert_eq!(
        changed.len(),
        1,
        "exactly one layer differs: {old:?} vs {new:?}"
    );
    // The changed layer holds the new store path, and only it.
    let copy = OciCopy::pull(&v2);
    let check = &copy.checked_layers()[changed[0]];
    let app_v2 = nix_build(&fixture("demo", "app-v2"))[0].clone();
    assert_eq!(
        check["paths"],
        serde_json::json!([app_v2.to_str().unwrap()])
    );
    // The update uploaded that layer and the new config, nothing else.
    assert_eq!(registry.uploads_started() - uploads_before, 2);
    assert_eq!(
        registry.requests("PATCH", "/blobs/uploads/") - patches_before,
        1
    );
}

#[test]
fn every_tag_names_the_same_manifest() {
    let registry = Registry::start();
    let image = format!("{}/tags/app:1.2.3", registry.host());
    let pinned = Nixpush::new()
        .run(&[
            &fixture("demo", "app"),
            &image,
            "-t",
            "1.2",
            "--tag",
            "latest",
        ])
        .assert_ok()
        .to_owned();
    let digest = pinned.split_once('@').unwrap().1;
    for tag in ["1.2.3", "1.2", "latest"] {
        assert_eq!(
            skopeo_inspect(&format!("{}/tags/app:{tag}", registry.host()), "--raw")["layers"],
            OciCopy::pull(&image).manifest["layers"],
            "{tag}"
        );
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{}/tags/app:{tag}", registry.host()))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest, "{tag}");
    }
    // Blobs went up once, whatever the number of tags.
    let layers = nix_closure(&nix_build(&fixture("demo", "app"))).len() + 1;
    assert_eq!(registry.uploads_started(), layers + 1);
}

#[test]
fn tags_without_a_destination_tag_replace_latest() {
    let registry = Registry::start();
    Nixpush::new()
        .run(&[
            &fixture("demo", "app"),
            &format!("{}/tags/only", registry.host()),
            "-t",
            "v9",
        ])
        .assert_ok();
    assert_eq!(registry.manifest_status("tags/only", "v9", None), 200);
    assert_eq!(registry.manifest_status("tags/only", "latest", None), 404);
    let run = Nixpush::new().run(&[&fixture("demo", "app"), "127.0.0.1:1/a/b", "-t", "-bad"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// Only the tag's own manifest can make a push "unchanged": a `--cache-from` image that is the
/// same never stands for a tag that does not exist yet, and a digest asked for is still checked.
#[test]
fn cache_from_never_stands_for_the_tag_and_a_digest_asked_for_is_checked() {
    let registry = Registry::start();
    let installable = fixture("demo", "app");
    let v1 = format!("{}/demo/app:v1", registry.host());
    let pinned = Nixpush::new()
        .run(&[&installable, &v1])
        .assert_ok()
        .to_owned();
    let v2 = format!("{}/demo/app:v2", registry.host());
    let run = Nixpush::new().run(&[&installable, &v2, "--cache-from", &v1, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_eq!(json["images"][0]["unchanged"], false);
    let digest = pinned.rsplit('@').next().unwrap();
    assert_eq!(registry.manifest_status("demo/app", "v2", None), 200);
    assert_eq!(skopeo_digest(&v2), digest);

    // v1 already names this image, but not the digest the destination asks for.
    let wrong = format!("{v1}@sha256:{}", "0".repeat(64));
    let run = Nixpush::new().run(&[&installable, &wrong]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.error_line().contains("not the"), "{}", run.stderr);
    // The right one is fine, and unchanged.
    let right = format!("{v1}@{digest}");
    let run = Nixpush::new().run(&[&installable, &right, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_eq!(json["images"][0]["manifestDigest"], digest);
}
