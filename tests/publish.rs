//! CI publishing: multi-arch images under one index, machine-readable output (`--json`,
//! `--digest-file`), and manifest annotations (the flake's provenance, `--annotation`), checked
//! against a real registry with skopeo.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The sha256 of what the registry serves for `image`.
fn raw_digest(image: &str) -> String {
    nixpush::digest::Digest::of(&skopeo_raw(image)).to_string()
}

#[test]
fn multi_arch_pushes_each_image_then_one_index_naming_both() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/multi/app:1.2", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let run = nixpush.run(&["--platform", &amd, "--platform", &arm, &image, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();

    let index = skopeo_inspect(&image, "--raw");
    assert_eq!(index["mediaType"], INDEX);
    let entries = index["manifests"].as_array().unwrap();
    let platforms: Vec<(String, String)> = entries
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap().to_owned(),
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux".into(), "amd64".into()),
            ("linux".into(), "arm64".into())
        ]
    );
    // The tag names the index; stdout's reference is pinned to it.
    let index_digest = raw_digest(&image);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for (entry, doc) in entries.iter().zip(images) {
        assert_eq!(doc["indexDigest"], index_digest.as_str());
        assert_eq!(
            doc["reference"],
            format!("{}/multi/app@{index_digest}", registry.host()).as_str()
        );
        assert_eq!(doc["manifestDigest"], entry["digest"]);
    }
    // A client resolves its own platform's manifest through the index.
    for (arch, entry) in [("amd64", &entries[0]), ("arm64", &entries[1])] {
        let inspected = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--override-arch", arch])
            .arg(format!("docker://{image}"))
            .output()
            .unwrap();
        let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
        assert_eq!(inspected["Architecture"], arch);
        let copy = OciCopy::pull_platform(&image, arch);
        assert_eq!(
            copy.manifest_digest,
            entry["digest"].as_str().unwrap(),
            "{arch}"
        );
        assert_eq!(copy.config()["architecture"], arch);
        copy.checked_layers();
    }
    // Each platform's manifest is in the registry by digest; only the index is tagged.
    assert_eq!(registry.requests("PUT", "/manifests/1.2"), 1);

    // A fresh runner re-pushing: the index under the tag names every platform's layers, so
    // nothing is built or sent, and the digest is the same.
    let patches = registry.requests("PATCH", "/blobs/uploads/");
    let log_before = registry.log().lines().count();
    let again = Nixpush::new().run(&["--platform", &amd, "--platform", &arm, &image, "--json"]);
    let again: serde_json::Value = serde_json::from_str(again.assert_ok()).unwrap();
    for doc in again["images"].as_array().unwrap() {
        assert_eq!(doc["indexDigest"], index_digest.as_str());
        for l in doc["layers"].as_array().unwrap() {
            assert_eq!(l["action"], "skipped", "{doc}");
        }
    }
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/"), patches);
    // The index under the tag is the one this push would write: no blob asked about, no
    // manifest written, and it says so.
    let after_first = registry
        .log()
        .lines()
        .skip(log_before)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!after_first.contains("/blobs/"), "{after_first}");
    assert!(!after_first.contains("\"PUT "), "{after_first}");
    assert!(again["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["unchanged"] == true));
}

#[test]
fn plain_packages_take_their_platform_from_the_derivation() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/multi/plain", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "app"));
    let arm = format!(
        "linux/arm64/v8={}",
        fixture("demo", "packages.aarch64-linux.app")
    );
    let line = nixpush
        .run(&["--platform", &amd, "--platform", &arm, &image])
        .assert_ok()
        .to_owned();
    let tagged = format!("{image}:latest");
    assert_eq!(line, format!("{image}@{}", raw_digest(&tagged)));
    let index = skopeo_inspect(&tagged, "--raw");
    assert_eq!(index["manifests"][1]["platform"]["architecture"], "arm64");
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
    let copy = OciCopy::pull_platform(&tagged, "arm64");
    let rootfs = copy.unpack();
    let note = std::fs::read_dir(rootfs.join("nix/store"))
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("share/note")).ok())
        .next()
        .expect("the arm64 package's files are in the arm64 image");
    assert_eq!(note, b"built for aarch64-linux\n");
}

#[test]
fn a_platform_that_contradicts_the_image_is_refused_with_nothing_tagged() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/multi/wrong:1", registry.host());
    // Both images are amd64: the second --platform contradicts its image.
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let lie = format!("linux/arm64={}", fixture("demo", "app"));
    let run = nixpush.run(&["--platform", &amd, "--platform", &lie, &image]);
    assert_refused(
        &run,
        2,
        &["is an image for linux/amd64, not for the linux/arm64 --platform names"],
    );
    assert_eq!(registry.manifest_status("multi/wrong", "1", None), 404);

    // The same platform twice is refused too.
    let twice = format!("linux/amd64={}", fixture("demo", "app"));
    let run = nixpush.run(&["--platform", &amd, "--platform", &twice, &image]);
    assert_refused(&run, 2, &["same platform"]);
    assert_eq!(registry.manifest_status("multi/wrong", "1", None), 404);
}

#[test]
fn json_and_the_digest_file_name_what_the_registry_holds() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/out/app:1", registry.host());
    let dir = tempfile::tempdir().unwrap();
    let digest_file = dir.path().join("digest");
    let installable = fixture("demo", "app");
    let args = [
        installable.as_str(),
        &image,
        "-t",
        "stable",
        "--json",
        "--digest-file",
        digest_file.to_str().unwrap(),
    ];
    let json: serde_json::Value = serde_json::from_str(nixpush.run(&args).assert_ok()).unwrap();
    let doc = &json["images"][0];
    assert_eq!(json["images"].as_array().unwrap().len(), 1);
    // The documented shape, exactly (docs/usage.md, "Output for machines").
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&json), ["images", "warnings"]);
    // A clean push has nothing to warn about.
    assert_eq!(json["warnings"], serde_json::json!([]));
    assert_eq!(
        keys(doc),
        [
            "configDigest",
            "destination",
            "installable",
            "layers",
            "manifestDigest",
            "platform",
            "reference",
            "tags",
            "unchanged"
        ]
    );
    for layer in doc["layers"].as_array().unwrap() {
        assert_eq!(
            keys(layer),
            [
                "action",
                "bytesSent",
                "diffId",
                "digest",
                "size",
                "storePaths"
            ]
        );
    }

    let digest = skopeo_digest(&image);
    let reference = format!("{}/out/app@{digest}", registry.host());
    assert_eq!(doc["manifestDigest"], digest.as_str());
    assert_eq!(doc["reference"], reference.as_str());
    assert_eq!(doc["destination"], image.as_str());
    assert_eq!(doc["installable"], installable.as_str());
    assert_eq!(doc["platform"], "linux/amd64");
    assert!(doc.get("indexDigest").is_none());
    assert_eq!(doc["tags"], serde_json::json!(["1", "stable"]));
    assert_eq!(
        std::fs::read_to_string(&digest_file).unwrap(),
        format!("{reference}\n")
    );

    // Layers: as the manifest names them, each with the store paths it holds.
    let manifest = skopeo_inspect(&image, "--raw");
    assert_eq!(doc["configDigest"], manifest["config"]["digest"]);
    let layers = doc["layers"].as_array().unwrap();
    let named = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), named.len());
    let mut listed: Vec<String> = Vec::new();
    for (l, m) in layers.iter().zip(named) {
        assert_eq!(l["digest"], m["digest"]);
        assert_eq!(l["size"], m["size"]);
        assert_eq!(l["action"], "pushed");
        assert_eq!(l["bytesSent"], m["size"]);
        for p in l["storePaths"].as_array().unwrap() {
            listed.push(p.as_str().unwrap().to_owned());
        }
    }
    let mut closure: Vec<String> = nix_closure(&nix_build(&installable))
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    listed.sort();
    closure.sort();
    assert_eq!(listed, closure);

    // Pushed again: nothing is sent, and the JSON says so.
    let again: serde_json::Value = serde_json::from_str(nixpush.run(&args).assert_ok()).unwrap();
    for l in again["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(l["action"], "skipped");
        assert_eq!(l["bytesSent"], 0);
    }
    assert_eq!(again["images"][0]["manifestDigest"], digest.as_str());
}

/// A git checkout of the demo flake with one commit at a fixed date, cloned from `origin`.
fn git_flake(dir: &Path, date: &str) -> String {
    std::fs::copy(
        repo_root().join("fixtures/demo/flake.nix"),
        dir.join("flake.nix"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    if !dir.join(".git").exists() {
        git(&["init", "-q"]);
        git(&[
            "remote",
            "add",
            "origin",
            "git@github.com:styrene-lab/repo.git",
        ]);
    }
    git(&["add", "flake.nix"]);
    git(&["commit", "-q", "--allow-empty", "-m", "release"]);
    git(&["rev-parse", "HEAD"])
}

#[test]
fn the_same_commit_gives_the_same_digest_with_its_provenance() {
    require("git");
    let registry = Registry::start();
    let checkout = tempfile::tempdir().unwrap();
    let rev = git_flake(checkout.path(), "2024-05-01T12:00:00Z");
    let installable = format!("git+file://{}#versioned", checkout.path().display());
    let push = |repo: &str, extra: &[&str]| {
        // A fresh cache each time: nothing of the first push is remembered.
        let image = format!("{}/{repo}", registry.host());
        let mut args = vec![installable.as_str(), image.as_str()];
        args.extend(extra);
        Nixpush::new().run(&args).assert_ok();
        (
            image.clone(),
            skopeo_inspect(&format!("{image}:latest"), "--raw"),
        )
    };
    let (first, manifest) = push("prov/a", &[]);
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        rev.as_str()
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://github.com/styrene-lab/repo"
    );
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(annotations["org.opencontainers.image.version"], "2.5.0");
    let (second, _) = push("prov/b", &[]);
    assert_eq!(
        skopeo_digest(&format!("{first}:latest")),
        skopeo_digest(&format!("{second}:latest")),
        "the same commit, pushed twice"
    );

    // A new commit: a new revision and date, so a new digest; the layers are the same.
    let rev2 = git_flake(checkout.path(), "2024-06-01T00:00:00Z");
    assert_ne!(rev, rev2);
    let (third, manifest2) = push("prov/c", &[]);
    assert_eq!(
        manifest2["annotations"]["org.opencontainers.image.revision"],
        rev2.as_str()
    );
    assert_ne!(
        skopeo_digest(&format!("{first}:latest")),
        skopeo_digest(&format!("{third}:latest"))
    );
    assert_eq!(manifest2["layers"], manifest["layers"]);

    // Turned off, and given explicitly (an explicit one wins over a default one).
    let (_, bare) = push("prov/d", &["--no-default-annotations"]);
    assert!(bare.get("annotations").is_none(), "{bare}");
    let (_, mine) = push(
        "prov/e",
        &[
            "--annotation",
            "org.opencontainers.image.version=9",
            "--annotation",
            "team=infra",
        ],
    );
    assert_eq!(mine["annotations"]["org.opencontainers.image.version"], "9");
    assert_eq!(mine["annotations"]["team"], "infra");
    assert_eq!(
        mine["annotations"]["org.opencontainers.image.revision"],
        rev2.as_str()
    );
}
