//! Registries in the wild: each documented way GHCR, ECR, Google Artifact Registry, Quay,
//! Harbor, Artifactory, Nexus and Docker Hub bend the distribution spec, played by the quirk front
//! (`common/quirks.rs`) before a real docker-registry. Every push runs with no flag, and skopeo
//! reads the image back from the registry behind the front. Each test cites the public report
//! of the behaviour it plays.

use crate::common;

use common::front::{Front, Seen};
use common::quirks::{quirk_front, Quirks};
use common::*;

const MIB: u64 = 1024 * 1024;

/// A real registry, and the quirk front before it.
fn behind_quirks(quirks: Quirks) -> (Registry, Front) {
    let registry = Registry::start();
    let front = quirk_front(registry.port, quirks);
    (registry, front)
}

/// What the front saw since request `from`.
fn seen_since(front: &Front, from: usize) -> Vec<Seen> {
    front.seen().into_iter().skip(from).collect()
}

fn answered(seen: &[Seen], method: &str, status: u16) -> usize {
    seen.iter()
        .filter(|s| s.method == method && s.status == Some(status))
        .count()
}

/// The pinned reference's digest.
fn digest_of(pinned: &str) -> String {
    pinned.trim().rsplit('@').next().unwrap().to_owned()
}

/// Google Artifact Registry takes monolithic uploads only ("Artifact Registry does not support
/// Docker chunked uploads", quoted in dotnet/sdk-container-builds#287; the 411 "Length
/// Required" it answers is in oras-project/rust-oci-client#176). A streamed PATCH answered 411
/// falls back to one PUT with a length, and the host is remembered: the next push sends no
/// streamed PATCH at all.
#[test]
fn a_411_to_a_streamed_patch_falls_back_to_one_put_and_is_remembered() {
    let (_registry, front) = behind_quirks(Quirks {
        length_required: Some(411),
        ..Default::default()
    });
    let nixpush = Nixpush::new();
    let image = format!("{}/gar/app:v1", front.host());
    let pinned = nixpush
        .run(&[&fixture("demo", "app"), &image])
        .assert_ok()
        .to_owned();
    let first = front.seen();
    assert!(answered(&first, "PATCH", 411) >= 1, "{first:#?}");
    // Every layer and the config ended in a PUT that carried it.
    assert!(
        first
            .iter()
            .filter(|s| s.method == "PUT" && s.target.contains("/blobs/uploads/"))
            .all(|s| s.status == Some(201)),
        "{first:#?}"
    );
    assert_eq!(OciCopy::pull(&image).checked_layers().len(), 3);
    assert_eq!(skopeo_digest(&image), digest_of(&pinned));

    // Remembered: a new image on this host goes up whole from the start.
    let large = format!("{}/gar/large:v1", front.host());
    nixpush
        .run(&[&fixture("demo", "large"), &large])
        .assert_ok();
    let second = seen_since(&front, first.len());
    assert_eq!(
        second.iter().filter(|s| s.method == "PATCH").count(),
        0,
        "{second:#?}"
    );
    assert!(OciCopy::pull(&large).checked_layers().len() >= 2);
}

/// A front end that refuses `Transfer-Encoding: chunked` (400) gets fixed-size PATCHes, each
/// with its Content-Length and Content-Range (the upload form of the distribution spec's
/// "chunked upload"; rust-oci-client#37 sends GHCR the same).
#[test]
fn a_400_to_a_streamed_patch_falls_back_to_chunks_with_lengths() {
    let (_registry, front) = behind_quirks(Quirks {
        length_required: Some(400),
        ..Default::default()
    });
    let image = format!("{}/chunked/large:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "large"), &image])
        .assert_ok();
    let seen = front.seen();
    assert!(answered(&seen, "PATCH", 400) >= 1, "{seen:#?}");
    let chunks: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PATCH" && s.status == Some(202))
        .collect();
    // The 20 MiB layer is three chunks of at most 8 MiB, each saying where it goes.
    assert!(chunks.len() >= 3, "{seen:#?}");
    for c in &chunks {
        assert!(c.content_length.is_some_and(|l| l <= 8 * MIB), "{c:?}");
        assert!(c.content_range.is_some(), "{c:?}");
    }
    assert!(chunks.iter().any(|c| c
        .content_range
        .as_deref()
        .is_some_and(|r| r.starts_with(&format!("{}-", 8 * MIB)))));
    assert!(OciCopy::pull(&image).checked_layers().len() >= 2);
}

/// GHCR refuses a request body over 4 MiB with 416 "exceeds the maximum permissible limit of
/// 4.00MiB" (oras-project/rust-oci-client#35). A layer the cache knows goes up as one PUT with
/// its length; refused, it is streamed instead, and no body over the cap is sent to the host
/// again (the next push streams at once).
#[test]
fn a_416_body_cap_falls_back_to_streaming_and_no_body_over_the_cap_is_sent_again() {
    let elsewhere = Registry::start();
    let nixpush = Nixpush::new();
    // The cache now knows the large layer's blob.
    nixpush
        .run(&[
            &fixture("demo", "large"),
            &format!("{}/seed/large:v1", elsewhere.host()),
        ])
        .assert_ok();

    let (_registry, front) = behind_quirks(Quirks {
        body_cap: Some(4 * MIB),
        // Declined mounts: the second push below must upload, not link.
        decline_mounts: true,
        ..Default::default()
    });
    let image = format!("{}/ghcr/large:v1", front.host());
    nixpush
        .run(&[&fixture("demo", "large"), &image])
        .assert_ok();
    let first = front.seen();
    assert_eq!(answered(&first, "PUT", 416), 1, "{first:#?}");
    assert!(OciCopy::pull(&image).checked_layers().len() >= 2);

    let again = format!("{}/ghcr/again:v1", front.host());
    nixpush
        .run(&[&fixture("demo", "large"), &again])
        .assert_ok();
    let second = seen_since(&front, first.len());
    assert_eq!(answered(&second, "PUT", 416), 0, "{second:#?}");
    assert!(
        second
            .iter()
            .all(|s| s.content_length.is_none_or(|l| l <= 4 * MIB)),
        "{second:#?}"
    );
    assert!(OciCopy::pull(&again).checked_layers().len() >= 2);
}

/// A host that wants lengths and caps them (a front end refusing chunked bodies before GHCR's
/// cap): chunks shrink under the cap the 416 names, and every body the registry took is under it.
#[test]
fn chunks_shrink_under_a_cap_the_host_names() {
    let (_registry, front) = behind_quirks(Quirks {
        length_required: Some(400),
        body_cap: Some(4 * MIB),
        ..Default::default()
    });
    let image = format!("{}/capped/large:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "large"), &image])
        .assert_ok();
    let seen = front.seen();
    assert!(answered(&seen, "PATCH", 416) >= 1, "{seen:#?}");
    let taken: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PATCH" && s.status == Some(202))
        .collect();
    assert!(taken.len() >= 5, "20 MiB in chunks of 4 MiB: {seen:#?}");
    assert!(taken
        .iter()
        .all(|s| s.content_length.is_some_and(|l| l <= 4 * MIB)));
    assert!(OciCopy::pull(&image).checked_layers().len() >= 2);
}

/// ECR: PATCH answered 201 rather than 202, and the `Range` of every later answer stuck at the
/// first one's (aws/containers-roadmap#2831); parts under 5 MiB but the last refused
/// (`LayerPartTooSmallException`, dotnet/sdk-container-builds#279 and #424). Chunks are sized
/// at least 5 MiB, and offsets counted from the bytes sent, so the stuck `Range` misleads
/// nothing; a streamed PATCH answered 201 is accepted too.
#[test]
fn ecr_201_stuck_range_and_minimum_part_size() {
    let (_registry, front) = behind_quirks(Quirks {
        ecr: true,
        length_required: Some(400),
        ..Default::default()
    });
    let image = format!("{}/ecr/large:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "large"), &image])
        .assert_ok();
    let seen = front.seen();
    let parts: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "PATCH" && s.status == Some(201))
        .collect();
    assert!(parts.len() >= 3, "{seen:#?}");
    // Offsets follow the bytes sent: the third chunk starts at 16 MiB, whatever Range said.
    assert!(
        parts.iter().any(|c| c
            .content_range
            .as_deref()
            .is_some_and(|r| r.starts_with(&format!("{}-", 16 * MIB)))),
        "{parts:#?}"
    );
    assert!(OciCopy::pull(&image).checked_layers().len() >= 2);

    // ECR without the length quirk: one streamed PATCH per layer, answered 201, accepted.
    let (_registry, front) = behind_quirks(Quirks {
        ecr: true,
        ..Default::default()
    });
    let image = format!("{}/ecr/app:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &image])
        .assert_ok();
    assert_eq!(answered(&front.seen(), "PATCH", 201), 3);
    assert_eq!(OciCopy::pull(&image).checked_layers().len(), 3);
}

/// Registries that refuse OCI manifests with 400 `MANIFEST_INVALID` (older Artifactory, Nexus,
/// Harbor 1.x; GitLab's in chainguard-forks/kaniko#160; containers/image#584 falls back the
/// same way): the manifest is written again in Docker schema 2 media types, with the same
/// config bytes, so the same image ID and diff_ids; the host is remembered.
#[test]
fn oci_manifests_refused_fall_back_to_docker_schema_2_with_the_same_image_id() {
    let plain = Registry::start();
    let oci_image = format!("{}/plain/docker:v1", plain.host());
    Nixpush::new()
        .run(&[&fixture("demo", "docker"), &oci_image])
        .assert_ok();

    let (_registry, front) = behind_quirks(Quirks {
        docker_media_types_only: true,
        ..Default::default()
    });
    let nixpush = Nixpush::new();
    let image = format!("{}/artifactory/docker:v1", front.host());
    let pinned = nixpush
        .run(&[&fixture("demo", "docker"), &image])
        .assert_ok()
        .to_owned();
    let first = front.seen();
    assert_eq!(answered(&first, "PUT", 400), 1, "{first:#?}");
    let raw: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    for layer in raw["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert!(layer.get("annotations").is_none());
    }
    assert!(raw.get("annotations").is_none());
    // The pinned reference names what the registry holds.
    assert_eq!(skopeo_digest(&image), digest_of(&pinned));
    // The same config bytes as the OCI push: the same image ID, the same diff_ids.
    let oci: serde_json::Value = serde_json::from_slice(&skopeo_raw(&oci_image)).unwrap();
    assert_eq!(raw["config"]["digest"], oci["config"]["digest"]);
    let layer_digests = |m: &serde_json::Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(layer_digests(&raw), layer_digests(&oci));
    let pulled = OciCopy::pull(&image);
    assert_eq!(
        pulled.config()["rootfs"],
        OciCopy::pull(&oci_image).config()["rootfs"]
    );

    // Remembered: the next push writes Docker schema 2 at once.
    let again = format!("{}/artifactory/docker:v2", front.host());
    nixpush
        .run(&[&fixture("demo", "docker"), &again])
        .assert_ok();
    assert_eq!(answered(&seen_since(&front, first.len()), "PUT", 400), 0);

    // Multi-arch to a host not known yet: the first platform's manifest is refused as OCI, and
    // the whole image goes up as Docker manifests under a Docker manifest list.
    let (_registry, front) = behind_quirks(Quirks {
        docker_media_types_only: true,
        ..Default::default()
    });
    let multi = format!("{}/artifactory/multi:v1", front.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let pinned = nixpush
        .run(&["--platform", &amd, "--platform", &arm, &multi])
        .assert_ok()
        .to_owned();
    let list: serde_json::Value = serde_json::from_slice(&skopeo_raw(&multi)).unwrap();
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(skopeo_digest(&multi), digest_of(&pinned));
    assert_eq!(answered(&front.seen(), "PUT", 400), 1);
    assert_eq!(
        OciCopy::pull_platform(&multi, "arm64").config()["architecture"],
        "arm64"
    );
}

/// `--format docker` chooses Docker schema 2 up front, multi-arch included (a manifest list of
/// Docker manifests); zstd layers, which Docker schema 2 cannot name, are one line and no tag.
#[test]
fn format_docker_up_front_multi_arch_and_zstd() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/multi/docker:v1", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let pinned = nixpush
        .run(&[
            "--platform",
            &amd,
            "--platform",
            &arm,
            &image,
            "--format",
            "docker",
        ])
        .assert_ok()
        .to_owned();
    let raw: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(skopeo_digest(&image), digest_of(&pinned));
    for entry in raw["manifests"].as_array().unwrap() {
        assert_eq!(
            entry["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }
    assert_eq!(
        OciCopy::pull_platform(&image, "arm64").config()["architecture"],
        "arm64"
    );

    let zstd = format!("{}/zstd/docker:v1", registry.host());
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &zstd,
        "--format",
        "docker",
        "--compression",
        "zstd",
    ]);
    // Refused before anything moves: a usage error.
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("zstd"), "{}", run.stderr);
    assert_eq!(registry.manifest_status("zstd/docker", "v1", None), 404);

    let run = nixpush.run(&[&fixture("demo", "app"), "oci:/tmp/x", "--format", "docker"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// Quay fails a mount without `from=` (quay/quay#899); a registry may answer a mount with 202
/// and an upload session instead (opencontainers/distribution-spec#296). nixpush always names
/// `from`, and uploads into the session a declined mount opened.
#[test]
fn mounts_name_their_source_and_a_declined_mount_uploads_in_its_session() {
    let (_registry, front) = behind_quirks(Quirks {
        mount_needs_from: true,
        decline_mounts: true,
        ..Default::default()
    });
    let nixpush = Nixpush::new();
    let first = format!("{}/quay/app:v1", front.host());
    nixpush.run(&[&fixture("demo", "app"), &first]).assert_ok();
    let before = front.seen().len();
    // Same machine, another repository: the cache knows where the layers are, and asks to mount.
    let second = format!("{}/quay/copy:v1", front.host());
    nixpush.run(&[&fixture("demo", "app"), &second]).assert_ok();
    let seen = seen_since(&front, before);
    let mounts: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.target.contains("mount="))
        .collect();
    assert_eq!(mounts.len(), 3, "{seen:#?}");
    assert!(mounts
        .iter()
        .all(|m| m.target.contains("from=") && m.status == Some(202)));
    // Each declined mount's session carried its layer: no other session for the layers.
    assert_eq!(
        seen.iter()
            .filter(|s| s.method == "POST" && !s.target.contains("mount="))
            .count(),
        1,
        "only the config's own session: {seen:#?}"
    );
    assert_eq!(OciCopy::pull(&second).checked_layers().len(), 3);
}

/// Docker Hub answers 429 `TOOMANYREQUESTS` with `ratelimit-limit`/`ratelimit-remaining`
/// headers over its limit (docs.docker.com/docker-hub/usage/pulls/). A short burst is waited
/// out; a limit that outlasts the retry budget is one line that says the limit, exit 1, no tag.
#[test]
fn docker_hub_rate_limit_is_waited_out_or_said_with_its_headers() {
    let (registry, front) = behind_quirks(Quirks {
        rate_limited: 2,
        ..Default::default()
    });
    let image = format!("{}/hub/app:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &image])
        .assert_ok();
    assert_eq!(OciCopy::pull(&image).checked_layers().len(), 3);

    let front = quirk_front(
        registry.port,
        Quirks {
            rate_limited: usize::MAX,
            ..Default::default()
        },
    );
    let image = format!("{}/hub/limited:v1", front.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &image, "--retry-for", "3s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(line.contains("TOOMANYREQUESTS"), "{line}");
    assert!(
        line.contains("rate limit 100 per 21600 s, 0 left"),
        "{line}"
    );
    assert_eq!(registry.manifest_status("hub/limited", "v1", None), 404);
}
