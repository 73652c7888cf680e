//! Warnings are their own kind of event: a push that works around a failure (here, a layer
//! cache it cannot write) still succeeds, says so on stderr as a warning, and lists it in the
//! `--json` document's `warnings` with a kind a machine can match, apart from the phases.

use crate::common;

use common::*;

#[test]
fn an_unwritable_layer_cache_is_a_typed_warning_in_json() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/warned/app:v1", registry.host());
    // A file where the cache directory should be: every write to it fails.
    let blocked = tempfile::NamedTempFile::new().unwrap();
    let run = nixpush.run_with(
        &[&fixture("demo", "app"), &image, "--json"],
        &[("NIXPUSH_CACHE_DIR", blocked.path().display().to_string())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let warnings = json["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty(), "{json}");
    for w in warnings {
        assert_eq!(w["kind"], "cache-not-written", "{json}");
        assert!(
            w["message"]
                .as_str()
                .unwrap()
                .starts_with("could not write the layer cache: "),
            "{w}"
        );
    }
    // Said once each, however many layers met it.
    let messages: std::collections::BTreeSet<&str> = warnings
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), warnings.len(), "{json}");
    // On stderr too, marked as a warning.
    assert!(
        run.stderr
            .contains("warning: could not write the layer cache"),
        "{}",
        run.stderr
    );
    // The image is there all the same.
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(
        skopeo_digest(&image),
        pinned.split_once('@').unwrap().1,
        "the tag names the pushed image"
    );
}
