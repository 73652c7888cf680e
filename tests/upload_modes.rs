//! How blobs go up (`--upload`): one streaming PATCH when the digest is learned as the bytes go,
//! one PUT with a Content-Length when it is known beforehand (the local cache) or when asked
//! (`--upload=monolithic`, for registries that refuse chunks), checked in a real registry's log
//! and by pulling the result with skopeo.

use crate::common;

use common::*;

/// Blob uploads by kind, from the registry's log: (streaming PATCHes, PUTs that end an upload).
fn uploads(registry: &Registry) -> (usize, usize) {
    (
        registry.requests("PATCH", "/blobs/uploads/"),
        registry.requests("PUT", "/blobs/uploads/"),
    )
}

#[test]
fn monolithic_uploads_send_no_patch_and_give_the_same_image() {
    let registry = Registry::start();
    let streamed = format!("{}/modes/streamed:v1", registry.host());
    let whole = format!("{}/modes/whole:v1", registry.host());
    let pinned = Nixpush::new()
        .run(&[&fixture("demo", "app"), &streamed])
        .assert_ok()
        .to_owned();
    let (patches, _) = uploads(&registry);
    assert_eq!(patches, 3, "a cold push streams each of its 3 layers");

    // A fresh cache: the digests are not known, so each layer is hashed first, then PUT whole.
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &whole, "--upload", "monolithic"]);
    let (after, _) = uploads(&registry);
    assert_eq!(
        after,
        patches,
        "--upload=monolithic sent a PATCH:\n{}",
        registry.log()
    );
    // Same layers, same image: only the repository differs.
    let digest = |p: &str| p.rsplit('@').next().unwrap().to_owned();
    assert_eq!(digest(run.assert_ok()), digest(&pinned));
    assert_eq!(OciCopy::pull(&whole).checked_layers().len(), 3);
}

#[test]
fn a_digest_known_from_the_cache_goes_up_in_one_put_unless_streaming_is_asked() {
    let nixpush = with_a_known_cache();

    // Another registry: the blobs are not there, but the cache knows their digests.
    let second = Registry::start();
    let image = format!("{}/b/app:v1", second.host());
    nixpush.run(&[&fixture("demo", "app"), &image]).assert_ok();
    let (patches, puts) = uploads(&second);
    assert_eq!(patches, 0, "{}", second.log());
    // Three layers and the config, each one PUT.
    assert_eq!(puts, 4, "{}", second.log());
    assert_eq!(OciCopy::pull(&image).checked_layers().len(), 3);

    let third = Registry::start();
    let image = format!("{}/c/app:v1", third.host());
    nixpush
        .run(&[&fixture("demo", "app"), &image, "--upload", "streaming"])
        .assert_ok();
    assert_eq!(uploads(&third).0, 3, "{}", third.log());
}

/// nixpush whose layer cache knows the demo app's layers (pushed once, to a registry of its own).
fn with_a_known_cache() -> Nixpush {
    let first = Registry::start();
    let nixpush = Nixpush::new();
    nixpush
        .run(&[
            &fixture("demo", "app"),
            &format!("{}/a/app:v1", first.host()),
        ])
        .assert_ok();
    nixpush
}

/// Makes every entry of the layer cache at `entries` name the blob `digest`.
fn damage_cache(entries: &std::path::Path, digest: &str) {
    for entry in std::fs::read_dir(entries).unwrap() {
        let path = entry.unwrap().path();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["digest"] = digest.into();
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    }
}

#[test]
fn a_damaged_cache_digest_falls_back_to_streaming_and_is_corrected() {
    let nixpush = with_a_known_cache();
    // Every entry names a digest the layer does not have.
    let entries = nixpush.cache.path().join("layers/v1");
    let bogus = format!("sha256:{}", "0".repeat(64));
    damage_cache(&entries, &bogus);

    let second = Registry::start();
    let image = format!("{}/b/app:v1", second.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image]);
    run.assert_ok();
    assert_eq!(
        run.stderr
            .matches("the cached digest is not what the store gives")
            .count(),
        3,
        "{}",
        run.stderr
    );
    assert_eq!(OciCopy::pull(&image).checked_layers().len(), 3);
    // The cache is right again.
    for entry in std::fs::read_dir(&entries).unwrap() {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        assert_ne!(json["digest"], bogus.as_str());
    }

    // Asked for monolithic uploads, a wrong announced digest is not retried forever: the
    // registry refuses it and the push fails, naming the layer, with nothing tagged.
    damage_cache(&entries, &bogus);
    let third = Registry::start();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/c/app:v1", third.host()),
        "--upload",
        "monolithic",
    ]);
    assert_refused(&run, 1, &["was announced as"]);
    assert_eq!(third.manifest_status("c/app", "v1", None), 404);
}
