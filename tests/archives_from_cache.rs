//! Image archives Nix built, published from a binary cache: a `buildImage`-shaped archive whose
//! store path only the cache holds, and a dockerTools conf whose `fromImage` base archive is
//! only there. Each gives the image the local store gives (the archive's own config and
//! diff_ids, as Python's tarfile reads them: tests/oracle/archive_facts.py), read from the
//! archive's NAR as it streams; the archive's index is kept in nixpush's cache, so an unchanged
//! re-push reads no archive again; a NAR that is not the one its narinfo signs is refused.
//! The fixtures (fixtures/cache) are paths no other test builds: each test deletes its own.

use crate::common;

use std::path::{Path, PathBuf};

use common::binary_cache::*;
use common::cached_closure::*;
use common::*;

/// The config digest and diff_ids an archive holds, as the oracle reads them.
fn archive_image(archive: &Path) -> (serde_json::Value, serde_json::Value) {
    let facts = archive_facts(archive);
    (facts["image_id"].clone(), facts["diff_ids"].clone())
}

fn diff_ids(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diffId"].clone())
        .collect()
}

/// Pushes `installable` from the local store to a fresh registry: the `--json` document.
fn push_locally(installable: &str) -> serde_json::Value {
    let registry = Registry::start();
    push_json(
        &Nixpush::new(),
        &[
            installable.to_owned(),
            format!("{}/local/image:v1", registry.host()),
            "--no-default-annotations".into(),
            "--json".into(),
        ],
    )
}

#[test]
fn a_build_image_archive_only_in_the_cache_is_the_image_it_holds() {
    let installable = fixture("cache", "cached-archive");
    let archive = nix_build(&installable).remove(0);
    let closure = nix_closure(std::slice::from_ref(&archive));
    assert_eq!(
        closure,
        std::slice::from_ref(&archive),
        "an archive refers to nothing"
    );
    let (image_id, archive_diff_ids) = archive_image(&archive);
    let local = push_locally(&installable);
    assert_eq!(local["images"][0]["configDigest"], image_id);

    let signed = SignedCache::copy(&closure, "nixpush-test-cached-archive");
    delete_from_store(&closure);
    let cached = FromCache::serve(signed);
    let nixpush = Nixpush::new();
    let args = cached.args(archive.to_str().unwrap(), "cache/archive:v1", &[]);
    let json = push_json(&nixpush, &args);
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_eq!(json["images"][0]["configDigest"], image_id, "the image ID");
    assert_eq!(
        serde_json::Value::Array(diff_ids(&json)),
        archive_diff_ids,
        "each layer is its member"
    );
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(
        podman_run(pinned, &[], &[]),
        "hello from a cached image archive\n"
    );

    // Unchanged: the archive's index is in nixpush's cache, and its layers in the registry.
    let before = cached.server.nar_downloads().len();
    let again = push_json(&nixpush, &args);
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        cached.server.nar_downloads().len(),
        before,
        "no NAR read: {}",
        cached.server.log()
    );
    assert_not_in_store(&closure);
}

/// The stream script of fixture `cached-from-image`, its conf, and its base archive.
fn from_image_fixture() -> (PathBuf, PathBuf, PathBuf) {
    let installable = fixture("cache", "cached-from-image");
    let stream = nix_build(&installable).remove(0);
    let conf = nix_build(&format!("{installable}.conf")).remove(0);
    let base = PathBuf::from(read_json(&conf)["from_image"].as_str().unwrap());
    (stream, conf, base)
}

#[test]
fn a_from_image_base_only_in_the_cache_gives_the_image_of_the_local_store() {
    let (stream, conf, base) = from_image_fixture();
    let busybox = format!(
        "{}/bin/busybox",
        read_json(&conf)["store_layers"][0][0].as_str().unwrap()
    );
    let closure = nix_closure(std::slice::from_ref(&stream));
    assert!(
        closure.contains(&conf) && closure.contains(&base),
        "{closure:?}"
    );
    // nixpkgs' own rules give the config, from the conf and its base, before they go.
    let oracle_config = oracle_config_digest(&conf);
    let (_, base_diff_ids) = archive_image(&base);
    let local = push_locally(&fixture("cache", "cached-from-image"));
    assert_eq!(local["images"][0]["configDigest"], oracle_config);

    // A second cache, uncompressed, whose base NAR is then changed in one file.
    let signed = SignedCache::copy(&closure, "nixpush-test-cached-from-image");
    let forged = SignedCache::copy_with(
        &closure,
        "nixpush-test-cached-from-image-forged",
        NarCompression::None,
        false,
    );
    forged.cache.tamper_nar(
        &base,
        b"from the cached base image",
        b"from the forged base image",
        true,
    );
    delete_from_store(&closure);

    let cached = FromCache::serve(signed);
    let nixpush = Nixpush::new();
    let args = cached.args(stream.to_str().unwrap(), "cache/from:v1", &[]);
    let json = push_json(&nixpush, &args);
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_eq!(
        diff_ids(&json)[..1],
        base_diff_ids.as_array().unwrap()[..],
        "the base's layer first"
    );
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(
        podman_run(pinned, &[], &[]),
        "hello from a cached dockerTools image\n"
    );
    // The customisation layer's /bin (a link into the app) hides the base's: its busybox.
    assert_eq!(
        podman_run(pinned, &["--entrypoint", &busybox], &["cat", "/greeting"]),
        "from the cached base image\n",
        "the base's file is there"
    );

    // Unchanged: the conf.json's NAR (a few hundred bytes) is the only one read, not the base's.
    let before = cached.server.nar_downloads().len();
    let again = push_json(&nixpush, &args);
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        cached.server.nar_downloads()[before..],
        [cached.cache.nar_request_path(&conf)]
    );

    // A base whose NAR is not the one its narinfo signs: one line, nothing tagged.
    let forged = FromCache::serve(forged);
    forged.push_refused(
        stream.to_str().unwrap(),
        "cache/from:v1",
        &[],
        &["hash", base.to_str().unwrap()],
    );
    assert_not_in_store(&closure);
}
