//! Push, then read back with real clients: skopeo copies the image into an OCI layout, umoci
//! unpacks it, and the unpacked tree must equal the closure byte for byte. Each layer blob must
//! decompress to the oracle's bytes and match the config's diff_ids.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;

#[test]
fn edge_closure_round_trips_through_skopeo_and_umoci() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/edge/all:v1", registry.host());
    let installable = fixture("edge", "all");
    let pinned = nixpush.run(&[&installable, &image]).assert_ok().to_owned();
    let prefix = format!("{}/edge/all@sha256:", registry.host());
    assert!(pinned.starts_with(&prefix), "stdout was {pinned:?}");

    let closure = nix_closure(&nix_build(&installable));
    let copy = OciCopy::pull(&image);
    // The manifest skopeo copied is the one nixpush reported.
    assert_eq!(
        format!("{}/edge/all@{}", registry.host(), copy.manifest_digest),
        pinned
    );
    assert_eq!(
        copy.manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = copy.config();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["created"], "1970-01-01T00:00:01Z");

    // Every layer is exactly the oracle's tar of the store paths it holds, and its diff_id is
    // the config's; together the layers hold the closure, each store path once.
    let layers = copy.manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        closure.len() + 1,
        "one layer per store path by default, and the generated root filesystem"
    );
    let checks = copy.checked_layers();
    let mut seen: Vec<PathBuf> = Vec::new();
    for ((layer, diff_id), check) in layers.iter().zip(diff_ids).zip(&checks) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(&check["diff_id"], diff_id);
        seen.extend(
            check["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| PathBuf::from(p.as_str().unwrap())),
        );
    }
    assert_eq!(diff_ids.len(), checks.len());
    let unique: BTreeSet<&PathBuf> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a store path is in two layers");
    assert_eq!(unique.into_iter().cloned().collect::<Vec<_>>(), closure);

    // Dependencies first: no layer needs a store path from a layer above it.
    assert_dependencies_first(&seen);

    let rootfs = copy.unpack();
    let unpacked: BTreeSet<String> = std::fs::read_dir(rootfs.join("nix/store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = closure
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(unpacked, expected);
    for path in &closure {
        assert_same_tree(path, &rootfs.join(path.strip_prefix("/").unwrap()));
    }

    // Around the store: the generated root filesystem, and nothing else.
    let top: BTreeSet<String> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        top,
        BTreeSet::from(["etc".into(), "nix".into(), "tmp".into()])
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:") && passwd.contains("\nnobody:x:65534:65534:"),
        "{passwd}"
    );
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
}

/// Each store path comes after every store path it references.
fn assert_dependencies_first(order: &[PathBuf]) {
    for (i, path) in order.iter().enumerate() {
        let out = std::process::Command::new("nix")
            .args(["path-info", "--json"])
            .arg(path)
            .envs([("NIX_REMOTE", "local")])
            .env("NIX_CONF_DIR", repo_root().join("fixtures"))
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for r in info[0]["references"].as_array().unwrap() {
            let r = PathBuf::from(r.as_str().unwrap());
            if r != *path {
                let at = order.iter().position(|p| *p == r).unwrap();
                assert!(
                    at < i,
                    "{} is layered above {}, which needs it",
                    r.display(),
                    path.display()
                );
            }
        }
    }
}

/// `unpacked` has the same entries as `original`: types, modes, symlink targets and contents
/// (a hard-linked file comes back as a regular file with the same content).
fn assert_same_tree(original: &Path, unpacked: &Path) {
    let a = std::fs::symlink_metadata(original).unwrap();
    let b = std::fs::symlink_metadata(unpacked)
        .unwrap_or_else(|e| panic!("{} is missing from the image: {e}", original.display()));
    assert_eq!(
        a.file_type(),
        b.file_type(),
        "type of {}",
        original.display()
    );
    if a.file_type().is_symlink() {
        assert_eq!(
            std::fs::read_link(original).unwrap(),
            std::fs::read_link(unpacked).unwrap(),
            "target of {}",
            original.display()
        );
        return;
    }
    assert_eq!(
        a.mode() & 0o7777,
        b.mode() & 0o7777,
        "mode of {}",
        original.display()
    );
    if a.is_file() {
        assert_eq!(
            std::fs::read(original).unwrap(),
            std::fs::read(unpacked).unwrap(),
            "content of {}",
            original.display()
        );
        return;
    }
    let names = |d: &Path| -> BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    let (na, nb) = (names(original), names(unpacked));
    assert_eq!(na, nb, "entries of {}", original.display());
    for n in na {
        assert_same_tree(&original.join(&n), &unpacked.join(&n));
    }
}

#[test]
fn past_max_layers_dependencies_share_a_layer_and_the_root_keeps_its_own() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/edge/capped:v1", registry.host());
    let installable = fixture("edge", "all");
    nixpush
        .run(&[&installable, &image, "--max-layers", "3"])
        .assert_ok();
    let closure = nix_closure(&nix_build(&installable));
    let copy = OciCopy::pull(&image);
    let layers = copy.manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let counts: Vec<usize> = copy
        .checked_layers()
        .iter()
        .map(|check| check["paths"].as_array().unwrap().len())
        .collect();
    // Two layers of store paths (every dependency together, then the closure's root alone, as
    // a new version changes it), then the root filesystem, which holds no store path.
    assert_eq!(counts, [closure.len() - 1, 1, 0]);
}

#[test]
fn the_platform_comes_from_the_derivation_not_the_machine() {
    let registry = Registry::start();
    let image = format!("{}/demo/arm:v1", registry.host());
    Nixpush::new()
        .run(&[
            &format!(
                "path:{}/fixtures/demo#packages.aarch64-linux.app",
                repo_root().display()
            ),
            &image,
        ])
        .assert_ok();
    let config = OciCopy::pull_platform(&image, "arm64").config();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["os"], "linux");
}

#[test]
fn the_hard_link_fixture_really_has_hard_links() {
    // The round trip covers hard links only if the store kept them (no auto-optimise, built here).
    use std::os::unix::fs::MetadataExt;
    let closure = nix_closure(&nix_build(&fixture("edge", "all")));
    let dir = closure
        .iter()
        .find(|p| p.to_str().unwrap().ends_with("-hardlinks"))
        .unwrap();
    assert_eq!(std::fs::metadata(dir.join("original")).unwrap().nlink(), 3);
}

#[test]
fn dry_run_plans_without_touching_a_registry() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("edge", "all"),
        &format!("{}/edge/dry:v1", registry.host()),
        "--dry-run",
        "--max-layers",
        "4",
    ]);
    let plan = run.assert_ok();
    let closure = nix_closure(&nix_build(&fixture("edge", "all")));
    assert!(
        plan.starts_with(&format!(
            "{}/edge/dry:v1\nplatform linux/amd64, 4 layers",
            registry.host()
        )),
        "{plan}"
    );
    let listed: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("/nix/store/"))
        .collect();
    let expected: Vec<String> = closure.iter().map(|p| p.display().to_string()).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every store path listed once:\n{plan}");
    assert_eq!(plan.matches("\nlayer ").count(), 4);
    assert!(
        registry.log().lines().all(|l| !l.contains("nixpush/")),
        "nixpush talked to the registry"
    );
}
