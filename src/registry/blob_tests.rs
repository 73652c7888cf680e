//! The blob steps against an in-process registry whose answers each test sets out as a table:
//! which requests go where, with what, and what each answer makes of the step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Access, BlobBody, Client, ConnectOptions, Credentials, Mount, RegistryError, Secret};
use crate::digest::Digest;
use crate::http::test_server::{Reply, Seen, TestServer};
use crate::http::{Quiet, RetryPolicy};
use crate::reference::Reference;

/// A registry at `table` (which answers `GET /v2/` itself when it returns `None`).
pub(super) async fn registry(
    table: impl Fn(&Seen) -> Option<Reply> + Send + Sync + 'static,
) -> TestServer {
    TestServer::start(move |r| match table(r) {
        Some(reply) => reply,
        None if r.path() == "/v2/" => Reply::status(200),
        None => Reply::status(404),
    })
    .await
}

/// A client of `server`'s repository `app`, with `retry`.
pub(super) async fn client(server: &TestServer, retry: RetryPolicy) -> Client {
    let reference = Reference::parse(&format!("{}/app:v1", server.host())).unwrap();
    Client::connect(
        &reference,
        ConnectOptions {
            access: Access::PullPush,
            insecure: false,
            ca_cert: None,
            credentials: None,
            notices: Arc::new(Quiet),
            retry,
            host_facts: None,
        },
    )
    .await
    .unwrap()
}

pub(super) fn quick() -> RetryPolicy {
    RetryPolicy {
        retry_for: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(1),
    }
}

/// The requests `server` saw, but the ping.
pub(super) fn requests(server: &TestServer) -> Vec<Seen> {
    server
        .seen()
        .into_iter()
        .filter(|r| r.path() != "/v2/")
        .collect()
}

pub(super) fn body_of(bytes: &'static [u8]) -> BlobBody {
    BlobBody::new(futures_util::stream::iter([Ok::<_, std::io::Error>(
        Bytes::from_static(bytes),
    )]))
}

#[tokio::test]
async fn a_blob_is_there_with_its_size_or_not_there() {
    let there = Digest::of(b"there");
    let path = format!("/v2/app/blobs/{there}");
    let server = registry(move |r| {
        (r.path() == path).then(|| Reply::with(200, &[("content-length", "5")], b"there"))
    })
    .await;
    let client = client(&server, quick()).await;
    assert_eq!(client.blob_size(&there).await.unwrap(), Some(Some(5)));
    assert_eq!(client.blob_size(&Digest::of(b"gone")).await.unwrap(), None);
    assert!(requests(&server).iter().all(|r| r.method == "HEAD"));
}

#[tokio::test]
async fn a_blob_read_must_have_its_digest() {
    let config = Digest::of(b"{}");
    let lying = Digest::of(b"lying");
    let (c, l) = (config.to_string(), lying.to_string());
    let server = registry(move |r| match r.path() {
        p if p.ends_with(&c) => Some(Reply::with(200, &[], b"{}")),
        p if p.ends_with(&l) => Some(Reply::with(200, &[], b"other bytes")),
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let read = client.get_blob(&config, 1024).await.unwrap();
    assert_eq!(read.as_deref(), Some(&b"{}"[..]));
    let e = client.get_blob(&lying, 1024).await.unwrap_err();
    assert!(e.to_string().contains("sent bytes of digest"), "{e}");
    assert_eq!(
        client.get_blob(&Digest::of(b"none"), 1024).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn an_upload_goes_post_patch_put_following_each_location() {
    let blob = b"layer bytes";
    let digest = Digest::of(blob);
    let stored = digest.to_string();
    let server = registry(move |r| match (r.method.as_str(), r.path()) {
        ("POST", "/v2/app/blobs/uploads/") => Some(Reply::with(
            202,
            &[("location", "/v2/app/blobs/uploads/s1?_state=a")],
            b"",
        )),
        // ECR's 201 to a PATCH, and a new Location (relative, as HTTP allows).
        ("PATCH", "/v2/app/blobs/uploads/s1") => {
            Some(Reply::with(201, &[("location", "s2?_state=b")], b""))
        }
        ("PUT", "/v2/app/blobs/uploads/s2") => {
            Some(Reply::with(201, &[("docker-content-digest", &stored)], b""))
        }
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let session = client.start_upload().await.unwrap();
    let session = client
        .send_upload_data(&session, body_of(blob))
        .await
        .unwrap();
    client
        .commit_upload(session, &digest, Bytes::new())
        .await
        .unwrap();
    let seen = requests(&server);
    let steps: Vec<_> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        steps,
        [
            "POST /v2/app/blobs/uploads/".to_owned(),
            "PATCH /v2/app/blobs/uploads/s1?_state=a".to_owned(),
            format!(
                "PUT /v2/app/blobs/uploads/s2?_state=b&digest={}",
                digest.to_string().replace(':', "%3A")
            ),
        ]
    );
    assert_eq!(seen[1].body, blob);
    assert_eq!(seen[0].header("content-length"), Some("0"));
    assert_eq!(seen[2].header("content-length"), Some("0"));
}

#[tokio::test]
async fn a_registry_that_stores_other_bytes_is_an_error() {
    let server = registry(|r| match r.method.as_str() {
        "POST" => Some(Reply::with(
            202,
            &[("location", "/v2/app/blobs/uploads/s")],
            b"",
        )),
        "PUT" => Some(Reply::with(
            201,
            &[(
                "docker-content-digest",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            )],
            b"",
        )),
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let e = client
        .put_blob(&Digest::of(b"config"), Bytes::from_static(b"config"))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("where sha256:"), "{e}");
}

#[tokio::test]
async fn a_streamed_patch_refused_for_its_missing_length_is_a_refused_way() {
    let server = registry(|r| match r.method.as_str() {
        "POST" => Some(Reply::with(
            202,
            &[("location", "/v2/app/blobs/uploads/s")],
            b"",
        )),
        "PATCH" => Some(Reply::status(411)),
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let session = client.start_upload().await.unwrap();
    let e = client
        .send_upload_data(&session, body_of(b"bytes"))
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WayRefused(_)), "{e:?}");
    assert_eq!(client.host_facts().length_required, Some(411));
}

#[tokio::test]
async fn a_mount_links_or_opens_a_session() {
    let linked = Digest::of(b"linked");
    let mount = linked.to_string().replace(':', "%3A");
    let server = registry(move |r| {
        let from = r.target.contains("from=base");
        match (r.method.as_str(), r.target.contains(&mount)) {
            ("POST", true) if from => Some(Reply::status(201)),
            ("POST", false) if from => Some(Reply::with(
                202,
                &[("location", "/v2/app/blobs/uploads/m")],
                b"",
            )),
            _ => None,
        }
    })
    .await;
    let client = client(&server, quick()).await;
    assert!(matches!(
        client.mount_blob(&linked, "base").await.unwrap(),
        Mount::Linked
    ));
    match client
        .mount_blob(&Digest::of(b"other"), "base")
        .await
        .unwrap()
    {
        Mount::Declined(session) => {
            assert_eq!(session.location.path(), "/v2/app/blobs/uploads/m")
        }
        Mount::Linked => panic!("declined mounts open a session"),
    }
}

#[tokio::test]
async fn a_registry_that_stalls_every_answer_fails_a_step_within_the_budget_and_one_stall() {
    let server = registry(|r| (r.path() != "/v2/").then_some(Reply::Silence)).await;
    let client = client(&server, quick()).await;
    let budget = quick().retry_for + quick().stall_timeout;
    // A step that retries around requests that retry on their own (before, each had a budget).
    let started = Instant::now();
    let e = client
        .put_blob(&Digest::of(b"c"), Bytes::from_static(b"c"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < budget + Duration::from_millis(500), "{took:?}");
    assert!(matches!(e, RegistryError::GaveUp(_)), "{e:?}");
    assert!(requests(&server).len() >= 2, "tried again");
}

#[tokio::test]
async fn a_manifest_whose_body_stalls_is_asked_for_again_within_one_budget() {
    let server = registry(|r| {
        (r.path() == "/v2/app/manifests/v1").then(|| Reply::HeadOnly {
            status: 200,
            headers: Vec::new(),
            length: 100,
        })
    })
    .await;
    let client = client(&server, quick()).await;
    let started = Instant::now();
    let e = client.get_manifest("app", "v1").await.unwrap_err();
    let took = started.elapsed();
    let budget = quick().retry_for + quick().stall_timeout;
    assert!(took < budget + Duration::from_millis(500), "{took:?}");
    assert!(e.is_temporary(), "{e:?}");
    assert!(requests(&server).len() >= 2, "tried again");
}

#[tokio::test]
async fn registry_credentials_never_follow_a_blob_to_another_origin() {
    let storage = TestServer::start(|r| match r.path() {
        "/blob" => Reply::with(307, &[("location", "/signed/blob?sig=1")], b""),
        _ => Reply::with(200, &[], b"config"),
    })
    .await;
    let to_storage = format!("{}/blob", storage.origin);
    let server = registry(move |r| {
        if r.header("authorization") != Some("Basic dXNlcjpzM2NyZXQ=") {
            return Some(Reply::with(
                401,
                &[("www-authenticate", "Basic realm=\"registry\"")],
                b"",
            ));
        }
        r.path()
            .contains("/blobs/")
            .then(|| Reply::with(307, &[("location", &to_storage)], b""))
    })
    .await;
    let reference = Reference::parse(&format!("{}/app:v1", server.host())).unwrap();
    let client = Client::connect(
        &reference,
        ConnectOptions {
            access: Access::Pull,
            insecure: false,
            ca_cert: None,
            credentials: Some(Credentials {
                username: "user".into(),
                password: Secret::new("s3cret"),
            }),
            notices: Arc::new(Quiet),
            retry: quick(),
            host_facts: None,
        },
    )
    .await
    .unwrap();
    let config = client.get_blob(&Digest::of(b"config"), 1024).await.unwrap();
    assert_eq!(config.as_deref(), Some(&b"config"[..]));
    let blob_request = requests(&server);
    assert_eq!(blob_request.len(), 1);
    assert!(blob_request[0].header("authorization").is_some());
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 2, "{at_storage:#?}");
    for r in &at_storage {
        assert_eq!(r.header("authorization"), None, "{r:#?}");
    }
}
