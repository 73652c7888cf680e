//! Image archives Nix built, pushed as the images they hold: a `dockerTools.buildImage`-shaped
//! `.tar.gz`, a `pullImage`-shaped plain tar that skopeo itself wrote, and a `fromImage`
//! conf whose base is that archive. What the registry then holds is checked against what the
//! archive says, read with Python's tarfile (tests/oracle/archive_facts.py), against nixpkgs'
//! config rules (tests/oracle/nixpkgs_config.py), against `podman load` of the same archive,
//! and by running each image. Broken archives are refused with one line and nothing tagged.

use crate::common;

use std::path::PathBuf;

use common::*;

fn archive(attr: &str) -> PathBuf {
    nix_build(&fixture("demo", attr)).remove(0)
}

/// The diff_ids a pushed image's config lists.
fn diff_ids(copy: &OciCopy) -> Vec<String> {
    copy.config()["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// Pushes the archive fixture `attr` without a tag, and checks the image against the archive:
/// the tag from `RepoTags`, the config byte for byte (its digest is the image ID), each layer's
/// uncompressed bytes those of its member. Returns the pinned reference and the registry.
fn push_archive(attr: &str, tag: &str) -> (String, Registry) {
    let registry = Registry::start();
    let facts = archive_facts(&archive(attr));
    let pinned = Nixpush::new()
        .run(&[
            &fixture("demo", attr),
            &format!("{}/ar/{attr}", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(
        registry.manifest_status(&format!("ar/{attr}"), tag, None),
        200
    );
    let copy = OciCopy::pull(&format!("{}/ar/{attr}:{tag}", registry.host()));
    assert_eq!(copy.manifest["config"]["digest"], facts["image_id"]);
    let layer_digests: Vec<String> = facts["layer_digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(diff_ids(&copy), layer_digests, "each layer is its member");
    // The blobs decompress to exactly those bytes.
    for check in copy.checked_layers() {
        assert!(
            layer_digests.contains(&check["diff_id"].as_str().unwrap().to_owned()),
            "{check}"
        );
    }
    (pinned, registry)
}

/// `podman load` of an archive: the image ID podman gives it. A gzipped archive is given
/// to podman decompressed: Debian's podman 4.3 reads only plain docker-archives.
fn podman_load_id(archive: &std::path::Path) -> String {
    let _turn = podman_turn();
    let plain = tempfile::NamedTempFile::new().unwrap();
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap());
    std::io::copy(&mut gz, &mut std::fs::File::create(plain.path()).unwrap()).unwrap();
    let path = plain.path().display().to_string();
    let out = podman(&["load", "--input", &path]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image(s): "))
        })
        .unwrap_or_else(|| panic!("podman load said {stdout}"))
        .trim()
        .to_owned();
    let id = podman(&["image", "inspect", "--format", "{{.Id}}", &name])
        .output()
        .unwrap();
    let _ = podman(&["rmi", "--force", &name]).output();
    format!("sha256:{}", String::from_utf8_lossy(&id.stdout).trim())
}

#[test]
fn a_build_image_archive_is_pushed_as_the_image_it_holds() {
    let (pinned, _registry) = push_archive("image-archive", "v1");
    let facts = archive_facts(&archive("image-archive"));
    assert_eq!(
        podman_load_id(&archive("image-archive")),
        facts["image_id"].as_str().unwrap(),
        "the registry's config digest is the ID `podman load` gives the archive"
    );
    assert_eq!(
        podman_run(&pinned, &[], &[]),
        "hello from buildImage\nfrom the base image\n"
    );
}

#[test]
fn a_zstd_build_image_archive_is_the_same_image() {
    let (zstd, _registry) = push_archive("image-archive-zst", "v1");
    let (gzip, _other) = push_archive("image-archive", "v1");
    // The same config and the same layer blobs; only the layer keys in the manifest's
    // annotations differ, since they name the archive they were read from.
    let blobs = |pinned: &str| {
        let m: serde_json::Value = serde_json::from_slice(&skopeo_raw(pinned)).unwrap();
        let layers: Vec<serde_json::Value> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].clone())
            .collect();
        (m["config"]["digest"].clone(), layers)
    };
    assert_eq!(
        blobs(&zstd),
        blobs(&gzip),
        "compressor = \"zstd\" holds the same image"
    );
}

#[test]
fn a_layer_named_through_a_link_is_read_from_the_linked_member() {
    push_archive("linked-archive", "1");
}

#[test]
fn a_pull_image_archive_is_pushed_as_the_image_it_holds() {
    let (pinned, _registry) = push_archive("base-archive", "1.0");
    assert_eq!(podman_run(&pinned, &[], &[]), "from the base image\n");
}

#[test]
fn from_image_puts_the_base_layers_first_with_nixpkgs_config() {
    let registry = Registry::start();
    let conf_path = fixture_conf_path("docker-from-image");
    let conf = fixture_conf("docker-from-image");
    let base = archive_facts(std::path::Path::new(conf["from_image"].as_str().unwrap()));
    let image = format!("{}/ar/from:v1", registry.host());
    let pinned = Nixpush::new()
        .run(&[&fixture("demo", "docker-from-image"), &image])
        .assert_ok()
        .to_owned();
    let copy = OciCopy::pull(&image);
    // The config nixpkgs' script writes for this conf: Env merged, base layers named by member.
    assert_eq!(
        copy.manifest["config"]["digest"],
        oracle_config_digest(&conf_path)
    );
    let ids = diff_ids(&copy);
    let base_ids: Vec<String> = base["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids[..base_ids.len()],
        base_ids[..],
        "the base layers come first"
    );
    assert_eq!(
        ids.len(),
        base_ids.len() + 3,
        "then 2 store layers and the customisation layer"
    );
    let config = copy.config();
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/bin", "BASE=1", "GREETING=hello"]),
        "the base's Env, the image's value winning at the base's place"
    );
    // It runs, and a file of the base image is there.
    assert_eq!(podman_run(&pinned, &[], &[]), "hello from nixpush\n");
    let busybox = conf["store_layers"][0][0].as_str().unwrap().to_owned() + "/bin/busybox";
    assert_eq!(
        podman_run(
            &pinned,
            &["--entrypoint", &busybox],
            &["sh", "-c", "cat /etc/base-release; echo $BASE $GREETING"]
        ),
        "from the base image\n1 hello\n"
    );
}

#[test]
fn a_second_push_from_an_empty_cache_uploads_nothing() {
    for (attr, tag) in [
        ("image-archive", "v1"),
        ("base-archive", "1.0"),
        ("docker-from-image", "fixture"),
    ] {
        let registry = Registry::start();
        let image = format!("{}/ar/{attr}:{tag}", registry.host());
        let first = Nixpush::new()
            .run(&[&fixture("demo", attr), &image])
            .assert_ok()
            .to_owned();
        let uploads = registry.uploads_started();
        assert!(uploads > 0);
        // A new runner: nothing in its cache; the tag's manifest names every layer's key.
        let second = Nixpush::new()
            .run(&[&fixture("demo", attr), &image])
            .assert_ok()
            .to_owned();
        assert_eq!(second, first, "{attr}: the same image");
        assert_eq!(registry.uploads_started(), uploads, "{attr}: no upload");
    }
}

#[test]
fn a_shared_base_is_not_uploaded_again_for_the_image_built_on_it() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    nixpush
        .run(&[
            &fixture("demo", "base-archive"),
            &format!("{}/ar/base:1.0", registry.host()),
        ])
        .assert_ok();
    let before = registry.requests("PATCH", "/blobs/uploads/");
    nixpush
        .run(&[
            &fixture("demo", "docker-from-image"),
            &format!("{}/ar/base:app", registry.host()),
        ])
        .assert_ok();
    // Two store layers, the customisation layer and the config; not the two base layers.
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/") - before, 3);
}

#[test]
fn a_dry_run_lists_the_archive_layers() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "image-archive"),
        "r.example/ar/x",
        "--dry-run",
    ]);
    let out = run.assert_ok();
    assert!(out.contains("r.example/ar/x:v1"), "{out}");
    assert_eq!(
        out.matches("(layer of an image archive, as is)").count(),
        2,
        "{out}"
    );
    assert!(out.contains("/layer.tar"), "{out}");
}

#[test]
fn broken_archives_are_refused_in_one_line_and_nothing_is_tagged() {
    for (attr, says) in [
        (
            "bad-archive-dotdot",
            "\"../escape.tar\": absolute names and `..` are refused",
        ),
        (
            "bad-archive-absolute",
            "\"/tmp/escape.tar\": absolute names and `..` are refused",
        ),
        ("bad-archive-diffid", "is not what the image's config says"),
        ("bad-archive-truncated", "cannot read the image archive"),
        ("bad-archive-twoimages", "it holds 2 images"),
        ("bad-archive-truncatedplain", "cut short"),
    ] {
        let registry = Registry::start();
        let run = Nixpush::new().run(&[
            &fixture("demo", attr),
            &format!("{}/ar/bad:1", registry.host()),
        ]);
        assert_eq!(run.code, 1, "{attr}: {}", run.stderr);
        assert!(
            run.error_line().contains(says),
            "{attr}: {}",
            run.error_line()
        );
        assert_eq!(
            run.stderr
                .lines()
                .filter(|l| l.starts_with("nixpush: error"))
                .count(),
            1
        );
        assert_eq!(registry.manifest_status("ar/bad", "1", None), 404, "{attr}");
    }
}

#[test]
fn config_flags_with_an_image_archive_are_a_usage_error() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "image-archive"),
        "127.0.0.1:9/ar/x:1",
        "--entrypoint",
        "/bin/sh",
    ]);
    assert_refused(&run, 2, &["--entrypoint"]);
}

#[test]
fn inspect_names_the_base_image_layers() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/ar/from:v1", registry.host());
    nixpush
        .run(&[&fixture("demo", "docker-from-image"), &image])
        .assert_ok();
    let text = nixpush.run(&["inspect", &image]).assert_ok().to_owned();
    let conf = fixture_conf("docker-from-image");
    let base = archive_facts(std::path::Path::new(conf["from_image"].as_str().unwrap()));
    assert_eq!(text.matches("(base image: ").count(), 2, "{text}");
    assert_eq!(
        base["diff_ids"].as_array().unwrap().len(),
        2,
        "the base has two layers"
    );
    assert!(
        text.contains(conf["store_layers"][0][0].as_str().unwrap()),
        "{text}"
    );
}

#[test]
fn a_local_docker_archive_of_a_dockertools_image_is_named_by_its_repo_tag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    Nixpush::new()
        .run(&[
            &fixture("demo", "docker"),
            &format!("docker-archive:{}", path.display()),
        ])
        .assert_ok();
    assert_eq!(
        archive_facts(&path)["repo_tags"],
        serde_json::json!(["demo/docker:fixture"]),
        "the conf's repo_tag, not the attribute's name"
    );
}
