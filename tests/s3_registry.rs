//! A registry whose storage is object storage, as GHCR, Docker Hub and ECR are: a real
//! docker-registry with its `s3` storage driver on a real S3-compatible server (SeaweedFS,
//! tests/common/object_storage.rs), redirects on, so a blob `GET` is answered `307` to a URL
//! pre-signed for the storage host. A logging front (tests/common/front.rs) stands before that
//! host. An image pushed to the registry with basic auth and copied from it to a plain registry
//! keeps its digest and its bytes; the copy's blob reads arrive at the storage host through the
//! redirect, and the registry's credentials never do.

use crate::common;

use common::front::{Action, Front};
use common::object_storage::{ObjectStorage, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY};
use common::*;

const USER: &str = "storer";
const BUCKET: &str = "registry";

/// A registry with basic auth (`USER`, `SECRET_PASSWORD`) keeping its blobs in a SeaweedFS
/// bucket reached through `front`, which forwards every request to the S3 API.
fn s3_backed_registry() -> (ObjectStorage, Front, Registry) {
    let storage = ObjectStorage::start();
    storage.create_bucket(BUCKET);
    let front = Front::start(Some(storage.port), |_| Action::forward());
    let registry = Registry::start_with(RegistryConfig {
        htpasswd: Some((USER.into(), SECRET_PASSWORD.into())),
        s3: Some(S3Storage {
            endpoint: front.origin(),
            bucket: BUCKET.into(),
            region: S3_REGION.into(),
            access_key: S3_ACCESS_KEY.into(),
            secret_key: S3_SECRET_KEY.into(),
        }),
        ..Default::default()
    });
    (storage, front, registry)
}

#[test]
fn a_copy_from_a_registry_on_object_storage_follows_its_redirects_without_its_credentials() {
    let (_storage, front, registry) = s3_backed_registry();
    let creds = format!("{USER}:{SECRET_PASSWORD}");
    let source = format!("{}/stored/app:v1", registry.host());
    let push = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &source,
        "--creds",
        &creds,
        "--json",
    ]);
    assert_no_secret(&push, USER, &[SECRET_PASSWORD]);
    let pushed: serde_json::Value = serde_json::from_str(push.assert_ok()).unwrap();
    let digest = pushed["images"][0]["manifestDigest"].as_str().unwrap();
    // The blobs went to the bucket (the registry wrote them through the front, signed with its
    // own S3 key), not to a disk of the registry's.
    let stored = front
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/docker/registry/v2/blobs/"))
        .count();
    assert!(
        stored > 0,
        "the registry stored no blob in S3: {:?}",
        front.seen()
    );
    let before_copy = front.seen().len();

    let plain = Registry::start();
    let destination = format!("{}/copied/app", plain.host());
    let copy = Nixpush::new().run(&[
        "copy",
        &source,
        &destination,
        "--src-creds",
        &creds,
        "--json",
        "--verbose",
    ]);
    assert_no_secret(&copy, USER, &[SECRET_PASSWORD]);
    let copied: serde_json::Value = serde_json::from_str(copy.assert_ok()).unwrap();
    assert_eq!(copied["digest"], digest);
    let copied_image = format!("{}/copied/app:v1", plain.host());
    assert_eq!(skopeo_digest(&copied_image), digest);
    // The bytes: skopeo reads the copy back, each layer checked against the Python oracle.
    let pulled = OciCopy::pull(&copied_image);
    assert!(!pulled.checked_layers().is_empty());

    // The registry answered the copy's blob GETs with redirects...
    let redirected = registry
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/stored/app/blobs/sha256:") && l.contains("\" 307 "))
        .count();
    let blobs = pulled.manifest["layers"].as_array().unwrap().len() + 1;
    assert!(
        redirected >= blobs,
        "{redirected} blob GETs redirected by the registry, {blobs} blobs:\n{}",
        registry.log()
    );
    // ...which nixpush followed to the storage host: pre-signed GETs of blob data, each
    // carrying its authority in its query and no `Authorization` header at all.
    let presigned: Vec<_> = front.seen()[before_copy..]
        .iter()
        .filter(|s| s.method == "GET" && s.target.contains("X-Amz-Signature="))
        .cloned()
        .collect();
    assert!(
        presigned.len() >= blobs,
        "{} pre-signed GETs reached the storage host for {blobs} blobs: {presigned:?}",
        presigned.len()
    );
    for seen in &presigned {
        assert!(
            seen.target.contains("/docker/registry/v2/blobs/sha256/"),
            "{seen:?}"
        );
        assert_eq!(seen.authorization, None, "{seen:?}");
    }
    // And the registry's own credentials reached the storage host in no request of any kind.
    for seen in front.seen() {
        let auth = seen.authorization.as_deref().unwrap_or_default();
        assert!(
            !auth.starts_with("Basic ") && !auth.starts_with("Bearer "),
            "the registry's credentials reached the storage host: {seen:?}"
        );
    }
}

#[test]
fn a_base_on_a_registry_on_object_storage_streams_through_its_redirects_without_its_credentials() {
    let (_storage, front, registry) = s3_backed_registry();
    let creds = format!("{USER}:{SECRET_PASSWORD}");
    let base = format!("{}/stored/base:1", registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "busybox"), &base, "--creds", &creds])
        .assert_ok();
    let before = front.seen().len();

    // The base's registry is not the destination's: its credentials are the stored ones.
    let plain = Registry::start();
    let image = format!("{}/app:1", plain.host());
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), USER, SECRET_PASSWORD);
    let run = nixpush.run(&[
        &fixture("demo", "on-base"),
        &image,
        "--base",
        &base,
        "--entrypoint",
        "bin/app",
        "--verbose",
    ]);
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);
    run.assert_ok();
    let base_raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{base}"),
    ])
    .stdout;
    let base_manifest: serde_json::Value = serde_json::from_slice(&base_raw).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    let base_layers = base_manifest["layers"].as_array().unwrap();
    for (ours, theirs) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(base_layers)
    {
        assert_eq!(ours["digest"], theirs["digest"]);
    }
    // Each base layer came by a pre-signed GET at the storage host, none with credentials.
    let presigned = front.seen()[before..]
        .iter()
        .filter(|s| s.method == "GET" && s.target.contains("X-Amz-Signature="))
        .count();
    assert!(presigned >= base_layers.len(), "{:?}", front.seen());
    for seen in front.seen() {
        let auth = seen.authorization.as_deref().unwrap_or_default();
        assert!(
            !auth.starts_with("Basic ") && !auth.starts_with("Bearer "),
            "the registry's credentials reached the storage host: {seen:?}"
        );
    }
}
