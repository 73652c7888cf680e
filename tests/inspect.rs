//! `nixpush inspect` against a real registry: an image nixpush pushed (its store paths are read
//! back from the history, and are exactly the closure), images pushed by skopeo from OCI layouts
//! written by hand (no store paths, nothing invented), an index with two platforms, and a missing
//! tag. What inspect says is checked against what skopeo reads from the same registry.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nixpush::digest::Digest;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn inspect_json(nixpush: &Nixpush, args: &[&str]) -> Value {
    let mut argv = vec!["inspect", "--json"];
    argv.extend(args);
    let run = nixpush.run(&argv);
    serde_json::from_str(run.assert_ok()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The layers of an inspected image against the manifest and config skopeo read.
fn assert_layers_match(image: &Value, manifest: &Value, config: &Value) {
    let layers = image["layers"].as_array().unwrap();
    let expected = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), expected.len());
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    for ((got, want), diff_id) in layers.iter().zip(expected).zip(diff_ids) {
        assert_eq!(got["digest"], want["digest"]);
        assert_eq!(got["size"], want["size"]);
        assert_eq!(got["mediaType"], want["mediaType"]);
        assert_eq!(&got["diffId"], diff_id);
        assert_eq!(
            got["annotations"],
            want.get("annotations").cloned().unwrap_or(json!({}))
        );
    }
    assert_eq!(
        image["configDigest"], manifest["config"]["digest"],
        "config descriptor"
    );
}

#[test]
fn an_image_nixpush_pushed_shows_its_layers_and_the_store_paths_behind_them() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/demo/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let pinned = nixpush
        .run(&[
            &installable,
            &image,
            "--entrypoint",
            "bin/app",
            "--env",
            "GREETING=hi",
            "--label",
            "org.example.team=nix",
            "--expose",
            "8080",
        ])
        .assert_ok()
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let doc = inspect_json(&nixpush, &[&image]);
    let digest = skopeo_digest(&image);
    let raw = skopeo_raw(&image);
    assert_eq!(Digest::of(&raw).to_string(), digest);
    assert_eq!(doc["digest"], digest);
    assert_eq!(doc["reference"], pinned);
    assert_eq!(doc["mediaType"], OCI_MANIFEST);
    assert!(doc["index"].is_null());
    let img = &doc["image"];
    assert_eq!(img["reference"], pinned);
    assert_eq!(img["digest"], digest);
    assert_eq!(
        img["platform"],
        json!({"os": "linux", "architecture": "amd64"})
    );
    assert_eq!(img["created"], "1970-01-01T00:00:01Z");

    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    let config = skopeo_inspect(&image, "--config");
    assert_layers_match(img, &manifest, &config);
    assert_eq!(
        img["annotations"],
        manifest.get("annotations").cloned().unwrap_or(json!({}))
    );
    let app = nix_build(&installable).remove(0);
    assert_eq!(
        img["config"],
        json!({
            "Entrypoint": [format!("{}/bin/app", app.display())],
            "Env": ["GREETING=hi"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.example.team": "nix"},
        })
    );

    // The store paths of the layers are exactly the closure, each once; every layer names its
    // own (the generated root filesystem: none) and carries nixpush's key.
    let layers = img["layers"].as_array().unwrap();
    let mut seen: Vec<PathBuf> = Vec::new();
    for layer in layers {
        let paths = layer["storePaths"]
            .as_array()
            .unwrap_or_else(|| panic!("no store paths for {layer}"));
        seen.extend(paths.iter().map(|p| PathBuf::from(p.as_str().unwrap())));
        assert!(
            layer["annotations"]["dev.nixpush.layer.key"].is_string(),
            "{layer}"
        );
    }
    assert_eq!(layers.last().unwrap()["storePaths"], json!([]));
    let unique: BTreeSet<&PathBuf> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a store path in two layers");
    assert_eq!(
        unique.into_iter().cloned().collect::<Vec<_>>(),
        nix_closure(std::slice::from_ref(&app))
    );

    // The text form says the same.
    let text = nixpush.run(&["inspect", &image]).assert_ok().to_owned();
    assert!(
        text.starts_with(&format!("reference   {pinned}\n")),
        "{text}"
    );
    for line in [
        "platform    linux/amd64",
        "  ExposedPorts  8080/tcp",
        "  Env           GREETING=hi",
    ] {
        assert!(text.contains(&format!("\n{line}\n")), "{line:?} in\n{text}");
    }
    for layer in layers {
        assert!(text.contains(layer["digest"].as_str().unwrap()), "{text}");
    }
    // Each store path on a line of its own, below its layer's line.
    let listed: Vec<PathBuf> = text
        .lines()
        .filter(|l| l.starts_with("     /"))
        .map(|l| PathBuf::from(l.trim()))
        .collect();
    assert_eq!(listed, seen, "{text}");
    // By digest, the same image.
    let by_digest = inspect_json(&nixpush, &[&pinned]);
    assert_eq!(by_digest["image"], doc["image"]);
}

/// A layer tar of `files` (path, content), made by GNU tar.
fn layer_tar(files: &[(&str, &str)]) -> Vec<u8> {
    require("tar");
    let root = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let file = root.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@1",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
        ])
        .args(["-cf", "-", "-C"])
        .arg(root.path())
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Writes `bytes` as a blob of the OCI layout; returns its digest and size.
fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = Digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), bytes).unwrap();
    (digest.to_string(), bytes.len())
}

/// An image made the way other tools make them (no store paths in its history, an empty-layer
/// entry, no nixpush annotations), written into `layout`; returns its manifest's descriptor.
fn foreign_image(layout: &Path, platform: Value, layers: &[&[(&str, &str)]]) -> Value {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = vec![json!({
        "created": "2024-01-01T00:00:00Z",
        "created_by": "/bin/sh -c #(nop)  ENV A=1",
        "empty_layer": true,
    })];
    for (i, files) in layers.iter().enumerate() {
        let (digest, size) = blob(layout, &layer_tar(files));
        diff_ids.push(digest.clone());
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": size,
        }));
        history.push(json!({
            "created": "2024-01-01T00:00:00Z",
            "created_by": format!("COPY layer{i} /"),
            "comment": "buildkit.dockerfile.v0",
        }));
    }
    let mut config = json!({
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/bin/hello"],
            "Cmd": null,
            "Env": ["PATH=/bin", "A=1"],
            "WorkingDir": "/srv",
            "User": "",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    for (k, v) in platform.as_object().unwrap() {
        config[k] = v.clone();
    }
    let (config_digest, config_size) = blob(layout, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": descriptors,
        "annotations": {"org.example.made-by": "hand"},
    });
    let (digest, size) = blob(layout, &serde_json::to_vec(&manifest).unwrap());
    json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": platform})
}

/// Writes the layout's `index.json` naming `descriptor` as `tag`.
fn layout_index(layout: &Path, descriptor: &Value, tag: &str) {
    let mut entry = descriptor.clone();
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [entry]})).unwrap(),
    )
    .unwrap();
}

/// `skopeo copy` from an OCI layout to the registry, bytes unchanged.
fn skopeo_push(layout: &Path, tag: &str, image: &str, all: bool) {
    require("skopeo");
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]);
    if all {
        cmd.arg("--all");
    }
    let out = cmd
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_image_pushed_by_skopeo_shows_its_layers_and_no_store_paths() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let descriptor = foreign_image(
        &layout,
        json!({"os": "linux", "architecture": "amd64"}),
        &[
            &[("bin/hello", "#!/bin/sh\necho hello\n")],
            &[("srv/data.txt", "data\n"), ("etc/motd", "hi\n")],
        ],
    );
    layout_index(&layout, &descriptor, "v1");
    let image = format!("{}/foreign/app:v1", registry.host());
    skopeo_push(&layout, "v1", &image, false);

    let doc = inspect_json(&nixpush, &[&image]);
    assert_eq!(doc["digest"], skopeo_digest(&image));
    assert_eq!(doc["digest"], descriptor["digest"]);
    let img = &doc["image"];
    let manifest: Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_layers_match(img, &manifest, &skopeo_inspect(&image, "--config"));
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);
    for layer in img["layers"].as_array().unwrap() {
        assert!(layer["storePaths"].is_null(), "{layer}");
    }
    assert_eq!(img["annotations"], json!({"org.example.made-by": "hand"}));
    assert_eq!(
        img["config"],
        json!({"Entrypoint": ["/bin/hello"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv"}),
        "empty and null fields left out"
    );
    assert_eq!(img["created"], "2024-01-01T00:00:00Z");

    let run = nixpush.run(&["inspect", &image]);
    let text = run.assert_ok();
    assert!(text.contains("\n  WorkingDir  /srv\n"), "{text}");
    assert!(!text.contains("/nix/store"), "{text}");
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // Asking a plain image for another platform is an error, not a silent answer.
    let run = nixpush.run(&["inspect", "--platform", "linux/arm64", &image]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line()
            .contains("is for linux/amd64, not linux/arm64"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_index_lists_its_platforms_and_platform_picks_one() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let amd64 = foreign_image(
        &layout,
        json!({"os": "linux", "architecture": "amd64"}),
        &[&[("bin/hello", "amd64\n")]],
    );
    let arm64 = foreign_image(
        &layout,
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"}),
        &[&[("bin/hello", "arm64\n")], &[("etc/motd", "hi\n")]],
    );
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [amd64, arm64],
    });
    let (digest, size) = blob(&layout, &serde_json::to_vec(&index).unwrap());
    layout_index(
        &layout,
        &json!({"mediaType": OCI_INDEX, "digest": digest, "size": size}),
        "multi",
    );
    let image = format!("{}/multi/app:v1", registry.host());
    skopeo_push(&layout, "multi", &image, true);
    assert_eq!(Digest::of(&skopeo_raw(&image)).to_string(), digest);

    let doc = inspect_json(&nixpush, &[&image]);
    assert_eq!(doc["digest"], digest);
    assert_eq!(doc["mediaType"], OCI_INDEX);
    assert!(doc["image"].is_null());
    let entries = doc["index"]["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, want) in entries.iter().zip([&amd64, &arm64]) {
        assert_eq!(entry["digest"], want["digest"]);
        assert_eq!(entry["size"], want["size"]);
        assert_eq!(entry["platform"], want["platform"]);
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
    }
    let text = nixpush.run(&["inspect", &image]).assert_ok().to_owned();
    assert!(text.contains("manifests   2\n"), "{text}");
    for platform in ["linux/amd64", "linux/arm64/v8"] {
        assert!(text.contains(&format!("  {platform} ")), "{text}");
    }

    // --platform follows the entry: the arm64 image, its own digest and layers.
    let doc = inspect_json(&nixpush, &["--platform", "linux/arm64", &image]);
    assert_eq!(doc["digest"], digest, "still the index");
    let img = &doc["image"];
    assert_eq!(img["digest"], arm64["digest"]);
    assert_eq!(
        img["reference"],
        format!(
            "{}/multi/app@{}",
            registry.host(),
            arm64["digest"].as_str().unwrap()
        )
    );
    assert_eq!(img["platform"], arm64["platform"]);
    assert_eq!(img["layers"].as_array().unwrap().len(), 2);
    let by_digest = format!(
        "{}/multi/app@{}",
        registry.host(),
        arm64["digest"].as_str().unwrap()
    );
    let manifest: Value = serde_json::from_slice(&skopeo_raw(&by_digest)).unwrap();
    let config = skopeo_inspect(&by_digest, "--config");
    assert_layers_match(img, &manifest, &config);

    // A platform the index lacks: the ones it has are named.
    let run = nixpush.run(&["inspect", "--platform", "linux/s390x", &image]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.starts_with("nixpush: error: ")
            && line.contains("no image for linux/s390x")
            && line.contains("linux/amd64, linux/arm64/v8"),
        "{line}"
    );
    // A malformed platform is a usage error.
    let run = nixpush.run(&["inspect", "--platform", "arm64", &image]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_missing_tag_or_repository_is_one_line_and_exit_1() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    for reference in [
        format!("{}/nothing/here:v9", registry.host()),
        format!("{}/nothing/here", registry.host()),
    ] {
        let run = nixpush.run(&["inspect", &reference]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stdout.is_empty());
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        let shown = if reference.ends_with(":v9") {
            reference.clone()
        } else {
            format!("{reference}:latest")
        };
        assert_eq!(
            run.error_line(),
            format!("nixpush: error: no manifest at {shown} (no such tag, digest or repository)")
        );
    }
    // Nothing listening: the transport's own error (after the retries it reports).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = nixpush.run(&["inspect", &format!("127.0.0.1:{port}/a/b:v1")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line()
            .starts_with("nixpush: error: cannot connect"),
        "{}",
        run.stderr
    );
}
