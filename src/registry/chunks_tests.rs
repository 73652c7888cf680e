//! Chunked uploads against an in-process registry: the ranges and lengths each chunk carries,
//! and a cap the host names learnt from its 416.

use bytes::Bytes;

use super::blob_tests::{client, quick, registry, requests};
use super::{BlobBody, RegistryError};
use crate::http::test_server::Reply;

const KIB: usize = 1024;

fn blob(len: usize) -> (Vec<u8>, BlobBody) {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    // Handed over in pieces that do not line up with the chunks.
    let pieces: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(100 * KIB)
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    (bytes, BlobBody::new(futures_util::stream::iter(pieces)))
}

#[tokio::test]
async fn chunks_carry_their_length_and_range_and_follow_the_location() {
    let server = registry(|r| match r.method.as_str() {
        "POST" => Some(Reply::with(
            202,
            &[("location", "/v2/app/blobs/uploads/c0")],
            b"",
        )),
        "PATCH" => {
            // Each answer moves the session on, and names a Range this client does not read
            // (ECR's stops advancing).
            let n: usize = r
                .path()
                .trim_start_matches("/v2/app/blobs/uploads/c")
                .parse()
                .unwrap();
            let next = format!("/v2/app/blobs/uploads/c{}", n + 1);
            Some(Reply::with(
                202,
                &[("location", &next), ("range", "0-0")],
                b"",
            ))
        }
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let session = client.start_upload().await.unwrap();
    let (bytes, body) = blob(600 * KIB);
    let session = client
        .send_upload_chunks(&session, body, 256 * KIB as u64)
        .await
        .unwrap();
    assert_eq!(session.location.path(), "/v2/app/blobs/uploads/c3");
    let patches: Vec<_> = requests(&server)
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    let ranges: Vec<_> = patches
        .iter()
        .map(|r| {
            (
                r.path().to_owned(),
                r.header("content-range").unwrap().to_owned(),
                r.header("content-length").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        [
            (
                "/v2/app/blobs/uploads/c0".into(),
                "0-262143".into(),
                "262144".into()
            ),
            (
                "/v2/app/blobs/uploads/c1".into(),
                "262144-524287".into(),
                "262144".into()
            ),
            (
                "/v2/app/blobs/uploads/c2".into(),
                "524288-614399".into(),
                "90112".into()
            ),
        ]
    );
    let sent: Vec<u8> = patches.iter().flat_map(|r| r.body.clone()).collect();
    assert!(sent == bytes, "the chunks are the blob, in order");
}

#[tokio::test]
async fn a_chunk_over_the_cap_a_416_names_is_a_refused_way_and_the_cap_is_learnt() {
    let server = registry(|r| match r.method.as_str() {
        "POST" => Some(Reply::with(202, &[("location", "/v2/app/blobs/uploads/c")], b"")),
        "PATCH" => Some(Reply::with(
            416,
            &[("content-type", "application/json")],
            br#"{"errors":[{"code":"SIZE_INVALID","message":"exceeds the maximum permissible limit of 0.5MiB"}]}"#,
        )),
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let session = client.start_upload().await.unwrap();
    let (_, body) = blob(2048 * KIB);
    let e = client
        .send_upload_chunks(&session, body, 1024 * KIB as u64)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::WayRefused(_)), "{e:?}");
    assert_eq!(client.host_facts().body_cap, Some(512 * KIB as u64));
}

#[tokio::test]
async fn a_416_that_names_no_size_is_an_error_about_the_upload() {
    let server = registry(|r| match r.method.as_str() {
        "POST" => Some(Reply::with(
            202,
            &[("location", "/v2/app/blobs/uploads/c")],
            b"",
        )),
        "PATCH" => Some(Reply::status(416)),
        _ => None,
    })
    .await;
    let client = client(&server, quick()).await;
    let session = client.start_upload().await.unwrap();
    let (_, body) = blob(600 * KIB);
    let e = client
        .send_upload_chunks(&session, body, 256 * KIB as u64)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Status { .. }), "{e:?}");
    assert_eq!(client.host_facts().body_cap, None);
}
