//! Bad input and refusing registries: each gives one clear line on stderr (after nix's own
//! messages), the documented exit code (2 for usage, 1 otherwise), and never a tag.

use crate::common;

use common::*;

const SECRET: &str = "s3cret-Pa55word";

#[test]
fn unknown_installable() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("demo", "no-such-attr"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["could not evaluate", "no-such-attr"]);
    // nix's own explanation came first, on stderr.
    assert!(
        run.stderr.contains("does not provide attribute"),
        "{}",
        run.stderr
    );
    assert_eq!(registry.manifest_status("x/y", "v1", None), 404);
}

#[test]
fn installable_that_fails_to_build() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("edge", "bad"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["could not build"]);
    assert!(
        run.stderr.contains("fails on purpose"),
        "nix's build log is shown:\n{}",
        run.stderr
    );
    assert_eq!(registry.manifest_status("x/y", "v1", None), 404);
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn malformed_destinations_are_usage_errors_before_any_build() {
    for bad in [
        "127.0.0.1:5000/Upper/case",
        "https://ghcr.io/o/r",
        "ghcr.io/o/r:bad tag",
        "ghcr.io/o/r@sha256:123",
    ] {
        // An installable that would fail to build: a usage error must come before nix runs.
        let run = Nixpush::new().run(&[&fixture("edge", "bad"), bad]);
        assert_refused(&run, 2, &["invalid image reference", bad]);
        assert!(
            !run.stderr.contains("fails on purpose"),
            "nix ran for {bad}"
        );
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/x/y",
        "--env",
        "NOVALUE",
    ]);
    assert_refused(&run, 2, &["--env", "KEY=VALUE"]);
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/x/y",
        "--expose",
        "http",
    ]);
    assert_refused(&run, 2, &["--expose"]);
    let run = Nixpush::new().run(&[&fixture("demo", "app")]);
    assert_eq!(
        run.code, 2,
        "a missing destination is a usage error: {}",
        run.stderr
    );
    let run = Nixpush::new().run(&["completions", "cmd.exe"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid value 'cmd.exe'"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_entrypoint_is_reported_with_the_store_path() {
    let registry = Registry::start();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
        "--entrypoint",
        "bin/nope",
    ]);
    assert_refused(&run, 1, &["entrypoint \"bin/nope\" does not exist", "-app"]);
    assert_eq!(registry.manifest_status("x/y", "v1", None), 404);
}

#[test]
fn missing_nix() {
    let nixpush = Nixpush::new();
    let out = nixpush
        .command(&[&fixture("demo", "app"), "127.0.0.1:1/x/y"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_refused(&run, 1, &["`nix` was not found", "make setup"]);
}

#[test]
fn registry_not_listening() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &format!("127.0.0.1:{port}/x/y:v1")]);
    assert_refused(
        &run,
        1,
        &["cannot connect", &format!("127.0.0.1:{port}"), "refused"],
    );
}

#[test]
fn registry_requiring_credentials_without_any() {
    let registry = Registry::start_with(RegistryConfig {
        htpasswd: Some(("alice".into(), SECRET.into())),
        ..Default::default()
    });
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["requires credentials", &registry.host()]);
    assert_eq!(
        registry.manifest_status("x/y", "v1", Some(("alice", SECRET))),
        404
    );
}

#[test]
fn wrong_credentials_are_rejected_and_never_printed() {
    let registry = Registry::start_with(RegistryConfig {
        htpasswd: Some(("alice".into(), SECRET.into())),
        ..Default::default()
    });
    let nixpush = Nixpush::new();
    let wrong = "wrong-Pa55word-xyz";
    nixpush.login(&registry.host(), "alice", wrong);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["credentials were rejected", "alice"]);
    assert!(
        !run.stderr.contains(wrong),
        "the password leaked:\n{}",
        run.stderr
    );
    assert_eq!(registry.uploads_started(), 0);
    assert_eq!(
        registry.manifest_status("x/y", "v1", Some(("alice", SECRET))),
        404
    );
}

/// A registry that requires alice's password, and nixpush with it in its Docker config.
fn logged_in() -> (Registry, Nixpush) {
    let registry = Registry::start_with(RegistryConfig {
        htpasswd: Some(("alice".into(), SECRET.into())),
        ..Default::default()
    });
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), "alice", SECRET);
    (registry, nixpush)
}

#[test]
fn right_credentials_from_docker_config_push_and_are_never_printed() {
    let (registry, nixpush) = logged_in();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    let pinned = run.assert_ok();
    assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET));
    let digest = pinned.split_once('@').unwrap().1;
    assert_eq!(
        registry.manifest_status("x/y", digest, Some(("alice", SECRET))),
        200
    );
    assert_eq!(
        registry.manifest_status("x/y", "v1", Some(("alice", SECRET))),
        200
    );
}

#[test]
fn verbose_shows_each_request_and_the_credentials_source_but_no_secret() {
    use base64::Engine as _;
    let (registry, nixpush) = logged_in();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/x/verbose:v1", registry.host()),
        "--verbose",
    ]);
    run.assert_ok();
    let manifest_put = format!(
        "PUT http://{}/v2/x/verbose/manifests/v1 -> 201 Created",
        registry.host()
    );
    assert!(run.stderr.contains(&manifest_put), "{}", run.stderr);
    assert!(run.stderr.contains("credentials for"), "{}", run.stderr);
    assert!(run.stderr.contains("(user alice)"), "{}", run.stderr);
    // Neither the password nor the Basic header value, nor the upload state of a Location.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{SECRET}"));
    for secret in [SECRET, basic.as_str(), "_state="] {
        assert!(!run.stderr.contains(secret), "{secret} in:\n{}", run.stderr);
    }
    // Without --verbose, none of it.
    let quiet = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/x/verbose:v1", registry.host()),
    ]);
    assert!(!quiet.stderr.contains("-> 201"), "{}", quiet.stderr);
}

#[test]
fn read_only_registry_refuses_the_push() {
    let registry = Registry::start_with(RegistryConfig {
        read_only: true,
        ..Default::default()
    });
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_refused(&run, 1, &["POST", "/blobs/uploads/"]);
    assert_eq!(registry.manifest_status("x/y", "v1", None), 404);
}

#[test]
fn unreadable_store_file_fails_the_push_and_leaves_no_tag() {
    require("strace");
    let registry = Registry::start();
    let installable = fixture("edge", "all");
    let outputs = nix_build(&installable);
    let closure = nix_closure(&outputs);
    let modes = closure
        .iter()
        .find(|p| p.to_str().unwrap().ends_with("-modes"))
        .unwrap();
    let victim = modes.join("share/data.txt");
    assert!(victim.is_file());
    // Root ignores file modes, so the failure is injected: opening this one file fails with
    // EACCES, as it would for an unreadable file; everything else works.
    let nixpush = Nixpush::new();
    let mut cmd = std::process::Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=openat",
        "-e",
        "inject=openat:error=EACCES",
        "-P",
    ])
    .arg(&victim)
    .arg(env!("CARGO_BIN_EXE_nixpush"))
    .args([
        installable.as_str(),
        &format!("{}/edge/all:v1", registry.host()),
    ]);
    let inner = nixpush.command(&[]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    let run = Run::from_output(out);
    assert_refused(
        &run,
        1,
        &[
            "cannot read store path",
            victim.to_str().unwrap(),
            "Permission denied",
        ],
    );
    assert_eq!(registry.manifest_status("edge/all", "v1", None), 404);
    // The broken layer's upload was abandoned, not committed.
    assert!(
        registry.requests("DELETE", "/blobs/uploads/") >= 1,
        "{}",
        registry.log()
    );
}

#[test]
fn arguments_after_double_dash_go_to_nix() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/x/y",
        "--",
        "--no-such-nix-flag",
    ]);
    assert_refused(&run, 1, &["could not evaluate"]);
    assert!(
        run.stderr.contains("--no-such-nix-flag"),
        "nix itself complained about the flag:\n{}",
        run.stderr
    );
}

#[test]
fn a_destination_digest_must_match_the_image() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let installable = fixture("demo", "app");
    let wrong = format!("{}/x/y@sha256:{}", registry.host(), "0".repeat(64));
    let run = nixpush.run(&[&installable, &wrong]);
    assert_refused(
        &run,
        1,
        &["manifest digest is sha256:", "not the sha256:0000"],
    );
    assert_eq!(registry.requests("PUT", "/manifests/"), 0);

    // The right digest pushes the image untagged, by digest only.
    let tagged = nixpush
        .run(&[&installable, &format!("{}/x/tagged:v1", registry.host())])
        .assert_ok()
        .to_owned();
    let digest = tagged.split_once('@').unwrap().1;
    let by_digest = format!("{}/x/untagged@{digest}", registry.host());
    let pinned = nixpush
        .run(&[&installable, &by_digest])
        .assert_ok()
        .to_owned();
    assert_eq!(pinned, by_digest);
    assert_eq!(registry.manifest_status("x/untagged", digest, None), 200);
    assert_eq!(registry.manifest_status("x/untagged", "latest", None), 404);
}
