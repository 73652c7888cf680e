//! Two `--sbom` pushes of one image at once, to a registry without the referrers API (a real
//! docker-registry 2.8): both write the fallback tag `sha256-<hex>`, which the distribution spec
//! cannot update atomically. Each must still be listed there when both are done, every round.

use crate::common;

use common::*;

/// Rounds of two concurrent pushes, each to a repository of its own (a fresh fallback tag).
const ROUNDS: usize = 20;

#[test]
fn two_concurrent_sbom_pushes_both_stay_listed_in_the_fallback_tag() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let installable = fixture("demo", "app");
    // Built and pushed once, so each round's pushes only mount the layers and race on the tags.
    let base = format!("{}/race/base:v1", registry.host());
    nixpush.run(&[&installable, &base]).assert_ok();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let image = format!("{}/race/r{round}:v1", registry.host());
        let run = |format: &'static str| {
            let (nixpush, installable, image) = (&nixpush, &installable, &image);
            let base = format!("{}/race/base", registry.host());
            move || {
                nixpush.run(&[
                    installable,
                    image,
                    "--cache-from",
                    &format!("{base}:v1"),
                    "--sbom",
                    "--sbom-format",
                    format,
                    "--json",
                ])
            }
        };
        let (spdx, cyclonedx) = std::thread::scope(|s| {
            let a = s.spawn(run("spdx"));
            let b = s.spawn(run("cyclonedx"));
            (a.join().unwrap(), b.join().unwrap())
        });
        let sbom_of = |r: &common::Run| -> (String, String) {
            let json: serde_json::Value = serde_json::from_str(r.assert_ok()).unwrap();
            let image = &json["images"][0];
            (
                image["reference"].as_str().unwrap().to_owned(),
                image["sbomDigest"].as_str().unwrap().to_owned(),
            )
        };
        let (pinned, spdx_digest) = sbom_of(&spdx);
        let (other, cyclonedx_digest) = sbom_of(&cyclonedx);
        assert_eq!(pinned, other, "one image");
        let index = fallback_referrers(&pinned);
        let listed: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        for wanted in [&spdx_digest, &cyclonedx_digest] {
            if !listed.contains(&wanted.as_str()) {
                lost.push(format!("round {round}: {wanted} missing from {listed:?}"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost an SBOM: {lost:#?}",
        lost.len()
    );
}
