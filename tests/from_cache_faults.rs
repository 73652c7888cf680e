//! Publishing from a broken Nix binary cache: a signature altered, a key not trusted, a narinfo
//! unsigned, a NAR's bytes not its NAR hash, a path missing, a cache that does not answer, no
//! system said; each is one line, exit code 1, and no tag. A NAR download cut off or stalled is
//! fetched again and the image lands. The caches are written by `nix copy` and served over HTTP
//! (tests/common/cached_closure.rs); the closure is deleted from the store first.
//!
//! Every test deletes the closure of its own fixture attribute (fixtures/cache): tests run
//! concurrently, and no two of them touch the same store path.

use crate::common;

use std::path::PathBuf;

use common::binary_cache::*;
use common::cached_closure::*;
use common::*;

#[test]
fn a_narinfo_whose_signature_was_altered_is_refused() {
    let app = Built::attr("cached-4");
    let cached = FromCache::only_there(&app);
    cached.cache.corrupt_signature(&app.top);

    cached.push_refused(app.top(), "cache/app:v1", &[], &["signature", app.top()]);
    assert_not_in_store(&app.closure);
}

#[test]
fn a_narinfo_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let app = Built::attr("cached-5");
    let cached = FromCache::only_there(&app);
    let trusted = SigningKey::generate("nixpush-test-other-5");

    let args = from_cache(
        app.top(),
        &cached.image("cache/app:v1"),
        &[&cached.server.url()],
        &[&trusted.public],
        &[],
    );
    let run = cached.run_refused("cache/app:v1", &args, &["signature", &cached.key.name]);
    assert_names_one_of(&run, &app.closure);
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unsigned_narinfo_is_refused_unless_signatures_are_not_checked() {
    let app = Built::attr("cached-6");
    let (_local_registry, _, local) = push_from_the_local_store(&app, &[]);
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
    // A key is trusted, but it signed nothing.
    let key = SigningKey::generate(&app.key_name());
    let cached = FromCache::serve(SignedCache { key, cache });

    let run = cached.push_refused(app.top(), "cache/app:refused", &[], &["signature"]);
    assert_names_one_of(&run, &app.closure);
    assert!(
        cached.server.nar_downloads().is_empty(),
        "{}",
        cached.server.log()
    );

    // The explicit opt-in: the same image as the local store's.
    let json = push_json(
        &Nixpush::new(),
        &from_cache(
            app.top(),
            &cached.image("cache/app:accepted"),
            &[&cached.server.url()],
            &[],
            &["--no-check-sigs"],
        ),
    );
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_eq!(
        cached
            .registry
            .manifest_status("cache/app", "accepted", None),
        200
    );
    assert_not_in_store(&app.closure);
}

#[test]
fn a_nar_whose_bytes_differ_from_its_nar_hash_is_refused() {
    let app = Built::attr("cached-7");
    let uncompressed =
        || SignedCache::copy_with(&app.closure, &app.key_name(), NarCompression::None, false);
    // One byte of the app's script changed, the narinfo (and its signature) left alone; in the
    // second cache the narinfo's FileHash (unsigned) is made to match the tampered file too.
    let stale_file_hash = uncompressed();
    let matching_file_hash = uncompressed();
    delete_from_store(&app.closure);
    let (from, to) = (
        b"echo hello from cached app 7",
        b"echo Hello from cached app 7",
    );
    stale_file_hash.cache.tamper_nar(&app.top, from, to, false);
    matching_file_hash
        .cache
        .tamper_nar(&app.top, from, to, true);

    for (what, signed) in [
        ("FileHash stale", stale_file_hash),
        ("FileHash matching", matching_file_hash),
    ] {
        println!("{what}"); // shown if the test fails
        let cached = FromCache::serve(signed);
        cached.push_refused(app.top(), "cache/app:v1", &[], &["hash", app.top()]);
    }
    assert_not_in_store(&app.closure);
}

#[test]
fn a_path_missing_from_every_cache_is_named() {
    let app = Built::attr("cached-8");
    let cached = FromCache::only_there(&app);
    let busybox = app.dependency().to_owned();
    cached.cache.remove_narinfo(&busybox);

    cached.push_refused(app.top(), "cache/app:v1", &[], &[busybox.to_str().unwrap()]);
    assert_not_in_store(&app.closure);
}

#[test]
fn an_unreachable_cache_is_named() {
    let app = Built::attr("cached-9");
    delete_from_store(&app.closure);
    // A port that was free a moment ago: nothing listens there.
    let url = format!("http://127.0.0.1:{}", free_port());
    let key = SigningKey::generate(&app.key_name());
    let registry = Registry::start();

    let image = format!("{}/cache/app:v1", registry.host());
    let run = push_failing(&from_cache(app.top(), &image, &[&url], &[&key.public], &[]));
    assert_refused(&run, 1, &[&url]);
    assert_eq!(registry.manifest_status("cache/app", "v1", None), 404);
    assert_not_in_store(&app.closure);
}

#[test]
fn without_a_system_a_push_from_the_cache_stops_and_names_the_flag() {
    let app = Built::attr("cached-10");
    let signed = SignedCache::copy(&app.closure, &app.key_name());
    let narinfo = std::fs::read_to_string(signed.cache.narinfo_file(&app.top)).unwrap();
    assert!(!narinfo.contains("System:"), "{narinfo}");
    // A machine that has neither the paths nor the derivations that built them.
    let derivers: Vec<PathBuf> = app.closure.iter().map(|p| deriver(p)).collect();
    delete_from_store(&app.closure);
    delete_from_store(&derivers);
    let cached = FromCache::serve(signed);

    let mut args = cached.args(app.top(), "cache/app:v1", &[]);
    let at = args.iter().position(|a| a == "--system").unwrap();
    args.drain(at..at + 2);
    cached.run_refused("cache/app:v1", &args, &["--system"]);
    assert_not_in_store(&app.closure);
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
        let signed = SignedCache::copy(&app.closure, &app.key_name());
        // The first download of each NAR breaks after 64 KiB: busybox's (about 1 MiB) does.
        assert!(
            std::fs::metadata(signed.cache.nar_file(&busybox))
                .unwrap()
                .len()
                > 65536
        );
        delete_from_store(&app.closure);
        let mut options = vec!["--fault", fault, "--after", "65536"];
        if !ranges {
            options.push("--no-ranges");
        }
        let cached = FromCache::serve_with(signed, &options);
        let server = &cached.server;

        let json = cached.push(app.top(), "cache/app:v1", &["--stall-timeout", "2s"]);
        let busybox_nar = cached.cache.nar_request_path(&busybox);
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
