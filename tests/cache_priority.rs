//! Nix's configured substituters are asked in their `Priority` order, as Nix asks them: each
//! cache's `nix-cache-info` says its priority, lower first, whatever the order of the
//! `substituters` setting. Two caches written by `nix copy` hold the same closure (deleted from
//! the store), each signed by a key of its own and served over HTTP with an access log.

use crate::common;

use std::path::Path;

use common::binary_cache::*;
use common::cached_closure::*;
use common::*;

/// Makes the cache in `dir` say `priority` in its `nix-cache-info`.
fn set_priority(dir: &Path, priority: u32) {
    std::fs::write(
        dir.join("nix-cache-info"),
        format!("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: {priority}\n"),
    )
    .unwrap();
}

#[test]
fn nix_s_configured_caches_are_asked_in_their_priority_order() {
    let app = Built::attr("cached-24");
    let oracle = app.oracle_diff_ids();
    let listed_first = SignedCache::copy(&app.closure, "nixpush-test-priority-60");
    let listed_second = SignedCache::copy(&app.closure, "nixpush-test-priority-30");
    delete_from_store(&app.closure);
    set_priority(listed_first.cache.dir(), 60);
    set_priority(listed_second.cache.dir(), 30);
    let first = CacheServer::serve(listed_first.cache.dir());
    let second = CacheServer::serve(listed_second.cache.dir());

    // The test bed's nix.conf with both caches, the one of priority 60 listed first.
    let conf_dir = nix_conf_with_caches(
        &[&first.url(), &second.url()],
        &[&listed_first.key.public, &listed_second.key.public],
    );

    let registry = Registry::start();
    let image = format!("{}/cache/app:v1", registry.host());
    let run = Nixpush::new().run_with(
        &[app.top(), &image, "--system", SYSTEM, "--json"],
        &[("NIX_CONF_DIR", conf_dir.path().display().to_string())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_layers_are_the_oracles(&json, &oracle);
    // Priority 30 was asked first and had everything: every NAR came from it...
    assert_eq!(
        downloaded(&second),
        nar_paths(&listed_second.cache, &app.closure_paths())
    );
    // ...and of the cache listed first, only its nix-cache-info was read.
    let asked: Vec<String> = first.requests().into_iter().map(|(_, p)| p).collect();
    assert_eq!(asked, ["/nix-cache-info"], "{}", first.log());
    assert_not_in_store(&app.closure);
}
