//! Every compression gives a correct, deterministic image: gzip (the default, adaptive), zstd
//! (OCI media type `tar+zstd`) and none. The uncompressed bytes are the oracle's whatever the
//! compression, and podman runs the zstd image.

use crate::common;

use common::*;

/// Pushes the demo app with `args` to a fresh registry; returns the pinned reference, the copy
/// read back, and the registry (kept alive).
fn push(args: &[&str]) -> (String, OciCopy, Registry) {
    let registry = Registry::start();
    let image = format!("{}/comp/app:v1", registry.host());
    let mut all = vec![fixture("demo", "app"), image.clone()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let pinned = Nixpush::new().run(&all).assert_ok().to_owned();
    (pinned, OciCopy::pull(&image), registry)
}

/// Each layer's uncompressed bytes: diff_id equal to the config's and (for store layers) the
/// oracle's.
fn check_uncompressed(copy: &OciCopy, media_type: &str, decode: impl Fn(&[u8]) -> Vec<u8>) {
    let diff_ids = copy.config()["rootfs"]["diff_ids"].clone();
    let work = tempfile::tempdir().unwrap();
    for (i, layer) in copy.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(layer["mediaType"], media_type);
        let blob =
            std::fs::read(oci_blob(&copy.layout, layer["digest"].as_str().unwrap())).unwrap();
        let tar = decode(&blob);
        assert_eq!(
            nixpush::digest::Digest::of(&tar).to_string(),
            diff_ids[i].as_str().unwrap()
        );
        let path = work.path().join(format!("layer-{i}.tar"));
        std::fs::write(&path, &tar).unwrap();
        let check = check_layer(&path);
        if !check["expected"].is_null() {
            assert_eq!(check["diff_id"], check["expected"], "{check}");
        }
    }
}

#[test]
fn zstd_layers_are_deterministic_exact_and_run() {
    let (first, copy, _registry) = push(&["--compression", "zstd"]);
    let (second, _, _r2) = push(&["--compression", "zstd"]);
    assert_eq!(
        first.split_once('@').unwrap().1,
        second.split_once('@').unwrap().1
    );
    check_uncompressed(&copy, "application/vnd.oci.image.layer.v1.tar+zstd", |b| {
        zstd::stream::decode_all(b).unwrap()
    });
    let app = nix_build(&fixture("demo", "app"))[0].join("bin/app");
    assert_eq!(
        podman_run(&first, &[], &[app.to_str().unwrap()]),
        "hello from nixpush\n"
    );
}

#[test]
fn uncompressed_layers_are_the_tars_themselves() {
    let (_, copy, _registry) = push(&["--compression", "none"]);
    check_uncompressed(&copy, "application/vnd.oci.image.layer.v1.tar", |b| {
        b.to_vec()
    });
}

#[test]
fn gzip_levels_give_different_blobs_of_the_same_layers() {
    let (fast, fast_copy, _r1) = push(&[]);
    let (best, best_copy, _r2) = push(&["--compression-level", "9"]);
    assert_ne!(
        fast.split_once('@').unwrap().1,
        best.split_once('@').unwrap().1
    );
    assert_eq!(
        fast_copy.config()["rootfs"],
        best_copy.config()["rootfs"],
        "same diff_ids"
    );
    let decode = |b: &[u8]| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(b), &mut out).unwrap();
        out
    };
    check_uncompressed(
        &best_copy,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        decode,
    );
}

#[test]
fn a_level_outside_the_compression_is_a_usage_error() {
    for args in [["--compression-level", "12"], ["--compression-level", "0"]] {
        let mut all = vec![fixture("demo", "app"), "127.0.0.1:1/a/b".into()];
        if args[1] == "0" {
            all.extend(["--compression".into(), "zstd".into()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let run = Nixpush::new().run(&all);
        assert_refused(&run, 2, &["--compression-level"]);
    }
}

/// Layers are compressed on every core (gzip in pigz-style blocks, zstd in its multi-threaded
/// mode), and the bytes never depend on how many: one core (`taskset -c 0`) or all, one layer at
/// a time or eight, give one digest, for gzip and for zstd.
#[test]
fn the_same_layer_gives_one_digest_on_one_core_or_all_and_any_jobs() {
    require("taskset");
    for compression in ["gzip", "zstd"] {
        let push = |one_core: bool, jobs: &str| {
            let registry = Registry::start();
            let image = format!("{}/cores/app:v1", registry.host());
            let args = [
                fixture("demo", "app"),
                image,
                "--compression".into(),
                compression.into(),
                "--jobs".into(),
                jobs.into(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // A fresh cache each time: every layer is compressed, none taken from a cache.
            let nixpush = Nixpush::new();
            let direct = nixpush.command(&args);
            let mut cmd = if one_core {
                let mut t = std::process::Command::new("taskset");
                t.args(["-c", "0"])
                    .arg(direct.get_program())
                    .args(direct.get_args());
                for (k, v) in direct.get_envs() {
                    match v {
                        Some(v) => t.env(k, v),
                        None => t.env_remove(k),
                    };
                }
                t
            } else {
                direct
            };
            let run = Run::from_output(cmd.output().unwrap());
            let pinned = run.assert_ok().to_owned();
            pinned.rsplit('@').next().unwrap().to_owned()
        };
        let all = push(false, "8");
        assert_eq!(push(true, "8"), all, "{compression}: one core");
        assert_eq!(push(false, "1"), all, "{compression}: --jobs 1");
        assert_eq!(push(true, "1"), all, "{compression}: one core, --jobs 1");
    }
}
