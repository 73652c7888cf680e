//! Publishing straight from a Nix binary cache (`--substituter`): a closure that is not in the
//! local store is read from the caches' narinfos and NARs, never written to the store, and gives
//! the very image the local store gives (diff_ids, blobs, manifest). Each cache is written by
//! `nix copy` itself, served by a real HTTP server whose access log says what was downloaded,
//! and the closure is deleted from the store first (tests/common/cached_closure.rs). Broken
//! caches are in from_cache_faults.rs.
//!
//! Every test deletes the closure of its own fixture attribute (fixtures/cache): tests run
//! concurrently, and no two of them touch the same store path.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::binary_cache::*;
use common::cached_closure::*;
use common::*;

#[test]
fn a_closure_only_in_an_http_cache_gives_the_image_of_the_local_store() {
    let app = Built::attr("cached-1");
    let entrypoint = format!("{}/bin/app", app.top());
    let flags = ["--entrypoint", entrypoint.as_str(), "--sbom"];
    let (_local_registry, local_image, local) = push_from_the_local_store(&app, &flags);
    let oracle = app.oracle_diff_ids();
    let cached = FromCache::only_there(&app);

    let json = cached.push(app.top(), "cache/app:v1", &flags);
    assert_eq!(image_facts(&json), image_facts(&local));
    // The SBOM of the closure as the narinfos tell it is the one the local store gives.
    assert!(local["images"][0]["sbomDigest"].is_string(), "{local}");
    assert_eq!(
        json["images"][0]["sbomDigest"],
        local["images"][0]["sbomDigest"]
    );
    assert_layers_are_the_oracles(&json, &oracle);
    for layer in json["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(layer["action"], "pushed", "{layer}");
    }
    // The same manifest bytes, layer-key annotations included.
    assert_eq!(
        skopeo_raw(&cached.image("cache/app:v1")),
        skopeo_raw(&local_image)
    );
    // Every NAR of the closure came from the cache.
    assert_eq!(cached.downloaded(), cached.nar_paths(&app.closure_paths()));
    // Nothing was written to the local store.
    assert_not_in_store(&app.closure);

    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 1\n");
}

#[test]
fn a_file_cache_gives_the_image_of_the_local_store() {
    let app = Built::attr("cached-2");
    let (_local_registry, _, local) = push_from_the_local_store(&app, &[]);
    let oracle = app.oracle_diff_ids();
    let cached = FromCache::only_there(&app);

    let file_url = cached.cache.file_url();
    let image = cached.image("cache/app:v1");
    let args = from_cache(app.top(), &image, &[&file_url], &[&cached.key.public], &[]);
    let json = push_json(&Nixpush::new(), &args);
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_layers_are_the_oracles(&json, &oracle);
    assert_eq!(
        cached.registry.manifest_status("cache/app", "v1", None),
        200
    );
    // Read from the directory: nothing asked the cache's HTTP server.
    assert!(
        cached.server.requests().is_empty(),
        "{}",
        cached.server.log()
    );
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unchanged_repush_from_the_cache_downloads_no_nar_and_uploads_nothing() {
    let app = Built::attr("cached-3");
    let cached = FromCache::only_there(&app);
    let FromCache {
        server, registry, ..
    } = &cached;
    let args = cached.args(app.top(), "cache/app:v1", &[]);

    let first = push_json(&Nixpush::new(), &args);
    assert_eq!(server.nar_downloads().len(), app.closure.len());
    let requests_before = server.requests().len();
    let blobs_before = blob_requests(registry);
    let manifests_before = registry.requests("PUT", "/manifests/");

    // Another machine, with an empty nixpush cache: the tag's own manifest names every layer
    // by its key, which the narinfos' NAR hashes give.
    let again = push_json(&Nixpush::new(), &args);
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        again["images"][0]["reference"],
        first["images"][0]["reference"]
    );
    let since: Vec<(String, String)> = server.requests().split_off(requests_before);
    for (method, path) in &since {
        assert!(
            path.ends_with(".narinfo") || path == "/nix-cache-info",
            "{method} {path}: only narinfos and nix-cache-info are read"
        );
    }
    assert_eq!(server.nar_downloads().len(), app.closure.len(), "no NAR");
    assert_eq!(blob_requests(registry), blobs_before, "{}", registry.log());
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests_before);
    assert_not_in_store(&app.closure);
}

#[test]
fn every_nar_compression_gives_the_manifest_of_the_local_store() {
    let big = Built::attr("cached-big");
    let (_local_registry, _, local) = push_from_the_local_store(&big, &[]);
    let caches: Vec<(NarCompression, SignedCache)> = NarCompression::ALL
        .iter()
        .map(|&compression| {
            let signed = SignedCache::copy_with(&big.closure, &big.key_name(), compression, false);
            assert_eq!(
                signed.cache.field(&big.top, "Compression"),
                compression.name()
            );
            (compression, signed)
        })
        .collect();
    delete_from_store(&big.closure);

    for (compression, signed) in caches {
        let cached = FromCache::serve(signed);
        let json = cached.push(big.top(), &format!("cache/big:{}", compression.name()), &[]);
        assert_eq!(image_facts(&json), image_facts(&local), "{compression:?}");
        let downloads = cached.server.nar_downloads();
        assert_eq!(downloads.len(), big.closure.len(), "{compression:?}");
        for nar in &downloads {
            assert!(nar.ends_with(compression.extension()), "{nar}");
        }
    }
    assert_not_in_store(&big.closure);
}

#[test]
fn a_fleet_update_from_the_cache_downloads_only_the_changed_paths_nar() {
    let v1 = Built::attr("fleet-v1");
    let v2 = Built::attr("fleet-v2");
    assert_eq!(v1.dependency(), v2.dependency(), "one busybox for both");
    let signed = SignedCache::copy(&[v1.top.clone(), v2.top.clone()], "nixpush-test-fleet");
    let all: Vec<PathBuf> = vec![v2.top.clone(), v1.top.clone(), v1.dependency().to_owned()];
    delete_from_store(&all);
    let cached = FromCache::serve(signed);
    let FromCache {
        server, registry, ..
    } = &cached;
    let nixpush = Nixpush::new();

    push_json(&nixpush, &cached.args(v1.top(), "fleet/app:v1", &[]));
    assert_eq!(cached.downloaded(), cached.nar_paths(&v1.closure_paths()));
    let nars_before = server.nar_downloads().len();
    let uploads_before = registry.uploads_started();
    let patches_before = registry.requests("PATCH", "/blobs/uploads/");

    let entrypoint = format!("{}/bin/app", v2.top());
    let json = push_json(
        &nixpush,
        &cached.args(v2.top(), "fleet/app:v2", &["--entrypoint", &entrypoint]),
    );
    assert_eq!(
        server.nar_downloads()[nars_before..],
        [cached.cache.nar_request_path(&v2.top)],
        "only the new app's NAR"
    );
    // Its layer and the new config went up, nothing else.
    assert_eq!(registry.uploads_started() - uploads_before, 2);
    assert_eq!(
        registry.requests("PATCH", "/blobs/uploads/") - patches_before,
        1
    );
    assert_not_in_store(&all);
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from fleet app v2\n");
}

#[test]
fn a_relative_entrypoint_is_found_in_the_nar_listing() {
    let app = Built::attr("cached-11");
    let signed = SignedCache::copy_with(&app.closure, &app.key_name(), NarCompression::Xz, true);
    let listing = format!("{}.ls", hash_part(&app.top));
    assert!(signed.cache.dir().join(listing).is_file());
    delete_from_store(&app.closure);
    let cached = FromCache::serve(signed);

    let json = cached.push(app.top(), "cache/app:v1", &["--entrypoint", "bin/app"]);
    let config = skopeo_inspect(&cached.image("cache/app:v1"), "--config");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([format!("{}/bin/app", app.top())])
    );
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 11\n");

    // A file the store path does not have: the local store's error, exit code 1.
    cached.push_refused(
        app.top(),
        "cache/app:missing",
        &["--entrypoint", "bin/nope"],
        &["\"bin/nope\"", app.top()],
    );
    assert_not_in_store(&app.closure);
}

#[test]
fn caches_are_asked_in_the_order_given() {
    let app = Built::attr("cached-12");
    let busybox = app.dependency().to_owned();
    // The first cache has only the busybox; the second has the whole closure.
    let first = SignedCache::copy(std::slice::from_ref(&busybox), "nixpush-test-cached-12a");
    assert!(!first.cache.narinfo_file(&app.top).exists());
    let second = SignedCache::copy(&app.closure, "nixpush-test-cached-12b");
    let oracle = app.oracle_diff_ids();
    delete_from_store(&app.closure);
    let first_server = CacheServer::serve(first.cache.dir());
    let second = FromCache::serve(second);

    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &second.image("cache/app:v1"),
            &[&first_server.url(), &second.server.url()],
            &[&first.key.public, &second.key.public],
            &[],
        ),
    );
    assert_layers_are_the_oracles(&json, &oracle);
    assert_eq!(
        downloaded(&first_server),
        nar_paths(&first.cache, &[&busybox])
    );
    assert_eq!(second.downloaded(), second.nar_paths(&[&app.top]));
    assert_not_in_store(&app.closure);
}

#[test]
fn without_substituter_flags_the_caches_nix_is_configured_with_are_used() {
    let app = Built::attr("cached-13");
    let oracle = app.oracle_diff_ids();
    let cached = FromCache::only_there(&app);
    let FromCache { server, key, .. } = &cached;

    // The test bed's nix.conf, with this cache as Nix's substituter and its key trusted.
    let conf_dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo_root().join("fixtures/nix.conf")).unwrap();
    let mut conf: String = base
        .lines()
        .filter(|l| !l.starts_with("substituters"))
        .map(|l| format!("{l}\n"))
        .collect();
    conf.push_str(&format!(
        "substituters = {}\ntrusted-public-keys = {}\n",
        server.url(),
        key.public
    ));
    std::fs::write(conf_dir.path().join("nix.conf"), conf).unwrap();
    let conf_env = [("NIX_CONF_DIR", conf_dir.path().display().to_string())];
    let shown = run_ok(
        nix_env(Command::new("nix").arg("show-config")).env("NIX_CONF_DIR", conf_dir.path()),
        "nix show-config",
    );
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.contains(&format!("substituters = {}", server.url())),
        "{shown}"
    );

    let image = cached.image("cache/app:v1");
    let run = Nixpush::new().run_with(
        &[app.top(), &image, "--system", SYSTEM, "--json"],
        &conf_env,
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_layers_are_the_oracles(&json, &oracle);
    assert_eq!(cached.downloaded(), cached.nar_paths(&app.closure_paths()));
    // Nix was told of the cache too, and still nothing was substituted into the store.
    assert_not_in_store(&app.closure);
}

#[test]
fn a_relative_entrypoint_without_a_listing_is_checked_in_the_top_paths_nar() {
    let app = Built::attr("cached-14");
    // `nix copy`'s default: no `.ls` listings.
    let cached = FromCache::only_there(&app);
    let listing = format!("{}.ls", hash_part(&app.top));
    assert!(!cached.cache.dir().join(listing).exists());

    let json = cached.push(app.top(), "cache/app:v1", &["--entrypoint", "bin/app"]);
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 14\n");

    // Not in the NAR: the layer of the top path fails as it is read, and nothing is tagged.
    cached.push_refused(
        app.top(),
        "cache/app:missing",
        &["--entrypoint", "bin/nope", "--no-cache"],
        &["\"bin/nope\"", app.top()],
    );
    assert_not_in_store(&app.closure);
}

#[test]
fn a_system_that_contradicts_the_derivation_at_hand_is_a_usage_error() {
    // In the local store, with its derivation: --system must agree with it.
    let app = Built::attr("cached-15");
    let registry = Registry::start();
    let image = format!("{}/local/app:v1", registry.host());
    let run = Nixpush::new().run(&[app.top(), &image, "--system", "aarch64-linux"]);
    assert_refused(&run, 2, &["aarch64-linux", "x86_64-linux", app.top()]);
    assert_eq!(registry.manifest_status("local/app", "v1", None), 404);
    // Agreeing with it is no error.
    Nixpush::new()
        .run(&[app.top(), &image, "--system", SYSTEM])
        .assert_ok();
    // A --system that is no Nix system at all is refused before anything runs.
    let run = Nixpush::new().run(&[app.top(), &image, "--system", "amd64"]);
    assert_eq!(run.code, 2, "stderr:\n{}", run.stderr);
}

#[test]
fn a_docker_tools_image_from_the_cache_is_the_one_from_the_local_store() {
    let stream = nix_build(&fixture("cache", "cached-docker")).remove(0);
    let conf = nix_build(&format!("{}.conf", fixture("cache", "cached-docker"))).remove(0);
    let closure = nix_closure(std::slice::from_ref(&stream));
    assert!(
        closure.contains(&conf),
        "the stream script refers to its conf"
    );
    // nixpkgs' own rules give the config (the image ID), from the conf, before it goes.
    let oracle_config = oracle_config_digest(&conf);

    let local = Registry::start();
    let local_json = push_json(
        &Nixpush::new(),
        &[
            fixture("cache", "cached-docker"),
            format!("{}/local/docker:v1", local.host()),
            "--no-default-annotations".into(),
            "--json".into(),
        ],
    );
    assert_eq!(local_json["images"][0]["configDigest"], oracle_config);

    let signed = SignedCache::copy(&closure, "nixpush-test-cached-docker");
    delete_from_store(&closure);
    let cached = FromCache::serve(signed);

    // The stream script, as `./result` of streamLayeredImage names it.
    let push_stream = || cached.push(stream.to_str().unwrap(), "cache/docker:v1", &[]);
    let json = push_stream();
    assert_eq!(image_facts(&json), image_facts(&local_json));
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(
        podman_run(pinned, &[], &[]),
        "hello from a cached dockerTools image\n"
    );

    // Unchanged, from an empty nixpush cache: the conf.json's NAR (a few hundred bytes: the
    // layering is in it) is the only one read; no layer's, not even the customisation layer's.
    let before = cached.server.nar_downloads().len();
    let again = push_stream();
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        cached.server.nar_downloads()[before..],
        [cached.cache.nar_request_path(&conf)]
    );

    // The conf.json itself names the same image.
    let json = cached.push(conf.to_str().unwrap(), "cache/conf:v1", &[]);
    assert_eq!(image_facts(&json), image_facts(&local_json));
    assert_not_in_store(&closure);
}

#[test]
fn a_platform_names_the_system_of_a_path_from_the_cache() {
    let app = Built::attr("cached-19");
    let cached = FromCache::only_there(&app);

    // No --system: the platform the path is declared for says it, as for a multi-arch push.
    let image = cached.image("cache/multi:v1");
    let platform = format!("linux/amd64={}", app.top());
    Nixpush::new()
        .run(&[
            &image,
            "--platform",
            &platform,
            "--substituter",
            &cached.cache.file_url(),
            "--trusted-public-key",
            &cached.key.public,
        ])
        .assert_ok();
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
    assert_not_in_store(&app.closure);
}
