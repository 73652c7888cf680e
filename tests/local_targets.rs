//! Local targets, for trying an image before publishing it: `oci:DIR[:TAG]` writes an OCI image
//! layout that skopeo and umoci read, and `docker-archive:-` streams a docker-archive that
//! `podman load` takes. Either way the image is the one a registry push makes: the same layers,
//! config and manifest, so the same digests.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// The first `sha256:<64 hex>` in `text`.
fn digest_in(text: &str) -> String {
    let at = text
        .find("sha256:")
        .unwrap_or_else(|| panic!("no digest in {text:?}"));
    let digest = &text[at..(at + 71).min(text.len())];
    assert_eq!(digest.len(), 71, "truncated digest in {text:?}");
    digest.to_owned()
}

/// The manifest digest the layout's `index.json` records under `tag`.
fn layout_digest(dir: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entries: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .collect();
    assert_eq!(entries.len(), 1, "one entry for {tag} in {index}");
    assert_eq!(
        entries[0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    entries[0]["digest"].as_str().unwrap().to_owned()
}

/// `skopeo copy --preserve-digests oci:DIR:TAG docker://IMAGE`.
fn skopeo_from_layout(dir: &Path, tag: &str, image: &str) {
    require("skopeo");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:{tag}", dir.display()),
            &format!("docker://{image}"),
        ])
        .output()
        .expect("cannot run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy from the layout failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes `args` (installable first, then flags) to `image` in the registry; the manifest
/// digest.
fn pushed_digest(nixpush: &Nixpush, installable: &str, image: &str, flags: &[&str]) -> String {
    let mut args = vec![installable, image];
    args.extend(flags);
    digest_in(nixpush.run(&args).assert_ok())
}

/// Writes `installable` into the layout `dir` under `tag`, checks the layout against a push of
/// the same image (skopeo copies it into the registry with the pushed digest) and returns the
/// manifest digest.
fn layout_is_the_pushed_image(
    nixpush: &Nixpush,
    registry: &Registry,
    installable: &str,
    dir: &Path,
    tag: &str,
    flags: &[&str],
) -> String {
    let mut args = vec![
        installable.to_owned(),
        format!("oci:{}:{tag}", dir.display()),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = digest_in(nixpush.run(&args).assert_ok());
    let in_layout = layout_digest(dir, tag);
    assert_eq!(printed, in_layout, "nixpush prints the manifest it wrote");

    let direct = pushed_digest(
        nixpush,
        installable,
        &format!("{}/direct/{tag}:{tag}", registry.host()),
        flags,
    );
    assert_eq!(in_layout, direct, "the layout holds the image a push makes");

    let copied = format!("{}/copied/{tag}:{tag}", registry.host());
    skopeo_from_layout(dir, tag, &copied);
    assert_eq!(
        registry.manifest_status(&format!("copied/{tag}"), &direct, None),
        200,
        "skopeo copied the layout's manifest unchanged"
    );
    in_layout
}

/// The one store path of the root filesystem whose name ends with `-{name}`.
fn store_path_named(rootfs: &Path, name: &str) -> std::path::PathBuf {
    let store = rootfs.join("nix/store");
    let found: Vec<_> = std::fs::read_dir(&store)
        .unwrap_or_else(|e| panic!("no {}: {e}", store.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("-{name}")))
        .collect();
    assert_eq!(found.len(), 1, "one {name} in {found:?}");
    found[0].clone()
}

#[test]
fn an_oci_layout_of_a_package_is_the_pushed_image_and_umoci_unpacks_it() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout_is_the_pushed_image(
        &nixpush,
        &registry,
        &fixture("demo", "app"),
        &dir,
        "v1",
        &["--entrypoint", "bin/app"],
    );

    let rootfs = umoci_unpack(&dir, "v1", &tmp.path().join("bundle"));
    let app = store_path_named(&rootfs, "app");
    let script = std::fs::read_to_string(app.join("bin/app")).unwrap();
    assert!(script.contains("echo hello from nixpush"), "{script}");
    assert!(store_path_named(&rootfs, "busybox")
        .join("bin/busybox")
        .is_file());
    assert!(rootfs.join("etc/passwd").is_file(), "the generated layer");

    // Nothing but the layout: no temporary file left among the blobs.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blobs", "index.json", "oci-layout"]);
    for blob in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let name = blob.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a blob: {name}"
        );
    }
}

#[test]
fn an_oci_layout_of_a_docker_tools_image_is_the_pushed_image() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    layout_is_the_pushed_image(
        &nixpush,
        &registry,
        &fixture("demo", "docker"),
        &dir,
        "fixture",
        &[],
    );
    let rootfs = umoci_unpack(&dir, "fixture", &tmp.path().join("bundle"));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "hello from the customisation layer\n"
    );
    assert!(store_path_named(&rootfs, "app").join("bin/app").is_file());
}

#[test]
fn a_second_tag_in_the_same_layout_keeps_the_first() {
    let nixpush = Nixpush::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let app = fixture("demo", "app");
    let first = digest_in(
        nixpush
            .run(&[&app, &format!("oci:{}:v1", dir.display())])
            .assert_ok(),
    );
    let second = digest_in(
        nixpush
            .run(&[
                &fixture("demo", "docker"),
                &format!("oci:{}:v2", dir.display()),
            ])
            .assert_ok(),
    );
    assert_ne!(first, second);
    assert_eq!(layout_digest(&dir, "v1"), first);
    assert_eq!(layout_digest(&dir, "v2"), second);
    // Both images are whole: every blob each names is there.
    let v1 = umoci_unpack(&dir, "v1", &tmp.path().join("b1"));
    let v2 = umoci_unpack(&dir, "v2", &tmp.path().join("b2"));
    assert!(store_path_named(&v1, "app").join("bin/app").is_file());
    assert!(v2.join("etc/motd").is_file());

    // Writing v1 again changes nothing: the same manifest under the same single entry.
    let again = digest_in(
        nixpush
            .run(&[&app, &format!("oci:{}:v1", dir.display())])
            .assert_ok(),
    );
    assert_eq!(again, first);
    assert_eq!(layout_digest(&dir, "v1"), first);
    assert_eq!(layout_digest(&dir, "v2"), second);
}

/// The ID of a local podman image.
fn podman_image_id(name: &str) -> String {
    let out = podman(&["image", "inspect", "--format", "{{.Id}}", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman image inspect {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap();
    id.trim().trim_start_matches("sha256:").to_owned()
}

/// The config digest of an image in the registry.
fn pushed_config_digest(image: &str) -> String {
    skopeo_inspect(image, "--raw")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_docker_archive_on_stdout_loads_in_podman_and_runs() {
    let _turn = podman_turn();
    require("runc");
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let app = fixture("demo", "app");
    // A name of its own, so tests sharing podman's storage do not meet.
    let name = format!("localhost/nixpush-test/archive-{}:v1", std::process::id());

    // stderr to a file: a pipe nobody reads while podman loads could fill up and stall nixpush.
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("stderr");
    let mut writer = nixpush
        .command(&[
            &app,
            &format!("docker-archive:-:{name}"),
            "--entrypoint",
            "bin/app",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("cannot run nixpush");
    let archive = writer.stdout.take().unwrap();
    let load = podman(&["load"])
        .stdin(archive)
        .output()
        .expect("cannot run podman load");
    let status = writer.wait().unwrap();
    assert!(
        status.success(),
        "nixpush failed:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        load.status.success(),
        "podman load failed:\n{}{}",
        String::from_utf8_lossy(&load.stdout),
        String::from_utf8_lossy(&load.stderr)
    );
    let loaded = String::from_utf8_lossy(&load.stdout);
    assert!(loaded.contains(&name), "loaded as {name}: {loaded}");

    // The loaded image's ID is the config digest a push of the same image has.
    let image = format!("{}/demo/app:archive", registry.host());
    pushed_digest(&nixpush, &app, &image, &["--entrypoint", "bin/app"]);
    let id = podman_image_id(&name);
    assert_eq!(format!("sha256:{id}"), pushed_config_digest(&image));

    // podman_run removes the image afterwards.
    assert_eq!(podman_run(&name, &[], &[]), "hello from nixpush\n");
}

#[test]
fn a_docker_archive_file_of_a_docker_tools_image_loads_with_its_tag() {
    let _turn = podman_turn();
    require("runc");
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let docker = fixture("demo", "docker");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("image.tar");
    let name = format!("localhost/nixpush-test/dt-{}", std::process::id());
    nixpush
        .run(&[
            &docker,
            &format!("docker-archive:{}:{name}", file.display()),
        ])
        .assert_ok();
    // Only the archive: its temporary file was renamed into place.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

    // The layout `docker save` writes: layer tars, the config, manifest.json with the image's
    // own tag (the conf's repo_tag says `fixture`).
    let listing = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys, tarfile\n\
             t = tarfile.open(sys.argv[1])\n\
             m = json.load(t.extractfile('manifest.json'))\n\
             print(json.dumps({'names': t.getnames(), 'manifest': m}))",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(listing.status.success(), "{listing:?}");
    let listing: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let manifest = &listing["manifest"][0];
    assert_eq!(
        manifest["RepoTags"],
        serde_json::json!([format!("{name}:fixture")])
    );
    assert_eq!(manifest["Layers"].as_array().unwrap().len(), 3);

    let image = format!("{}/dt/docker:fixture", registry.host());
    pushed_digest(&nixpush, &docker, &image, &[]);
    let config = pushed_config_digest(&image);
    assert_eq!(
        manifest["Config"],
        format!("{}.json", config.strip_prefix("sha256:").unwrap())
    );

    let load = podman(&["load", "--input"]).arg(&file).output().unwrap();
    assert!(
        load.status.success(),
        "podman load failed:\n{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let tagged = format!("{name}:fixture");
    assert_eq!(format!("sha256:{}", podman_image_id(&tagged)), config);
    assert_eq!(podman_run(&tagged, &[], &[]), "hello from nixpush\n");
}

#[test]
fn a_multi_arch_image_in_an_oci_layout_is_the_index_a_push_writes() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let target = format!("oci:{}:multi", layout.display());
    let args = ["--platform", &amd, "--platform", &arm, &target, "--json"];
    let json: serde_json::Value = serde_json::from_str(nixpush.run(&args).assert_ok()).unwrap();
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    let index_digest = images[0]["indexDigest"].as_str().unwrap().to_owned();

    // index.json names the index under the tag; the index names both platforms' manifests.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(entry["digest"], index_digest.as_str());
    let inner: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci_blob(&layout, &index_digest)).unwrap()).unwrap();
    let platforms: Vec<&str> = inner["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);

    // The same index a registry push writes, and skopeo copies it whole, digests kept.
    let pushed = Nixpush::new()
        .run(&[
            "--platform",
            &amd,
            "--platform",
            &arm,
            &format!("{}/multi/app:1", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(digest_in(&pushed), index_digest);
    let copied = format!("{}/copied/app:1", registry.host());
    skopeo_ok(&[
        "copy",
        "--quiet",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{copied}"),
    ]);
    assert_eq!(skopeo_digest(&copied), index_digest);
    let arm_copy = OciCopy::pull_platform(&copied, "arm64");
    assert_eq!(arm_copy.config()["architecture"], "arm64");

    // Written again: every layer is known from the layout's index, nothing is built.
    let again: serde_json::Value = serde_json::from_str(nixpush.run(&args).assert_ok()).unwrap();
    for image in again["images"].as_array().unwrap() {
        for layer in image["layers"].as_array().unwrap() {
            assert_eq!(layer["action"], "skipped", "{image}");
        }
    }

    // A docker-archive holds no index: refused before anything is built.
    let run = nixpush.run(&["--platform", &amd, "--platform", &arm, "docker-archive:-"]);
    assert_refused(&run, 2, &["holds one image, not an index"]);
}
