//! nix2container images (its `buildImage` output: an image JSON) pushed as its `copyToRegistry`
//! would push them. The JSONs are written at build time by fixtures/nix2container/oracle.go, an
//! independent writer of nix2container's rules with Go's own archive/tar and encoding/json, in
//! place of nix2container's binary: the layer digests they hold and the config bytes the oracle
//! prints are what nixpush must give, byte for byte.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::common;

use common::cached_closure::blob_requests;
use common::*;

/// The image JSON a fixture attribute builds.
fn image_json(attr: &str) -> (String, PathBuf, serde_json::Value) {
    let installable = fixture("nix2container", attr);
    let path = nix_build(&installable).remove(0);
    let json = read_json(&path);
    (installable, path, json)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn oracle(args: &[&OsStr]) -> Vec<u8> {
    nix2container_oracle(args)
}

/// The JSON's layers' `diff_ids`, in order.
fn diff_ids(json: &serde_json::Value) -> Vec<String> {
    json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_ids"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn layers_and_config_are_nix2containers_byte_for_byte() {
    let registry = Registry::start();
    for attr in ["one-layer", "split", "root-perms", "with-layer-files"] {
        let (installable, path, json) = image_json(attr);
        let image = format!("{}/n2c/{attr}:v1", registry.host());
        Nixpush::new().run(&[&installable, &image]).assert_ok();

        let copy = OciCopy::pull(&image);
        let layers = copy.manifest["layers"].as_array().unwrap();
        // As nix2container sends them: each blob is the JSON's digest, of the JSON's media
        // type (a tar of store paths uncompressed, a base's gzip blob as it is).
        let digests: Vec<String> = layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect();
        let named: Vec<(&serde_json::Value, &serde_json::Value)> = json["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (&l["digest"], &l["mediatype"]))
            .collect();
        let pushed: Vec<(&serde_json::Value, &serde_json::Value)> = layers
            .iter()
            .map(|l| (&l["digest"], &l["mediaType"]))
            .collect();
        assert_eq!(pushed, named, "{attr}");
        // The config blob is the one nix2container's transport makes: the same image ID.
        let config = std::fs::read(oci_blob(
            &copy.layout,
            copy.manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap();
        let expected = oracle(&[OsStr::new("config"), path.as_os_str()]);
        assert_eq!(
            String::from_utf8_lossy(&config),
            String::from_utf8_lossy(&expected),
            "{attr}"
        );
        assert_eq!(
            copy.manifest["config"]["digest"],
            sha256(&expected),
            "{attr}"
        );
        // Layers of store paths: the blob's bytes are the oracle's tar of the JSON's paths.
        for (i, layer) in json["layers"].as_array().unwrap().iter().enumerate() {
            if layer.get("layer-path").is_some() {
                continue;
            }
            let n = (i + 1).to_string();
            let tar = oracle(&[OsStr::new("tar"), path.as_os_str(), OsStr::new(&n)]);
            let blob = std::fs::read(oci_blob(&copy.layout, &digests[i])).unwrap();
            assert!(
                blob == tar,
                "{attr} layer {n} differs from the oracle's tar"
            );
        }
    }
}

#[test]
fn podman_runs_them_with_their_perms_and_rewritten_root() {
    let registry = Registry::start();
    let push = |attr: &str| {
        let image = format!("{}/n2c/run-{attr}:v1", registry.host());
        Nixpush::new()
            .run(&[&fixture("nix2container", attr), &image])
            .assert_ok();
        image
    };
    let out = podman_run(&push("one-layer"), &[], &[]);
    assert_eq!(out.trim(), "hello from nix2container");

    // copyToRoot moved to /, the config's user and working directory, the perms on its files
    // (the later matching perm wins; a directory the regex does not reach keeps its mode).
    let image = push("root-perms");
    assert_eq!(
        podman_run(&image, &[], &[]).trim(),
        "hello from nix2container"
    );
    let stat = podman_run(
        &image,
        &["--entrypoint", "/bin/sh"],
        &[
            "-c",
            "id -u; pwd; stat -c '%n %a %u %g' /etc /etc/passwd /etc/shadow /var/data",
        ],
    );
    assert_eq!(
        stat.lines().collect::<Vec<_>>(),
        [
            "1000",
            "/var/data",
            "/etc 555 0 0",
            "/etc/passwd 644 1000 100",
            "/etc/shadow 640 0 42",
            "/var/data 770 1000 100",
        ],
        "{stat}"
    );

    // Layers from files in the store (layer-path), a gzip one among them.
    let (_, _, json) = image_json("with-layer-files");
    let busybox = format!(
        "{}/bin/busybox",
        json["layers"][2]["paths"][0]["path"].as_str().unwrap()
    );
    let image = push("with-layer-files");
    let note = podman_run(&image, &["--entrypoint", &busybox], &["cat", "/opt/note"]);
    assert_eq!(note.trim(), "from a layer file");
}

#[test]
fn an_unchanged_repush_from_an_empty_cache_uploads_nothing() {
    let registry = Registry::start();
    let (installable, _, json) = image_json("split");
    let image = format!("{}/n2c/again:v1", registry.host());
    let first = Nixpush::new()
        .run(&[&installable, &image])
        .assert_ok()
        .to_owned();
    let uploads = registry.uploads_started();
    assert_eq!(uploads, diff_ids(&json).len() + 1, "{}", registry.log());
    let blobs = blob_requests(&registry);

    // A fresh runner (an empty cache): the layers are known from the tag's manifest by their
    // JSON digests, nothing is asked of a blob, nothing is sent.
    let again = Nixpush::new()
        .run(&[&installable, &image, "--json"])
        .assert_ok()
        .to_owned();
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");
    assert_eq!(
        again["images"][0]["reference"].as_str().unwrap(),
        first.trim()
    );
    assert_eq!(blob_requests(&registry), blobs, "{}", registry.log());
    assert_eq!(registry.uploads_started(), uploads);

    // A fresh runner pushing a new tag (nix2container#128): no manifest names the layers there,
    // but the JSON does; a HEAD of each declared blob finds it, nothing is read or sent.
    let next = format!("{}/n2c/again:v2", registry.host());
    let run = Nixpush::new()
        .run(&[&installable, &next, "--json"])
        .assert_ok()
        .to_owned();
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(registry.uploads_started(), uploads, "{}", registry.log());
    for layer in run["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(layer["action"], "skipped", "{run}");
    }

    // --compression gzip: the layers compressed on the way, the same config (image ID).
    let gzip = format!("{}/n2c/again:gzip", registry.host());
    Nixpush::new()
        .run(&[&installable, &gzip, "--compression", "gzip"])
        .assert_ok();
    let plain = OciCopy::pull(&image);
    let zipped = OciCopy::pull(&gzip);
    assert_eq!(zipped.manifest["config"], plain.manifest["config"]);
    for layer in zipped.manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    // With --compression, a base's gzip blob is decompressed and compressed like the rest.
    let (files, _, _) = image_json("with-layer-files");
    let as_is = format!("{}/n2c/files:v1", registry.host());
    let zstd = format!("{}/n2c/files:zstd", registry.host());
    Nixpush::new().run(&[&files, &as_is]).assert_ok();
    Nixpush::new()
        .run(&[&files, &zstd, "--compression", "zstd"])
        .assert_ok();
    let (as_is, zstd) = (OciCopy::pull(&as_is), OciCopy::pull(&zstd));
    assert_eq!(zstd.manifest["config"], as_is.manifest["config"]);
    for layer in zstd.manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}

#[test]
fn a_json_whose_digest_does_not_match_its_paths_is_refused_in_one_line() {
    let registry = Registry::start();
    let image = format!("{}/n2c/forged:v1", registry.host());
    let run = Nixpush::new().run(&[&fixture("nix2container", "forged"), &image]);
    assert_refused(
        &run,
        1,
        &[
            "are not the layer the image JSON names",
            "sha256:1111111111",
        ],
    );
    assert_eq!(registry.manifest_status("n2c/forged", "v1", None), 404);
}

#[test]
fn pushed_by_store_path_under_its_own_tag_and_as_a_multi_arch_pair() {
    let registry = Registry::start();
    // A JSON added to the store by hand has no derivation: its arch says the platform.
    let (_, built, json) = image_json("one-layer");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("image.json");
    std::fs::copy(&built, &copy).unwrap();
    let added = run_ok(
        nix_env(Command::new("nix-store").arg("--add").arg(&copy)),
        "nix-store --add",
    );
    let added = String::from_utf8(added.stdout).unwrap().trim().to_owned();
    let image = format!("{}/n2c/by-hand:v1", registry.host());
    let dry = Nixpush::new().run(&[&added, &image, "--dry-run"]);
    let out = dry.assert_ok();
    assert!(out.contains("platform linux/amd64"), "{out}");
    assert!(
        out.contains("(nix2container's layer of these paths)"),
        "{out}"
    );
    for path in json["layers"][0]["paths"].as_array().unwrap() {
        assert!(out.contains(path["path"].as_str().unwrap()), "{out}");
    }
    Nixpush::new().run(&[&added, &image]).assert_ok();
    assert_eq!(
        OciCopy::pull(&image).manifest["layers"][0]["digest"],
        json["layers"][0]["diff_ids"]
    );

    // With no tag given, buildImage's imageTag (its path's hash), as copyToRegistry tags it.
    let hash = &built.file_name().unwrap().to_str().unwrap()[..32];
    let untagged = format!("{}/n2c/one-layer", registry.host());
    Nixpush::new()
        .run(&[&fixture("nix2container", "one-layer"), &untagged])
        .assert_ok();
    assert_eq!(registry.manifest_status("n2c/one-layer", hash, None), 200);

    // --platform with nix2container images: each platform's JSON, one index.
    let multi = format!("{}/n2c/multi:v1", registry.host());
    Nixpush::new()
        .run(&[
            "--platform",
            &format!("linux/amd64={}", fixture("nix2container", "one-layer")),
            "--platform",
            &format!(
                "linux/arm64={}",
                fixture("nix2container", "one-layer-arm64")
            ),
            &multi,
        ])
        .assert_ok();
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(&multi)).unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"], "{index}");
    let arm = OciCopy::pull_platform(&multi, "arm64");
    assert_eq!(arm.config()["architecture"], "arm64");
}

#[test]
fn an_sbom_and_a_signature_attach_to_a_nix2container_image() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, public, pass) = nixpush_keypair(dir.path(), "n2c passphrase");
    let (installable, _, json) = image_json("split");
    let image = format!("{}/n2c/signed:v1", registry.host());
    let run = Nixpush::new().run(&[
        &installable,
        &image,
        "--sbom",
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-passphrase-file",
        pass.to_str().unwrap(),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let pinned = doc["images"][0]["reference"].as_str().unwrap().to_owned();
    assert!(doc["images"][0]["sbomDigest"].is_string(), "{doc}");

    // The SBOM names every store path the layers are made of.
    let index = fallback_referrers(&pinned);
    let (repo, _) = pinned.split_once('@').unwrap();
    let artifact = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&format!("{repo}@{artifact}"))).unwrap();
    let copy = OciCopy::pull(&format!("{repo}@{artifact}"));
    let sbom = std::fs::read_to_string(oci_blob(
        &copy.layout,
        manifest["layers"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let mut named = Vec::new();
    for layer in json["layers"].as_array().unwrap() {
        for p in layer["paths"].as_array().unwrap() {
            named.push(p["path"].as_str().unwrap().to_owned());
        }
    }
    for path in named {
        assert!(sbom.contains(&path), "{path} not in the SBOM");
    }

    // The signature verifies with the public key.
    Nixpush::new()
        .run(&["verify", &pinned, "--key", public.to_str().unwrap()])
        .assert_ok();
}
