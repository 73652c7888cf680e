//! Flags that contradict each other, and timeouts too short to let any request succeed, are
//! refused before anything moves: exit code 2, one line naming the flags, no `nix` evaluation
//! (the installable here does not exist: evaluating it would be another error, exit code 1)
//! and not one request to the registry. Before, `--format docker --compression zstd` failed
//! only after every layer was uploaded, and `--stall-timeout 0.0000001` made every request fail.

use crate::common;

use common::*;

/// An installable that cannot be evaluated: a run that reaches `nix` fails otherwise.
const NOWHERE: &str = "path:/nonexistent-flake-for-nixpush-tests#app";

/// The requests nixpush made to the registry (its access log names the user agent; the
/// harness's own readiness check has none).
fn requests(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.starts_with("127.0.0.1 ") && l.contains("\"nixpush/"))
        .count()
}

/// A usage error: exit code 2, nothing on stdout, one line on stderr.
fn assert_usage_line(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 2, "exit code; stderr:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {:?}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", run.stderr);
    assert!(lines[0].starts_with("nixpush: error: "), "{:?}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{:?} should name {n:?}", lines[0]);
    }
}

#[test]
fn contradicting_flags_are_refused_before_nix_or_the_registry_is_asked() {
    let registry = Registry::start();
    let image = format!("{}/conflicts/app:v1", registry.host());
    let nixpush = Nixpush::new();
    for (flags, names) in [
        (
            &["--format", "docker", "--compression", "zstd"][..],
            &["--format docker", "--compression zstd"][..],
        ),
        (
            &["--format", "docker", "--compression", "zstd:chunked"][..],
            &["--format docker", "--compression zstd:chunked"][..],
        ),
        (
            &["--format", "docker", "--sbom"],
            &["--format docker", "--sbom"],
        ),
        (
            &["--format", "docker", "--annotation", "org.example=1"],
            &["--format docker", "--annotation"],
        ),
        (
            &["--sbom-format", "cyclonedx"],
            &["--sbom-format", "--sbom"],
        ),
        (
            &["--trusted-public-key", "k:AAAA", "--no-check-sigs"],
            &["--trusted-public-key", "--no-check-sigs"],
        ),
    ] {
        let mut args = vec![NOWHERE, image.as_str()];
        args.extend(flags);
        let run = nixpush.run(&args);
        assert_usage_line(&run, names);
        assert!(!run.stderr.contains("registry"), "{}", run.stderr);
    }
    assert_eq!(requests(&registry), 0, "{}", registry.log());
}

#[test]
fn registry_flags_with_a_local_destination_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}", dir.path().join("layout").display());
    let archive = format!("docker-archive:{}", dir.path().join("image.tar").display());
    let nixpush = Nixpush::new();
    for dest in [&oci, &archive] {
        for (flags, name) in [
            (&["--upload", "monolithic"][..], "--upload"),
            (&["--upload", "streaming"], "--upload"),
        ] {
            let mut args = vec![NOWHERE, dest.as_str()];
            args.extend(flags);
            assert_usage_line(&nixpush.run(&args), &[name, "local destination"]);
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn an_images_file_image_with_contradicting_flags_is_refused_before_anything_moves() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("images.toml");
    let toml = format!(
        "[[image]]\ninstallable = \"{NOWHERE}\"\ndestination = \"{}/conflicts/file:v1\"\n",
        registry.host()
    );
    std::fs::write(&file, toml).unwrap();
    let run = Nixpush::new().run(&[
        "--images",
        file.to_str().unwrap(),
        "--format",
        "docker",
        "--compression",
        "zstd",
    ]);
    assert_usage_line(&run, &["--format docker", "--compression zstd"]);
    assert_eq!(requests(&registry), 0, "{}", registry.log());

    // The run's registry flags are for the file's registry images: a local one beside them is
    // no contradiction (the run then fails at `nix`, not at its flags).
    let oci = format!("oci:{}", dir.path().join("layout").display());
    std::fs::write(
        &file,
        format!("[[image]]\ninstallable = \"{NOWHERE}\"\ndestination = \"{oci}\"\n"),
    )
    .unwrap();
    let run = Nixpush::new().run(&["--images", file.to_str().unwrap(), "--insecure"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn timeouts_too_short_for_any_request_are_refused_in_one_line() {
    let registry = Registry::start();
    let image = format!("{}/timeouts/app:v1", registry.host());
    let nixpush = Nixpush::new();
    for (flag, value) in [
        ("--stall-timeout", "0.0000001"),
        ("--stall-timeout", "99ms"),
        ("--retry-for", "0.0000001"),
        ("--retry-for", "1ms"),
    ] {
        let run = nixpush.run(&[NOWHERE, &image, flag, value]);
        assert_eq!(run.code, 2, "{flag} {value}: {}", run.stderr);
        assert!(run.stdout.is_empty());
        // clap's line, then its pointer to --help.
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{first}");
        for needle in [flag, value, "at least 100ms"] {
            assert!(first.contains(needle), "{first:?} should name {needle:?}");
        }
    }
    assert_eq!(requests(&registry), 0, "{}", registry.log());
    // The floor itself is a timeout: the run goes on, to `nix` (which fails: exit code 1).
    for flag in ["--stall-timeout", "--retry-for"] {
        let run = nixpush.run(&[NOWHERE, &image, flag, "100ms"]);
        assert_eq!(run.code, 1, "{flag}: {}", run.stderr);
    }
}

/// The same contradiction found only at the registry (it refuses OCI manifests, so Docker
/// schema 2 is tried, which cannot name the zstd layers asked for): exit code 1, the reason said
/// once, and no tag.
#[test]
fn zstd_layers_for_a_registry_that_takes_only_docker_manifests_are_said_once() {
    let registry = Registry::start();
    let front = common::quirks::quirk_front(
        registry.port,
        common::quirks::Quirks {
            docker_media_types_only: true,
            ..Default::default()
        },
    );
    let image = format!("{}/artifactory/zstd:v1", front.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &image, "--compression", "zstd"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert_eq!(line.matches("cannot name zstd layers").count(), 1, "{line}");
    assert!(
        line.contains(&front.host()),
        "the registry is named: {line}"
    );
    assert_eq!(
        registry.manifest_status("artifactory/zstd", "v1", None),
        404
    );
}
