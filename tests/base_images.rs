//! `--base REF`: a plain package's layers on top of a registry image made without nixpush
//! (busybox in an OCI layout by umoci, put in the registry by skopeo). The image runs in podman
//! with the base's shell; its config has the base's settings under the image's own; the
//! manifest names the base by name and digest; the base's blobs are mounted on the same
//! registry (never downloaded) and streamed from another; bad bases are refused in one line
//! with no tag written.

use crate::common;

use common::*;

/// The manifest and config of `image`, read with skopeo.
fn manifest_and_config(image: &str) -> (serde_json::Value, serde_json::Value) {
    let manifest = serde_json::from_slice(&skopeo_raw(image)).unwrap();
    let config = skopeo_inspect(image, "--config");
    (manifest, config)
}

fn push_on_base(image: &str, base: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        fixture("demo", "on-base"),
        image.to_owned(),
        "--base".into(),
        base.to_owned(),
        "--entrypoint".into(),
        "bin/app".into(),
        "--env".into(),
        "APP_NAME=nixpush".into(),
        "--label".into(),
        "app.name=on-base".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nixpush::new().run(&args)
}

#[test]
fn a_package_on_a_base_runs_with_the_bases_shell_under_its_own_settings() {
    let registry = Registry::start();
    let base = format!("{}/base:1", registry.host());
    let _layout = busybox_base(&base, "base-1", "amd64");
    let (base_manifest, base_config) = manifest_and_config(&base);
    let base_digest = skopeo_digest(&base);
    let image = format!("{}/app:1", registry.host());
    push_on_base(&image, &base, &[]).assert_ok();

    let out = podman_run(&image, &[], &[]);
    assert_eq!(out.trim(), "hello from nixpush on base-1");

    let (manifest, config) = manifest_and_config(&image);
    // The base's layers first, as the base names them; then the image's own.
    let base_layers = base_manifest["layers"].as_array().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers.len() > base_layers.len());
    for (ours, theirs) in layers.iter().zip(base_layers) {
        assert_eq!(ours["digest"], theirs["digest"]);
        assert_eq!(ours["size"], theirs["size"]);
    }
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        diff_ids[..base_layers.len()],
        base_config["rootfs"]["diff_ids"].as_array().unwrap()[..]
    );
    let base_history = base_config["history"].as_array().unwrap();
    assert_eq!(
        config["history"].as_array().unwrap()[..base_history.len()],
        base_history[..]
    );
    // The base's settings under the image's own: docker's rule drops the base's Cmd for the
    // image's entrypoint.
    let run = &config["config"];
    let env: Vec<&str> = run["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        ["PATH=/bin", "BASE_RELEASE=base-1", "APP_NAME=nixpush"]
    );
    assert!(run["Entrypoint"][0]
        .as_str()
        .unwrap()
        .ends_with("-on-base/bin/app"));
    assert!(run.get("Cmd").is_none(), "{run}");
    assert_eq!(run["WorkingDir"], "/srv");
    assert_eq!(run["Labels"]["base.vendor"], "busybox");
    assert_eq!(run["Labels"]["app.name"], "on-base");
    // The base named by the name given and the digest it had.
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.base.name"], base);
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base_digest
    );
    // Same registry: the base's layers were mounted, none downloaded; nixpush generated no
    // /etc of its own (the base's passwd is the one the container sees).
    for layer in base_layers {
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(
            registry.requests("GET", &format!("/v2/base/blobs/{digest}")),
            0
        );
    }
    assert!(registry.requests("POST", "mount=") >= base_layers.len());
    let passwd = podman_run(&image, &["--entrypoint", "/bin/cat"], &["/etc/passwd"]);
    assert!(passwd.contains("baseuser:x:4242"), "{passwd}");

    // Pushed again: unchanged, nothing sent.
    let first = skopeo_digest(&image);
    let again = push_on_base(&image, &base, &[]);
    again.assert_ok();
    assert_eq!(skopeo_digest(&image), first);
    assert!(again.stderr.contains("unchanged"), "{}", again.stderr);
}

#[test]
fn a_base_on_another_registry_is_streamed_from_it_and_named_in_the_provenance() {
    let (source, destination) = (Registry::start(), Registry::start());
    let base = format!("{}/library/base:1", source.host());
    let _layout = busybox_base(&base, "far-1", "amd64");
    let (base_manifest, _) = manifest_and_config(&base);
    let image = format!("{}/app:1", destination.host());
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), "base passphrase");
    let passphrase = dir.path().join("passphrase");
    std::fs::write(&passphrase, "base passphrase\n").unwrap();
    let run = push_on_base(
        &image,
        &base,
        &[
            "--provenance",
            "--sign-key",
            key.to_str().unwrap(),
            "--sign-passphrase-file",
            passphrase.to_str().unwrap(),
            "--json",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let base_digest = skopeo_digest(&base);
    assert_eq!(json["images"][0]["base"], format!("{base}@{base_digest}"));
    assert_eq!(
        podman_run(&image, &[], &[]).trim(),
        "hello from nixpush on far-1"
    );
    // The provenance names the base by its digest (read back and checked by securesystemslib).
    let digest = json["images"][0]["manifestDigest"].as_str().unwrap();
    let out = dsse_from_registry(destination.port, "app", digest, &public);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statements: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deps = statements[0]["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .clone();
    let base_dep = deps.iter().find(|d| d["name"] == "base image").unwrap();
    assert_eq!(base_dep["uri"], format!("docker://{base}"));
    assert_eq!(
        base_dep["digest"]["sha256"],
        base_digest.strip_prefix("sha256:").unwrap()
    );
    for layer in base_manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(
            source.requests("GET", &format!("/v2/library/base/blobs/{digest}")),
            1,
            "{}",
            source.log()
        );
    }
}

#[test]
fn bad_bases_are_refused_in_one_line_and_no_tag_is_written() {
    let registry = Registry::start();
    let image = format!("{}/app:1", registry.host());

    // A dry run names the base and reaches no registry: a missing one is no error there.
    let nothing = format!("{}/nothing:1", registry.host());
    let dry = push_on_base(&image, &nothing, &["--dry-run"]);
    assert!(dry.assert_ok().contains(&format!("on base {nothing}")));
    let missing = push_on_base(&image, &nothing, &[]);
    assert_refused(&missing, 1, &["base image", "nothing:1", "no such image"]);

    let arm = format!("{}/base:arm", registry.host());
    let _layout = busybox_base(&arm, "arm-1", "arm64");
    let other = push_on_base(&image, &arm, &[]);
    assert_refused(&other, 1, &["base image", "linux/arm64", "linux/amd64"]);
    assert_eq!(registry.manifest_status("app", "1", None), 404);

    let dir = tempfile::tempdir().unwrap();
    let to_layout = format!("oci:{}", dir.path().join("l").display());
    let local = push_on_base(&to_layout, &arm, &[]);
    assert_refused(&local, 2, &["--base", "local destination"]);
    let contents = push_on_base(&image, &arm, &["--contents", &fixture("demo", "busybox")]);
    assert_refused(&contents, 2, &["--base", "--contents"]);
    let conf = Nixpush::new().run(&[&fixture("demo", "docker"), &image, "--base", &arm]);
    assert_refused(&conf, 2, &["--base"]);
}

/// The digests of the layers of `image` from the `from`th on.
fn layers_from(image: &str, from: usize) -> Vec<String> {
    let manifest: serde_json::Value = serde_json::from_slice(&skopeo_raw(image)).unwrap();
    manifest["layers"].as_array().unwrap()[from..]
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rebase_moves_the_images_own_layers_onto_the_bases_update_without_sending_them() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), "rebase passphrase");
    let registry = Registry::start();
    let base = format!("{}/base:stable", registry.host());
    let _v1 = busybox_base(&base, "base-1", "amd64");
    let base_layers = layers_from(&base, 0).len();
    let image = format!("{}/app:1", registry.host());
    push_on_base(&image, &base, &[]).assert_ok();
    let own = layers_from(&image, base_layers);
    let before = skopeo_digest(&image);
    // The base's update, under the same tag.
    let _v2 = busybox_base(&base, "base-2", "amd64");
    let v2 = skopeo_digest(&base);
    let uploads_before: Vec<usize> = own.iter().map(|d| registry.requests("PUT", d)).collect();

    let run = Nixpush::new().run_with(
        &[
            "rebase",
            &image,
            "--sign-key",
            key.to_str().unwrap(),
            "--json",
        ],
        &[("NIXPUSH_SIGN_PASSPHRASE", "rebase passphrase".into())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let rebased = json["digest"].as_str().unwrap();
    assert_ne!(rebased, before);
    assert_eq!(skopeo_digest(&image), rebased);
    assert_eq!(json["newBase"], format!("{base}@{v2}"));
    // The image's own layers are the same blobs, none sent again.
    assert_eq!(layers_from(&image, base_layers), own);
    let uploads_after: Vec<usize> = own.iter().map(|d| registry.requests("PUT", d)).collect();
    assert_eq!(uploads_after, uploads_before);
    // It runs on the new base, with its own settings and the new base's.
    assert_eq!(
        podman_run(&image, &[], &[]).trim(),
        "hello from nixpush on base-2"
    );
    let (manifest, config) = manifest_and_config(&image);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        v2
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        base
    );
    let env = &config["config"]["Env"];
    assert_eq!(
        *env,
        serde_json::json!(["PATH=/bin", "BASE_RELEASE=base-2", "APP_NAME=nixpush"])
    );
    assert!(config["config"].get("Cmd").is_none());
    // Signed before the tag moved: nixpush's verify and sigstore-rs accept it.
    Nixpush::new()
        .run(&["verify", &image, "--key", public.to_str().unwrap()])
        .assert_ok();
    let pinned = format!("{}/app@{rebased}", registry.host());
    let out = sigstore_verify(&pinned, &public);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_image_that_records_no_base_needs_old_base_and_a_wrong_one_is_refused() {
    let registry = Registry::start();
    let (old, new) = (
        format!("{}/base:1", registry.host()),
        format!("{}/base:2", registry.host()),
    );
    let _v1 = busybox_base(&old, "base-1", "amd64");
    let _v2 = busybox_base(&new, "base-2", "amd64");
    // Docker schema 2 carries no annotations: the image records no base.
    let image = format!("{}/app:docker", registry.host());
    push_on_base(&image, &old, &["--format", "docker"]).assert_ok();
    let media: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(
        media["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    let unrecorded = Nixpush::new().run(&["rebase", &image, "--base", &new]);
    assert_refused(&unrecorded, 1, &["records no base", "--old-base"]);
    let wrong = Nixpush::new().run(&["rebase", &image, "--base", &old, "--old-base", &new]);
    assert_refused(
        &wrong,
        1,
        &["first layers are not those of", "base:2@sha256:"],
    );

    let run = Nixpush::new().run(&[
        "rebase",
        &image,
        "--old-base",
        &old,
        "--base",
        &new,
        "--tag",
        "rebased",
    ]);
    run.assert_ok();
    let rebased = format!("{}/app:rebased", registry.host());
    assert_eq!(
        podman_run(&rebased, &[], &[]).trim(),
        "hello from nixpush on base-2"
    );
    let media: serde_json::Value = serde_json::from_slice(&skopeo_raw(&rebased)).unwrap();
    assert_eq!(
        media["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let missing = Nixpush::new().run(&["rebase", &format!("{}/app:none", registry.host())]);
    assert_refused(&missing, 1, &["no manifest", "app:none"]);
}

/// The release of the base `image` runs on, as a container of it reads it.
fn base_release(image: &str) -> String {
    let out = podman_run(image, &["--entrypoint", "/bin/cat"], &["/etc/base-release"]);
    out.trim().to_owned()
}

/// Checks that the image `pinned` starts with the layers of `base` and names its digest;
/// the digests of its own layers.
fn assert_on_base(pinned: &str, base: &str) -> Vec<String> {
    let base_layers = layers_from(base, 0);
    assert_eq!(layers_from(pinned, 0)[..base_layers.len()], base_layers[..]);
    let manifest: serde_json::Value = serde_json::from_slice(&skopeo_raw(pinned)).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        skopeo_digest(base)
    );
    layers_from(pinned, base_layers.len())
}

/// A multi-arch base `host/base:multi` made by podman from an amd64 and an arm64 busybox
/// image (`base:amd-VERSION`, `base:arm-VERSION`), as a team's multi-arch base is; its images.
fn base_index(registry: &Registry, version: &str) -> (Vec<tempfile::TempDir>, [String; 2]) {
    let host = registry.host();
    let (amd, arm) = (
        format!("{host}/base:amd-{version}"),
        format!("{host}/base:arm-{version}"),
    );
    let layouts = vec![
        busybox_base(&amd, &format!("amd-{version}"), "amd64"),
        busybox_base(&arm, &format!("arm-{version}"), "arm64"),
    ];
    let list = format!("localhost/nixpush-test-base-{}", registry.port);
    let podman_ok = |args: &[&str]| run_ok(&mut podman(args), "podman manifest");
    let _ = podman(&["manifest", "rm", &list]).output();
    podman_ok(&["manifest", "create", &list]);
    for image in [&amd, &arm] {
        let source = format!("docker://{image}");
        podman_ok(&["manifest", "add", "--tls-verify=false", &list, &source]);
    }
    let target = format!("docker://{host}/base:multi");
    podman_ok(&[
        "manifest",
        "push",
        "--tls-verify=false",
        "--all",
        &list,
        &target,
    ]);
    let _ = podman(&["manifest", "rm", &list]).output();
    (layouts, [amd, arm])
}

#[test]
fn each_platform_of_a_multi_arch_push_takes_the_bases_image_for_it_and_rebases_onto_its_update() {
    let registry = Registry::start();
    let host = registry.host();
    let (_v1, v1) = base_index(&registry, "1");
    let base = format!("{host}/base:multi");
    let image = format!("{host}/app:multi");
    let amd_app = format!("linux/amd64={}", fixture("demo", "on-base"));
    let arm_app = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.app")
    );
    let run = Nixpush::new().run(&[
        "--platform",
        &amd_app,
        "--platform",
        &arm_app,
        &image,
        "--base",
        &base,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    // The base read once: one version of it for every platform.
    assert_eq!(run.stderr.matches(&format!("base {base} is")).count(), 1);
    let mut own = Vec::new();
    for (i, platform_base) in v1.iter().enumerate() {
        let digest = json["images"][i]["manifestDigest"].as_str().unwrap();
        let pinned = format!("{host}/app@{digest}");
        own.push(assert_on_base(&pinned, platform_base));
    }
    assert_eq!(base_release(&image), "amd-1");

    // The base's update, under the same tag: the whole index rebased, each platform onto its
    // image of the new base, its own layers the same blobs.
    let (_v2, v2) = base_index(&registry, "2");
    let rebased = Nixpush::new().run(&["rebase", &image, "--json"]);
    let rebased: serde_json::Value = serde_json::from_str(rebased.assert_ok()).unwrap();
    assert_eq!(skopeo_digest(&image), rebased["digest"].as_str().unwrap());
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (i, platform_base) in v2.iter().enumerate() {
        let pinned = format!("{host}/app@{}", entries[i]["digest"].as_str().unwrap());
        assert_eq!(assert_on_base(&pinned, platform_base), own[i]);
    }
    assert_eq!(entries[1]["platform"]["architecture"], "arm64");
    assert_eq!(base_release(&image), "amd-2");
}
