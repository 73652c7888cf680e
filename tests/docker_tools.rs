//! dockerTools images pushed from their conf.json: the same layers nixpkgs' stream script would
//! write (store layers byte-identical to the tarfile oracle under the conf's mtime and owner, the
//! customisation layer's tar as it is), the conf's config and tag, and no image tarball built.

use crate::common;

use std::path::PathBuf;

use common::*;

/// Store layers of a conf, as lists of paths.
fn store_layers(conf: &serde_json::Value) -> Vec<Vec<PathBuf>> {
    conf["store_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|p| PathBuf::from(p.as_str().unwrap()))
                .collect()
        })
        .collect()
}

/// Pushes `attr` and checks its layers against what nixpkgs would produce, with `owner` the
/// oracle flags for the conf's mtime and ownership. Returns the copy and the pinned reference.
fn push_and_check(attr: &str, owner: &[&str]) -> (OciCopy, String, Registry) {
    let registry = Registry::start();
    let conf = fixture_conf(attr);
    let image = format!("{}/dt/{attr}", registry.host());
    let pinned = Nixpush::new()
        .run(&[&fixture("demo", attr), &image])
        .assert_ok()
        .to_owned();
    let tag = conf["repo_tag"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let copy = OciCopy::pull(&format!("{image}:{tag}"));
    assert_eq!(
        format!("{}/dt/{attr}@{}", registry.host(), copy.manifest_digest),
        pinned
    );

    let config = copy.config();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    let layers = store_layers(&conf);
    assert_eq!(
        diff_ids.len(),
        layers.len() + 1,
        "store layers, then the customisation layer"
    );
    for (paths, diff_id) in layers.iter().zip(&diff_ids) {
        assert_eq!(*diff_id, oracle_diff_id(paths, owner), "layer of {paths:?}");
    }
    let custom = PathBuf::from(conf["customisation_layer"].as_str().unwrap());
    let checksum = std::fs::read_to_string(custom.join("checksum")).unwrap();
    assert_eq!(
        diff_ids.last().unwrap(),
        &format!("sha256:{}", checksum.trim())
    );
    // The blobs hold exactly those bytes: each decompresses to its diff_id.
    for (layer, diff_id) in copy.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&diff_ids)
    {
        let blob =
            std::fs::read(oci_blob(&copy.layout, layer["digest"].as_str().unwrap())).unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
        assert_eq!(&nixpush::digest::Digest::of(&tar).to_string(), diff_id);
    }
    assert_eq!(
        config["config"], conf["config"],
        "the conf's config, as nixpkgs wrote it"
    );
    // The config bytes nixpkgs' script writes: the image ID of the tarball nixpkgs builds.
    assert_eq!(
        copy.manifest["config"]["digest"],
        oracle_config_digest(&fixture_conf_path(attr)),
        "the config, byte for byte"
    );
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["history"].as_array().unwrap().len(), diff_ids.len());
    (copy, pinned, registry)
}

#[test]
fn stream_layered_image_is_pushed_with_nixpkgs_layers_config_and_tag() {
    let (copy, _, registry) = push_and_check("docker", &[]);
    assert_eq!(copy.config()["created"], "1970-01-01T00:00:01+00:00");
    // No tag in the destination: the image's own repo_tag tag.
    assert_eq!(registry.manifest_status("dt/docker", "fixture", None), 200);
    assert_eq!(registry.manifest_status("dt/docker", "latest", None), 404);

    // The root filesystem: the store layers' paths and the customisation layer's files.
    let rootfs = copy.unpack();
    let conf = fixture_conf("docker");
    for paths in store_layers(&conf) {
        for p in paths {
            assert!(
                rootfs.join(p.strip_prefix("/").unwrap()).exists(),
                "{} missing",
                p.display()
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "hello from the customisation layer\n"
    );
    let app = store_layers(&conf)[1][0].clone();
    assert_eq!(
        std::fs::read_link(rootfs.join("bin")).unwrap(),
        app.join("bin")
    );
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
}

#[test]
fn build_layered_image_is_pushed_from_its_stream_without_building_the_tarball() {
    // docker-layered's own build fails if it ever runs; its stream is `docker`'s.
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let layered = nixpush
        .run(&[
            &fixture("demo", "docker-layered"),
            &format!("{}/dt/a:v1", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    let stream = nixpush
        .run(&[
            &fixture("demo", "docker"),
            &format!("{}/dt/a:v1", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(
        layered, stream,
        "the same image, whichever attribute names it"
    );
}

#[test]
fn a_stream_script_store_path_is_recognised_by_its_conf_reference() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let script = nix_build(&fixture("demo", "docker"))[0].clone();
    let by_path = nixpush
        .run(&[
            script.to_str().unwrap(),
            &format!("{}/dt/b:v1", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    // A store path has no flake, so no provenance annotations: compare the images alone.
    let by_attr = nixpush
        .run(&[
            &fixture("demo", "docker"),
            &format!("{}/dt/b:v1", registry.host()),
            "--no-default-annotations",
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(by_path, by_attr);
}

#[test]
fn podman_runs_a_dockertools_image() {
    require("podman");
    let registry = Registry::start();
    let pinned = Nixpush::new()
        .run(&[
            &fixture("demo", "docker"),
            &format!("{}/dt/run:v1", registry.host()),
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(podman_run(&pinned, &[], &[]), "hello from nixpush\n");
    let busybox = store_layers(&fixture_conf("docker"))[0][0].join("bin/busybox");
    assert_eq!(
        podman_run(
            &pinned,
            &["--entrypoint", busybox.to_str().unwrap()],
            &["sh", "-c", "echo $GREETING; cat /etc/motd"]
        ),
        "hello\nhello from the customisation layer\n",
        "Env from the conf, files from the customisation layer"
    );
}

#[test]
fn old_conf_shape_dates_files_with_created_owns_them_by_root_and_writes_0555_nix_dirs() {
    // created 2001-02-03T04:05:06Z = 981173106. The nixpkgs versions that wrote confs without
    // uid/gid/mtime (mid 2020 to early 2024) wrote the /nix and /nix/store entries 0555.
    let (copy, _, _) = push_and_check(
        "docker-old",
        &["--mtime", "981173106", "--nix-dirs-mode", "555"],
    );
    assert_eq!(copy.config()["created"], "2001-02-03T04:05:06+00:00");
}

#[test]
fn non_root_owner_with_string_ids() {
    // mtime 2020-01-01T00:00:00+00:00 = 1577836800.
    push_and_check(
        "docker-nonroot",
        &[
            "--mtime",
            "1577836800",
            "--uid",
            "1000",
            "--gid",
            "100",
            "--uname",
            "app",
            "--gname",
            "users",
        ],
    );
}

#[test]
fn now_dates_are_the_time_of_the_push() {
    let before = unix_now();
    let registry = Registry::start();
    let image = format!("{}/dt/now:v1", registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "docker-now"), &image])
        .assert_ok();
    let after = unix_now();
    let copy = OciCopy::pull(&image);
    let config = copy.config();
    let created = nixpush::plan::parse_unix(config["created"].as_str().unwrap()).unwrap();
    assert!(
        (before..=after).contains(&created),
        "{created} not in {before}..={after}"
    );
    // Files carry the same instant as mtime.
    let layers = store_layers(&fixture_conf("docker-now"));
    let mtime = created.to_string();
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str().unwrap(),
        oracle_diff_id(&layers[0], &["--mtime", &mtime])
    );
}

fn unix_now() -> i64 {
    nixpush::plan::unix_now()
}

#[test]
fn config_flags_with_a_dockertools_image_are_a_usage_error() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("demo", "docker"),
        &format!("{}/dt/c:v1", registry.host()),
        "--entrypoint",
        "/bin/sh",
        "--env",
        "A=1",
        "--created",
        "now",
        "--max-layers",
        "10",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("in Nix") && line.contains("--entrypoint, --env, --created, --max-layers"),
        "{line}"
    );
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn a_customisation_layer_that_does_not_match_its_checksum_is_never_tagged() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("demo", "docker-badsum"),
        &format!("{}/dt/bad:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["does not match its checksum"]);
    assert_eq!(registry.manifest_status("dt/bad", "v1", None), 404);
}

#[test]
fn the_destination_tag_wins_over_the_image_tag() {
    let registry = Registry::start();
    Nixpush::new()
        .run(&[
            &fixture("demo", "docker"),
            &format!("{}/dt/t:mine", registry.host()),
        ])
        .assert_ok();
    assert_eq!(registry.manifest_status("dt/t", "mine", None), 200);
    assert_eq!(registry.manifest_status("dt/t", "fixture", None), 404);
}

#[test]
fn an_image_tag_a_registry_would_refuse_fails_before_any_upload() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("demo", "docker-badtag"),
        &format!("{}/dt/badtag", registry.host()),
    ]);
    assert_refused(&run, 1, &["\"1.0+build\" is not a valid registry tag"]);
    assert_eq!(registry.uploads_started(), 0);
    // Naming a tag in the destination is the way out.
    Nixpush::new()
        .run(&[
            &fixture("demo", "docker-badtag"),
            &format!("{}/dt/badtag:v1", registry.host()),
        ])
        .assert_ok();
}

#[test]
fn a_conf_attribute_that_is_not_a_dockertools_conf_is_an_ordinary_package() {
    let registry = Registry::start();
    let image = format!("{}/dt/pkg:v1", registry.host());
    Nixpush::new()
        .run(&[
            &fixture("demo", "app-with-conf"),
            &image,
            "--entrypoint",
            "bin/app",
        ])
        .assert_ok();
    assert_eq!(podman_run(&image, &[], &[]), "hello from nixpush\n");
}
