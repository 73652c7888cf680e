//! The manifest `PUT` against an in-process registry: a manifest refused for naming a blob the
//! registry has not seen yet is written again, briefly; any other refusal is the answer at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::blob_tests::{client, quick, registry, requests};
use super::RegistryError;
use crate::digest::Digest;
use crate::http::test_server::Reply;
use crate::image::OCI_MANIFEST;

const BLOB_UNKNOWN: &[u8] =
    br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
const DENIED: &[u8] =
    br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;

/// A registry answering the first `refusals` manifest PUTs with 400 and `body`, then 201.
async fn put_after(refusals: usize, body: &'static [u8]) -> (Result<bool, RegistryError>, usize) {
    let manifest = Bytes::from_static(b"{}");
    let digest = Digest::of(&manifest);
    let puts = Arc::new(AtomicUsize::new(0));
    let counted = puts.clone();
    let location = digest.to_string();
    let server = registry(move |r| {
        (r.method == "PUT" && r.path() == "/v2/app/manifests/v1").then(|| {
            if counted.fetch_add(1, Ordering::SeqCst) < refusals {
                Reply::with(400, &[("content-type", "application/json")], body)
            } else {
                Reply::with(201, &[("docker-content-digest", location.as_str())], b"")
            }
        })
    })
    .await;
    let client = client(&server, quick()).await;
    let answer = client
        .put_manifest("v1", OCI_MANIFEST, manifest, &digest)
        .await;
    let made = requests(&server)
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    (answer, made)
}

#[tokio::test]
async fn a_manifest_naming_a_blob_not_seen_yet_is_written_again_briefly() {
    // Unknown for a moment: written on the third try.
    let (answer, made) = put_after(2, BLOB_UNKNOWN).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(made, 3);
    // Unknown for good: the registry's answer after four tries.
    let (answer, made) = put_after(usize::MAX, BLOB_UNKNOWN).await;
    let e = answer.unwrap_err();
    assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");
    assert_eq!(made, 4);
}

#[tokio::test]
async fn any_other_refusal_is_the_answer_at_once() {
    let (answer, made) = put_after(usize::MAX, DENIED).await;
    assert!(answer.unwrap_err().to_string().contains("DENIED"));
    assert_eq!(made, 1);
}
