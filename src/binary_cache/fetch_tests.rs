//! A cache's requests against in-process servers: the password of a cache URL goes to the
//! cache's own origin only, on every hop of a redirect to storage elsewhere.

use crate::http::test_server::{Reply, TestServer};
use crate::http::{RetryPolicy, TlsOptions};

use super::Cache;

#[tokio::test]
async fn a_cache_password_never_follows_a_redirect_to_another_origin() {
    // Origin B, the storage: a first hop, then the file, within B.
    let storage = TestServer::start(|r| match r.path() {
        "/nar/x.nar.xz" => Reply::with(302, &[("location", "/signed/x.nar.xz?sig=1")], b""),
        _ => Reply::with(200, &[], b"nar bytes"),
    })
    .await;
    let to_storage = format!("{}/nar/x.nar.xz", storage.origin);
    // Origin A, the cache: it wants its password, and sends NARs to B.
    let cache_server = TestServer::start(move |r| {
        if r.header("authorization") != Some("Basic Y2k6czNjcmV0") {
            return Reply::status(401);
        }
        match r.path() {
            "/cache/x.narinfo" => Reply::with(200, &[], b"StorePath: /nix/store/x"),
            _ => Reply::with(302, &[("location", &to_storage)], b""),
        }
    })
    .await;
    let url = format!("http://ci:s3cret@{}/cache", cache_server.host());
    let cache = Cache::new(&url, &TlsOptions::default(), RetryPolicy::default()).unwrap();
    assert!(!cache.name.contains("s3cret"), "{}", cache.name);

    let narinfo = cache.get("x.narinfo", 1024).await.unwrap().unwrap();
    assert_eq!(&narinfo[..], b"StorePath: /nix/store/x");
    let nar = cache.get("nar/x.nar.xz", 1024).await.unwrap().unwrap();
    assert_eq!(&nar[..], b"nar bytes");

    // The streamed download (a blocking reader) goes the same way.
    let cache = std::sync::Arc::new(cache);
    let runtime = tokio::runtime::Handle::current();
    let streamed = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut cache.open("nar/x.nar.xz", &runtime).unwrap(), &mut out)
            .unwrap();
        out
    })
    .await
    .unwrap();
    assert_eq!(streamed, b"nar bytes");

    assert_eq!(cache_server.seen().len(), 3);
    let at_storage = storage.seen();
    assert_eq!(
        at_storage.len(),
        4,
        "two hops for each NAR: {at_storage:#?}"
    );
    for r in &at_storage {
        assert_eq!(r.header("authorization"), None, "{r:#?}");
    }
}
