//! Publishing straight from a Nix binary cache (`--substituter`): a closure that is not in the
//! local store is read from the caches' narinfos and NARs, never written to the store, and gives
//! the very image the local store gives (diff_ids, blobs, manifest). Each cache is written by
//! `nix copy` itself, served by a real HTTP server whose access log says what was downloaded,
//! and the closure is deleted from the store first. A broken cache (a signature, a key, a NAR's
//! bytes, a missing path, a cache that does not answer) is one line, exit code 1, and no tag.
//!
//! Every test deletes the closure of its own fixture attribute (fixtures/cache): tests run
//! concurrently, and no two of them touch the same store path.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::binary_cache::*;
use common::*;

/// The system the fixtures are built for, as `--system` takes it.
const SYSTEM: &str = "x86_64-linux";

/// A fixture app of fixtures/cache, built: its store path and its closure.
struct Built {
    top: PathBuf,
    closure: Vec<PathBuf>,
}

impl Built {
    fn attr(attr: &str) -> Built {
        let top = nix_build(&fixture("cache", attr)).remove(0);
        let closure = nix_closure(std::slice::from_ref(&top));
        assert!(closure.len() >= 2, "an app and its busybox: {closure:?}");
        Built { top, closure }
    }

    fn top(&self) -> &str {
        self.top.to_str().unwrap()
    }

    /// The other path of the closure (the app's busybox).
    fn dependency(&self) -> &Path {
        let deps: Vec<&PathBuf> = self.closure.iter().filter(|p| **p != self.top).collect();
        assert_eq!(deps.len(), 1, "{:?}", self.closure);
        deps[0]
    }

    /// The diff_id of a layer of each store path of the closure, by the Python tarfile oracle,
    /// read while the paths are still in the store.
    fn oracle_diff_ids(&self) -> BTreeMap<String, String> {
        self.closure
            .iter()
            .map(|p| {
                let diff_id = oracle_diff_id(std::slice::from_ref(p), &[]);
                (p.to_str().unwrap().to_owned(), diff_id)
            })
            .collect()
    }
}

/// nixpush's arguments to push `path` to `image` from the caches at `urls` (in that order),
/// trusting `keys`, for x86_64-linux, with the `--json` document on stdout; then `extra`.
fn from_cache(
    path: &str,
    image: &str,
    urls: &[&str],
    keys: &[&str],
    extra: &[&str],
) -> Vec<String> {
    let mut args = vec![path.to_owned(), image.to_owned()];
    for url in urls {
        args.extend(["--substituter".to_owned(), (*url).to_owned()]);
    }
    for key in keys {
        args.extend(["--trusted-public-key".to_owned(), (*key).to_owned()]);
    }
    args.extend(["--system", SYSTEM, "--json"].map(str::to_owned));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// `app` pushed from the local store (with `extra`) to a fresh registry as `cache/app:v1`: the
/// registry (kept running), the image, and the `--json` document a push from a cache must
/// equal.
fn push_from_the_local_store(app: &Built, extra: &[&str]) -> (Registry, String, serde_json::Value) {
    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let mut args = vec![app.top(), image.as_str()];
    args.extend(extra);
    args.push("--json");
    let json = push_json(
        &Nixpush::new(),
        &args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
    );
    (registry, image, json)
}

/// Runs nixpush with `args` and returns its `--json` document, failing the test if it fails.
fn push_json(nixpush: &Nixpush, args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = nixpush.run(&args);
    serde_json::from_str(run.assert_ok()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// Runs nixpush with `args`, expecting it to fail.
fn push_failing(args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nixpush::new().run(&args)
}

/// What two pushes of the same image must agree on: the manifest and config digests, the
/// platform, and each layer's blob digest, size, diff_id and store paths, in order.
fn image_facts(json: &serde_json::Value) -> serde_json::Value {
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{json}");
    let image = &images[0];
    let layers: Vec<serde_json::Value> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            serde_json::json!({
                "digest": l["digest"],
                "size": l["size"],
                "diffId": l["diffId"],
                "storePaths": l["storePaths"],
            })
        })
        .collect();
    serde_json::json!({
        "manifestDigest": image["manifestDigest"],
        "configDigest": image["configDigest"],
        "platform": image["platform"],
        "layers": layers,
    })
}

/// Each store path's layer has the oracle's diff_id, and the layers hold the whole closure.
fn assert_layers_are_the_oracles(json: &serde_json::Value, oracle: &BTreeMap<String, String>) {
    let mut seen = BTreeSet::new();
    for layer in json["images"][0]["layers"].as_array().unwrap() {
        let paths: Vec<&str> = layer["storePaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        if let [path] = paths[..] {
            assert_eq!(layer["diffId"], oracle[path], "layer of {path}");
        }
        seen.extend(paths);
    }
    let closure: BTreeSet<&str> = oracle.keys().map(String::as_str).collect();
    assert_eq!(seen, closure);
}

/// The one-line error of a failed push: exit code 1, nothing on stdout, the line prefixed.
fn assert_error(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 1, "exit code; stderr:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {:?}", run.stdout);
    let line = run.error_line();
    assert!(line.starts_with("nixpush: error: "), "last line: {line:?}");
    for n in needles {
        assert!(line.contains(n), "{line:?} should mention {n:?}");
    }
}

/// The error line names one of `paths`.
fn assert_names_one_of(run: &Run, paths: &[PathBuf]) {
    let line = run.error_line();
    assert!(
        paths.iter().any(|p| line.contains(p.to_str().unwrap())),
        "{line:?} should name one of {paths:?}"
    );
}

/// `app`'s closure copied to a fresh cache as a plain `nix copy` writes it (xz, no listings),
/// signed by a fresh key named `key_name`, then deleted from the local store.
fn only_in_a_signed_cache(app: &Built, key_name: &str) -> (SigningKey, BinaryCache) {
    let key = SigningKey::generate(key_name);
    let cache = BinaryCache::new();
    cache.copy(&app.closure, &CopyOptions::signed(&key));
    delete_from_store(&app.closure);
    (key, cache)
}

/// The NAR request paths a cache serves for `paths`.
fn nar_paths(cache: &BinaryCache, paths: &[&Path]) -> BTreeSet<String> {
    paths.iter().map(|p| cache.nar_request_path(p)).collect()
}

fn downloaded(server: &CacheServer) -> BTreeSet<String> {
    server.nar_downloads().into_iter().collect()
}

/// Every blob request the registry has had, of any method.
fn blob_requests(registry: &Registry) -> usize {
    ["HEAD", "GET", "POST", "PATCH", "PUT", "DELETE"]
        .iter()
        .map(|m| registry.requests(m, "/blobs/"))
        .sum()
}

#[test]
fn a_closure_only_in_an_http_cache_gives_the_image_of_the_local_store() {
    let app = Built::attr("cached-1");
    let entrypoint = format!("{}/bin/app", app.top());
    let (_local_registry, local_image, local) =
        push_from_the_local_store(&app, &["--entrypoint", &entrypoint, "--sbom"]);
    let oracle = app.oracle_diff_ids();
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-1");

    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &image,
            &[&server.url()],
            &[&key.public],
            &["--entrypoint", &entrypoint, "--sbom"],
        ),
    );

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
    assert_eq!(skopeo_raw(&image), skopeo_raw(&local_image));
    // Every NAR of the closure came from the cache.
    let closure: Vec<&Path> = app.closure.iter().map(PathBuf::as_path).collect();
    assert_eq!(downloaded(&server), nar_paths(&cache, &closure));
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
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-2");

    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(app.top(), &image, &[&cache.file_url()], &[&key.public], &[]),
    );
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_layers_are_the_oracles(&json, &oracle);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 200);
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unchanged_repush_from_the_cache_downloads_no_nar_and_uploads_nothing() {
    let app = Built::attr("cached-3");
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-3");
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let args = from_cache(app.top(), &image, &[&server.url()], &[&key.public], &[]);

    let first = push_json(&Nixpush::new(), &args);
    assert_eq!(server.nar_downloads().len(), app.closure.len());
    let requests_before = server.requests().len();
    let blobs_before = blob_requests(&registry);
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
    assert_eq!(blob_requests(&registry), blobs_before, "{}", registry.log());
    assert_eq!(registry.requests("PUT", "/manifests/"), manifests_before);
    assert_not_in_store(&app.closure);
}

#[test]
fn every_nar_compression_gives_the_manifest_of_the_local_store() {
    let big = Built::attr("cached-big");
    let (_local_registry, _, local) = push_from_the_local_store(&big, &[]);
    let key = SigningKey::generate("nixpush-test-cache-big");
    let caches: Vec<(NarCompression, BinaryCache)> = NarCompression::ALL
        .iter()
        .map(|&compression| {
            let cache = BinaryCache::new();
            cache.copy(
                &big.closure,
                &CopyOptions {
                    key: Some(&key),
                    compression,
                    listings: false,
                },
            );
            assert_eq!(cache.field(&big.top, "Compression"), compression.name());
            (compression, cache)
        })
        .collect();
    delete_from_store(&big.closure);

    for (compression, cache) in &caches {
        let server = CacheServer::serve(cache.dir());
        let registry = Registry::start();
        let image = format!("{}/cache/big:{}", registry.host(), compression.name());
        let json = push_json(
            &Nixpush::new(),
            &from_cache(big.top(), &image, &[&server.url()], &[&key.public], &[]),
        );
        assert_eq!(image_facts(&json), image_facts(&local), "{compression:?}");
        let downloads = server.nar_downloads();
        assert_eq!(downloads.len(), big.closure.len(), "{compression:?}");
        for nar in &downloads {
            assert!(nar.ends_with(compression.extension()), "{nar}");
        }
    }
    assert_not_in_store(&big.closure);
}

#[test]
fn a_narinfo_whose_signature_was_altered_is_refused() {
    let app = Built::attr("cached-4");
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-4");
    cache.corrupt_signature(&app.top);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &image,
        &[&server.url()],
        &[&key.public],
        &[],
    ));
    assert_error(&run, &["signature", app.top()]);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn a_narinfo_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let app = Built::attr("cached-5");
    let signer = SigningKey::generate("nixpush-test-cache-5");
    let trusted = SigningKey::generate("nixpush-test-other-5");
    let cache = BinaryCache::new();
    cache.copy(&app.closure, &CopyOptions::signed(&signer));
    delete_from_store(&app.closure);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &image,
        &[&server.url()],
        &[&trusted.public],
        &[],
    ));
    assert_error(&run, &["signature", &signer.name]);
    assert_names_one_of(&run, &app.closure);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unsigned_narinfo_is_refused_unless_signatures_are_not_checked() {
    let app = Built::attr("cached-6");
    let (_local_registry, _, local) = push_from_the_local_store(&app, &[]);
    let key = SigningKey::generate("nixpush-test-cache-6");
    let cache = BinaryCache::new();
    cache.copy(
        &app.closure,
        &CopyOptions {
            key: None,
            compression: NarCompression::Xz,
            listings: false,
        },
    );
    let narinfo = std::fs::read_to_string(cache.narinfo_file(&app.top)).unwrap();
    assert!(!narinfo.contains("Sig:"), "{narinfo}");
    delete_from_store(&app.closure);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let refused = format!("{}/cache/app:refused", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &refused,
        &[&server.url()],
        &[&key.public],
        &[],
    ));
    assert_error(&run, &["signature"]);
    assert_names_one_of(&run, &app.closure);
    assert_eq!(registry.manifest_status("cache/app", "refused", None), 404);
    assert!(server.nar_downloads().is_empty(), "{}", server.log());

    // The explicit opt-in: the same image as the local store's.
    let accepted = format!("{}/cache/app:accepted", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &accepted,
            &[&server.url()],
            &[],
            &["--no-check-sigs"],
        ),
    );
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_eq!(registry.manifest_status("cache/app", "accepted", None), 200);
    assert_not_in_store(&app.closure);
}

#[test]
fn a_nar_whose_bytes_differ_from_its_nar_hash_is_refused() {
    let app = Built::attr("cached-7");
    let key = SigningKey::generate("nixpush-test-cache-7");
    let uncompressed = CopyOptions {
        key: Some(&key),
        compression: NarCompression::None,
        listings: false,
    };
    // One byte of the app's script changed, the narinfo (and its signature) left alone; in the
    // second cache the narinfo's FileHash (unsigned) is made to match the tampered file too.
    let stale_file_hash = BinaryCache::new();
    stale_file_hash.copy(&app.closure, &uncompressed);
    let matching_file_hash = BinaryCache::new();
    matching_file_hash.copy(&app.closure, &uncompressed);
    delete_from_store(&app.closure);
    let (from, to) = (
        b"echo hello from cached app 7",
        b"echo Hello from cached app 7",
    );
    stale_file_hash.tamper_nar(&app.top, from, to, false);
    matching_file_hash.tamper_nar(&app.top, from, to, true);

    for (what, cache) in [
        ("FileHash stale", &stale_file_hash),
        ("FileHash matching", &matching_file_hash),
    ] {
        let server = CacheServer::serve(cache.dir());
        let registry = Registry::start();
        let image = format!("{}/cache/app:v1", registry.host());
        let run = push_failing(&from_cache(
            app.top(),
            &image,
            &[&server.url()],
            &[&key.public],
            &[],
        ));
        assert_error(&run, &["hash", app.top()]);
        assert_eq!(
            registry.manifest_status("cache/app", "v1", None),
            404,
            "{what}"
        );
    }
    assert_not_in_store(&app.closure);
}

#[test]
fn a_path_missing_from_every_cache_is_named() {
    let app = Built::attr("cached-8");
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-8");
    let busybox = app.dependency().to_owned();
    cache.remove_narinfo(&busybox);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &image,
        &[&server.url()],
        &[&key.public],
        &[],
    ));
    assert_error(&run, &[busybox.to_str().unwrap()]);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unreachable_cache_is_named() {
    let app = Built::attr("cached-9");
    delete_from_store(&app.closure);
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let key = SigningKey::generate("nixpush-test-cache-9");
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let run = push_failing(&from_cache(app.top(), &image, &[&url], &[&key.public], &[]));
    assert_error(&run, &[&url]);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn without_a_system_a_push_from_the_cache_stops_and_names_the_flag() {
    let app = Built::attr("cached-10");
    let key = SigningKey::generate("nixpush-test-cache-10");
    let cache = BinaryCache::new();
    cache.copy(&app.closure, &CopyOptions::signed(&key));
    let narinfo = std::fs::read_to_string(cache.narinfo_file(&app.top)).unwrap();
    assert!(!narinfo.contains("System:"), "{narinfo}");
    // A machine that has neither the paths nor the derivations that built them.
    let derivers: Vec<PathBuf> = app.closure.iter().map(|p| deriver(p)).collect();
    delete_from_store(&app.closure);
    delete_from_store(&derivers);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let mut args = from_cache(app.top(), &image, &[&server.url()], &[&key.public], &[]);
    let at = args.iter().position(|a| a == "--system").unwrap();
    args.drain(at..at + 2);
    let run = push_failing(&args);
    assert_error(&run, &["--system"]);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn a_fleet_update_from_the_cache_downloads_only_the_changed_paths_nar() {
    let v1 = Built::attr("fleet-v1");
    let v2 = Built::attr("fleet-v2");
    assert_eq!(v1.dependency(), v2.dependency(), "one busybox for both");
    let key = SigningKey::generate("nixpush-test-cache-fleet");
    let cache = BinaryCache::new();
    cache.copy(
        &[v1.top.clone(), v2.top.clone()],
        &CopyOptions::signed(&key),
    );
    let all: Vec<PathBuf> = vec![v2.top.clone(), v1.top.clone(), v1.dependency().to_owned()];
    delete_from_store(&all);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();
    let nixpush = Nixpush::new();

    let first = format!("{}/fleet/app:v1", registry.host());
    push_json(
        &nixpush,
        &from_cache(v1.top(), &first, &[&server.url()], &[&key.public], &[]),
    );
    let v1_paths: Vec<&Path> = v1.closure.iter().map(PathBuf::as_path).collect();
    assert_eq!(downloaded(&server), nar_paths(&cache, &v1_paths));
    let nars_before = server.nar_downloads().len();
    let uploads_before = registry.uploads_started();
    let patches_before = registry.requests("PATCH", "/blobs/uploads/");

    let second = format!("{}/fleet/app:v2", registry.host());
    let entrypoint = format!("{}/bin/app", v2.top());
    let json = push_json(
        &nixpush,
        &from_cache(
            v2.top(),
            &second,
            &[&server.url()],
            &[&key.public],
            &["--entrypoint", &entrypoint],
        ),
    );
    assert_eq!(
        server.nar_downloads()[nars_before..],
        [cache.nar_request_path(&v2.top)],
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
    let key = SigningKey::generate("nixpush-test-cache-11");
    let cache = BinaryCache::new();
    cache.copy(
        &app.closure,
        &CopyOptions {
            key: Some(&key),
            compression: NarCompression::Xz,
            listings: true,
        },
    );
    assert!(cache
        .dir()
        .join(format!("{}.ls", hash_part(&app.top)))
        .is_file());
    delete_from_store(&app.closure);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &image,
            &[&server.url()],
            &[&key.public],
            &["--entrypoint", "bin/app"],
        ),
    );
    let config = skopeo_inspect(&image, "--config");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([format!("{}/bin/app", app.top())])
    );
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 11\n");

    // A file the store path does not have: the local store's error, exit code 1.
    let missing = format!("{}/cache/app:missing", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &missing,
        &[&server.url()],
        &[&key.public],
        &["--entrypoint", "bin/nope"],
    ));
    assert_error(&run, &["\"bin/nope\"", app.top()]);
    assert_eq!(registry.manifest_status("cache/app", "missing", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn caches_are_asked_in_the_order_given() {
    let app = Built::attr("cached-12");
    let busybox = app.dependency().to_owned();
    let (first_key, second_key) = (
        SigningKey::generate("nixpush-test-cache-12a"),
        SigningKey::generate("nixpush-test-cache-12b"),
    );
    // The first cache has only the busybox; the second has the whole closure.
    let first = BinaryCache::new();
    first.copy(
        std::slice::from_ref(&busybox),
        &CopyOptions::signed(&first_key),
    );
    assert!(!first.narinfo_file(&app.top).exists());
    let second = BinaryCache::new();
    second.copy(&app.closure, &CopyOptions::signed(&second_key));
    let oracle = app.oracle_diff_ids();
    delete_from_store(&app.closure);
    let (first_server, second_server) = (
        CacheServer::serve(first.dir()),
        CacheServer::serve(second.dir()),
    );
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &image,
            &[&first_server.url(), &second_server.url()],
            &[&first_key.public, &second_key.public],
            &[],
        ),
    );
    assert_layers_are_the_oracles(&json, &oracle);
    assert_eq!(downloaded(&first_server), nar_paths(&first, &[&busybox]));
    assert_eq!(downloaded(&second_server), nar_paths(&second, &[&app.top]));
    assert_not_in_store(&app.closure);
}

#[test]
fn without_substituter_flags_the_caches_nix_is_configured_with_are_used() {
    let app = Built::attr("cached-13");
    let key = SigningKey::generate("nixpush-test-cache-13");
    let cache = BinaryCache::new();
    cache.copy(&app.closure, &CopyOptions::signed(&key));
    let oracle = app.oracle_diff_ids();
    delete_from_store(&app.closure);
    let server = CacheServer::serve(cache.dir());

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

    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let run = Nixpush::new().run_with(
        &[app.top(), &image, "--system", SYSTEM, "--json"],
        &conf_env,
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_layers_are_the_oracles(&json, &oracle);
    let closure: Vec<&Path> = app.closure.iter().map(PathBuf::as_path).collect();
    assert_eq!(downloaded(&server), nar_paths(&cache, &closure));
    // Nix was told of the cache too, and still nothing was substituted into the store.
    assert_not_in_store(&app.closure);
}

#[test]
fn a_relative_entrypoint_without_a_listing_is_checked_in_the_top_paths_nar() {
    let app = Built::attr("cached-14");
    let key = SigningKey::generate("nixpush-test-cache-14");
    let cache = BinaryCache::new();
    // `nix copy`'s default: no `.ls` listings.
    cache.copy(&app.closure, &CopyOptions::signed(&key));
    assert!(!cache
        .dir()
        .join(format!("{}.ls", hash_part(&app.top)))
        .exists());
    delete_from_store(&app.closure);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &image,
            &[&server.url()],
            &[&key.public],
            &["--entrypoint", "bin/app"],
        ),
    );
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 14\n");

    // Not in the NAR: the layer of the top path fails as it is read, and nothing is tagged.
    let missing = format!("{}/cache/app:missing", registry.host());
    let run = push_failing(&from_cache(
        app.top(),
        &missing,
        &[&server.url()],
        &[&key.public],
        &["--entrypoint", "bin/nope", "--no-cache"],
    ));
    assert_error(&run, &["\"bin/nope\"", app.top()]);
    assert_eq!(registry.manifest_status("cache/app", "missing", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn a_system_that_contradicts_the_derivation_at_hand_is_a_usage_error() {
    // In the local store, with its derivation: --system must agree with it.
    let app = Built::attr("cached-15");
    let registry = Registry::start();
    let image = format!("{}/local/app:v1", registry.host());
    let run = Nixpush::new().run(&[app.top(), &image, "--system", "aarch64-linux"]);
    assert_eq!(run.code, 2, "stderr:\n{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("aarch64-linux") && line.contains("x86_64-linux") && line.contains(app.top()),
        "{line:?}"
    );
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

    let key = SigningKey::generate("nixpush-test-cache-docker");
    let cache = BinaryCache::new();
    cache.copy(&closure, &CopyOptions::signed(&key));
    delete_from_store(&closure);
    let server = CacheServer::serve(cache.dir());
    let registry = Registry::start();

    // The stream script, as `./result` of streamLayeredImage names it.
    let image = format!("{}/cache/docker:v1", registry.host());
    let push_stream = || {
        push_json(
            &Nixpush::new(),
            &from_cache(
                stream.to_str().unwrap(),
                &image,
                &[&server.url()],
                &[&key.public],
                &[],
            ),
        )
    };
    let json = push_stream();
    assert_eq!(image_facts(&json), image_facts(&local_json));
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(
        podman_run(pinned, &[], &[]),
        "hello from a cached dockerTools image\n"
    );

    // Unchanged, from an empty nixpush cache: the conf.json's NAR (a few hundred bytes: the
    // layering is in it) is the only one read; no layer's, not even the customisation layer's.
    let before = server.nar_downloads().len();
    let again = push_stream();
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        server.nar_downloads()[before..],
        [cache.nar_request_path(&conf)]
    );

    // The conf.json itself names the same image.
    let by_conf = format!("{}/cache/conf:v1", registry.host());
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            conf.to_str().unwrap(),
            &by_conf,
            &[&server.url()],
            &[&key.public],
            &[],
        ),
    );
    assert_eq!(image_facts(&json), image_facts(&local_json));
    assert_not_in_store(&closure);
}

#[test]
fn a_nar_download_cut_or_stalled_midway_is_fetched_again() {
    // A cut download resumes with `Range` where the cache serves ranges, and starts over
    // (skipping what was read) where it does not.
    for (attr, fault, ranges) in [
        ("cached-16", "cut", true),
        ("cached-17", "stall", true),
        ("cached-18", "cut", false),
    ] {
        let app = Built::attr(attr);
        let busybox = app.dependency().to_owned();
        let key = SigningKey::generate(&format!("nixpush-test-{attr}"));
        let cache = BinaryCache::new();
        cache.copy(&app.closure, &CopyOptions::signed(&key));
        // The first download of each NAR breaks after 64 KiB: busybox's (about 1 MiB) does.
        assert!(std::fs::metadata(cache.nar_file(&busybox)).unwrap().len() > 65536);
        delete_from_store(&app.closure);
        let mut options = vec!["--fault", fault, "--after", "65536"];
        if !ranges {
            options.push("--no-ranges");
        }
        let server = CacheServer::serve_with(cache.dir(), &options);
        let registry = Registry::start();

        let image = format!("{}/cache/app:v1", registry.host());
        let json = push_json(
            &Nixpush::new(),
            &from_cache(
                app.top(),
                &image,
                &[&server.url()],
                &[&key.public],
                &["--stall-timeout", "2s"],
            ),
        );
        let busybox_nar = cache.nar_request_path(&busybox);
        let tries = server
            .nar_downloads()
            .iter()
            .filter(|p| **p == busybox_nar)
            .count();
        // Fetched again (a stall may also restart the layer's upload, which opens it once
        // more), and the image is whole.
        assert!(tries >= 2, "{fault}: {:?}", server.nar_downloads());
        // Where ranges are served, the second download asked for the rest only.
        let resumed = server
            .log()
            .contains(&format!("\"GET {busybox_nar} HTTP/1.1\" 206"));
        assert_eq!(resumed, ranges, "{}", server.log());
        let pinned = json["images"][0]["reference"].as_str().unwrap();
        let program = format!("{}/bin/app", app.top());
        assert_eq!(
            podman_run(pinned, &[], &[&program]),
            format!("hello from cached app {}\n", &attr["cached-".len()..])
        );
        assert_not_in_store(&app.closure);
    }
}

#[test]
fn a_platform_names_the_system_of_a_path_from_the_cache() {
    let app = Built::attr("cached-19");
    let (key, cache) = only_in_a_signed_cache(&app, "nixpush-test-cache-19");
    let registry = Registry::start();

    // No --system: the platform the path is declared for says it, as for a multi-arch push.
    let image = format!("{}/cache/multi:v1", registry.host());
    let platform = format!("linux/amd64={}", app.top());
    Nixpush::new()
        .run(&[
            &image,
            "--platform",
            &platform,
            "--substituter",
            &cache.file_url(),
            "--trusted-public-key",
            &key.public,
        ])
        .assert_ok();
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
    assert_not_in_store(&app.closure);
}
