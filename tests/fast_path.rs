//! The fast path: layers already in the registry are found from metadata alone. A fresh runner
//! with an empty cache reads the tag's manifest (every layer descriptor carries its layer key),
//! confirms the blobs with HEAD and reads nothing from the store; `--cache-from` reuses another
//! repository's layers by mounting them; concurrency never changes the result.

use crate::common;

use std::process::Command;

use common::*;

#[test]
fn unchanged_repush_from_an_empty_cache_reads_no_store_file_and_uploads_nothing() {
    require("strace");
    let registry = Registry::start();
    let installable = fixture("edge", "all");
    let image = format!("{}/fast/all:v1", registry.host());
    let first = Nixpush::new()
        .run(&[&installable, &image])
        .assert_ok()
        .to_owned();
    let uploads = registry.uploads_started();

    // Another machine: a fresh cache, every open traced.
    let fresh = Nixpush::new();
    let trace = fresh.cache.path().join("opens.trace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_nixpush"))
        .args([installable.as_str(), image.as_str()]);
    for (k, v) in fresh.command(&[]).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.stdout.trim(), first, "{}", run.stderr);
    assert_eq!(registry.uploads_started(), uploads, "nothing uploaded");

    let closure = nix_closure(&nix_build(&installable));
    let opens = std::fs::read_to_string(&trace).unwrap();
    assert!(
        opens.contains("openat("),
        "the trace recorded opens:\n{opens}"
    );
    for path in &closure {
        let inside = format!("\"{}", path.display());
        let read: Vec<&str> = opens.lines().filter(|l| l.contains(&inside)).collect();
        assert!(
            read.is_empty(),
            "the push opened files of {}:\n{}",
            path.display(),
            read.join("\n")
        );
    }
}

#[test]
fn cache_from_mounts_the_layers_another_repository_has() {
    let registry = Registry::start();
    let v1 = format!("{}/team/app:v1", registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &v1])
        .assert_ok();
    let patches = registry.requests("PATCH", "/blobs/uploads/");

    // Another repository, another machine, the next version of the app.
    let v2 = format!("{}/other/app:v2", registry.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app-v2"), &v2, "--cache-from", &v1]);
    run.assert_ok();
    // busybox and the root filesystem are mounted; only the changed app is uploaded.
    assert_eq!(
        registry.requests("POST", "mount=sha256"),
        2,
        "{}",
        registry.log()
    );
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/") - patches, 1);
    assert_eq!(run.stderr.matches("mounted").count(), 2, "{}", run.stderr);
    // The image is complete where it was pushed.
    let copy = OciCopy::pull(&v2);
    assert_eq!(copy.checked_layers().len(), 3);
}

/// The actions of `--json` output, in layer order.
fn actions(run: &Run) -> Vec<String> {
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    json["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn layers_the_cache_saw_in_another_repository_are_mounted_from_there() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let first = format!("{}/team/app:v1", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &first, "--json"]);
    assert_eq!(actions(&run), ["pushed"; 3]);
    let patches = registry.requests("PATCH", "/blobs/uploads/");

    // Same machine, another repository of the same registry: nothing is uploaded again.
    let second = format!("{}/team/app-copy:v1", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &second, "--json"]);
    assert_eq!(actions(&run), ["mounted"; 3]);
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/"), patches);
    assert_eq!(OciCopy::pull(&second).checked_layers().len(), 3);
}

#[test]
fn mount_from_names_a_repository_the_cache_does_not_know_of() {
    let registry = Registry::start();
    let elsewhere = Registry::start();
    let nixpush = Nixpush::new();
    // Pushed to another registry first: the cache knows the blobs, not that `registry` has them.
    let there = format!("{}/base/app:v1", elsewhere.host());
    nixpush.run(&[&fixture("demo", "app"), &there]).assert_ok();
    // Copied, digests preserved, into `registry` by someone else (a mirror job, say).
    let base = format!("{}/mirror/base:v1", registry.host());
    skopeo_ok(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{there}"),
        &format!("docker://{base}"),
    ]);
    let patches = registry.requests("PATCH", "/blobs/uploads/");

    let app = format!("{}/team/app:v1", registry.host());
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &app,
        "--json",
        "--mount-from",
        "mirror/base",
    ]);
    assert_eq!(actions(&run), ["mounted"; 3]);
    assert_eq!(registry.requests("PATCH", "/blobs/uploads/"), patches);
    assert_eq!(
        registry.requests("POST", "from=mirror%2Fbase")
            + registry.requests("POST", "from=mirror/base"),
        3,
        "{}",
        registry.log()
    );
    assert_eq!(OciCopy::pull(&app).checked_layers().len(), 3);

    // A repository that does not have the blobs: the registry declines, the layers are uploaded
    // (in the sessions the declined mounts opened), and the push succeeds.
    let other = format!("{}/team/other:v1", registry.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &other]);
    run.assert_ok();
    let fresh = format!("{}/fresh/app:v1", registry.host());
    let cache_only = Nixpush::new();
    cache_only
        .run(&[&fixture("demo", "app"), &there])
        .assert_ok();
    let (posts, mounts) = (
        registry.requests("POST", "/blobs/uploads/"),
        registry.requests("POST", "mount="),
    );
    let run = cache_only.run(&[
        &fixture("demo", "app"),
        &fresh,
        "--json",
        "--mount-from",
        "nobody/has-it",
    ]);
    assert_eq!(actions(&run), ["pushed"; 3]);
    // Three declined mounts, whose sessions carried the layers: the one other upload session
    // opened is the config's.
    assert_eq!(registry.requests("POST", "mount=") - mounts, 3);
    assert_eq!(registry.requests("POST", "/blobs/uploads/") - posts, 3 + 1);
    assert_eq!(OciCopy::pull(&fresh).checked_layers().len(), 3);
}

#[test]
fn cache_from_another_registry_is_a_usage_error() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/a/b",
        "--cache-from",
        "ghcr.io/o/r:1",
    ]);
    assert_refused(&run, 2, &["--cache-from"]);
}

#[test]
fn layer_descriptors_carry_their_key_and_diff_id() {
    let registry = Registry::start();
    let image = format!("{}/fast/keys:v1", registry.host());
    let nixpush = Nixpush::new();
    nixpush.run(&[&fixture("demo", "app"), &image]).assert_ok();
    let plan = nixpush
        .run(&[&fixture("demo", "app"), &image, "--dry-run"])
        .assert_ok()
        .to_owned();
    let copy = OciCopy::pull(&image);
    let diff_ids = copy.config()["rootfs"]["diff_ids"].clone();
    let layers = copy.manifest["layers"].as_array().unwrap().clone();
    for (i, layer) in layers.iter().enumerate() {
        let key = layer["annotations"]["dev.nixpush.layer.key"]
            .as_str()
            .unwrap();
        assert!(
            plan.contains(&format!("layer {}  ", i + 1)) && plan.contains(&format!("key {key}")),
            "{plan}"
        );
        assert_eq!(
            layer["annotations"]["dev.nixpush.layer.diff-id"],
            diff_ids[i]
        );
    }
}

#[test]
fn the_number_of_jobs_does_not_change_the_image() {
    let installable = fixture("edge", "all");
    let digest = |jobs: &str| {
        let registry = Registry::start();
        let out = Nixpush::new()
            .run(&[
                &installable,
                &format!("{}/jobs/all:v1", registry.host()),
                "--jobs",
                jobs,
            ])
            .assert_ok()
            .to_owned();
        out.split_once('@').unwrap().1.to_owned()
    };
    assert_eq!(digest("1"), digest("8"));
}

#[test]
fn verify_rebuilds_and_refuses_a_known_blob_that_is_not_the_layer() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let v1 = format!("{}/verify/app:v1", registry.host());
    nixpush.run(&[&fixture("demo", "app"), &v1]).assert_ok();

    // Poison the local cache: every entry now names the largest blob of the image, which the
    // registry does hold, with its true size and diff_id.
    let manifest = OciCopy::pull(&v1).manifest;
    let biggest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64())
        .unwrap()
        .clone();
    let entries = nixpush.cache.path().join("layers/v1");
    for entry in std::fs::read_dir(&entries).unwrap() {
        let path = entry.unwrap().path();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["digest"] = biggest["digest"].clone();
        json["size"] = biggest["size"].clone();
        json["diff_id"] = biggest["annotations"]["dev.nixpush.layer.diff-id"].clone();
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    }

    // Believed without --verify: the poison takes (every layer names the same blob)...
    let v2 = format!("{}/verify/app:v2", registry.host());
    nixpush.run(&[&fixture("demo", "app"), &v2]).assert_ok();
    let poisoned: Vec<serde_json::Value> = OciCopy::pull(&v2).manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].clone())
        .collect();
    assert!(
        poisoned.iter().all(|d| *d == biggest["digest"]),
        "{poisoned:?}"
    );

    // ...refused with --verify: the layers are rebuilt, and the image is the true one.
    let v3 = format!("{}/verify/app:v3", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &v3, "--verify"]);
    let pinned = run.assert_ok().to_owned();
    assert!(run.stderr.contains("--verify"), "{}", run.stderr);
    let v1_digest = format!(
        "{}/verify/app@{}",
        registry.host(),
        OciCopy::pull(&v1).manifest_digest
    );
    assert_eq!(pinned, v1_digest, "the same image as the first push");
}

#[test]
fn several_images_in_one_run_upload_each_shared_layer_once() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let file = nixpush.cache.path().join("images.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [[image]]
            installable = "{}"
            destination = "{host}/many/one:v1"
            entrypoint = "bin/app"

            [[image]]
            installable = "{}"
            destination = "{host}/many/two:v1"
            tags = ["stable"]
            entrypoint = "bin/app"
            env = {{ VERSION = "2" }}
            "#,
            fixture("demo", "app"),
            fixture("demo", "app-v2"),
            host = registry.host(),
        ),
    )
    .unwrap();
    let run = nixpush.run(&["--images", file.to_str().unwrap()]);
    let out = run.assert_ok().to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one pinned reference per image: {out}");
    assert!(lines[0].starts_with(&format!("{}/many/one@sha256:", registry.host())));
    assert!(lines[1].starts_with(&format!("{}/many/two@sha256:", registry.host())));
    // busybox and the root filesystem are shared: built and uploaded once, then mounted into
    // the second repository. The two apps are uploaded; so are two configs.
    assert_eq!(
        registry.requests("PATCH", "/blobs/uploads/"),
        4,
        "{}",
        registry.log()
    );
    assert_eq!(registry.requests("POST", "mount=sha256"), 2);
    assert_eq!(registry.manifest_status("many/two", "stable", None), 200);
    for image in ["many/one:v1", "many/two:v1"] {
        let copy = OciCopy::pull(&format!("{}/{image}", registry.host()));
        assert_eq!(copy.checked_layers().len(), 3);
    }
}

#[test]
fn verify_also_refuses_a_known_blob_with_a_forged_diff_id() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let v1 = format!("{}/forged/app:v1", registry.host());
    let first = nixpush
        .run(&[&fixture("demo", "app"), &v1])
        .assert_ok()
        .to_owned();
    // The right blobs, the wrong diff_ids.
    let forged = nixpush::digest::Digest::of(b"forged").to_string();
    for entry in std::fs::read_dir(nixpush.cache.path().join("layers/v1")).unwrap() {
        let path = entry.unwrap().path();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["diff_id"] = forged.clone().into();
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    }
    let v2 = format!("{}/forged/app:v2", registry.host());
    nixpush.run(&[&fixture("demo", "app"), &v2]).assert_ok();
    let believed = OciCopy::pull(&v2).config()["rootfs"]["diff_ids"].clone();
    assert!(
        believed
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d == forged.as_str()),
        "{believed}"
    );

    let v3 = format!("{}/forged/app:v3", registry.host());
    let verified = nixpush
        .run(&[&fixture("demo", "app"), &v3, "--verify"])
        .assert_ok()
        .to_owned();
    assert_eq!(
        verified.split_once('@').unwrap().1,
        first.split_once('@').unwrap().1
    );
}
