//! A binary cache behind a certificate nixpush's default roots do not know (a private CA, or the
//! cache's own self-signed certificate), as teams run them: read with `--ca-cert`, the same flag
//! and the same TLS as for a registry (the one HTTP layer, src/http/), and refused without it in
//! one line that names TLS and the flag to use, before any narinfo is read.

use crate::common;

use common::binary_cache::{delete_from_store, nix_conf_with_caches, CacheServer};
use common::cached_closure::*;
use common::*;

#[test]
fn a_cache_behind_a_private_certificate_is_read_with_ca_cert_and_refused_without() {
    let app = Built::attr("cached-21");
    let signed = SignedCache::copy(&app.closure, &app.key_name());
    delete_from_store(&app.closure);
    let certificate = SelfSigned::new("IP:127.0.0.1");
    let server =
        CacheServer::serve_tls(signed.cache.dir(), &certificate.cert(), &certificate.key());
    // The registry behind the same certificate: `--ca-cert` means HTTPS for it too.
    let registry = certificate.registry();
    let image = format!("{}/tls-cache/app:v1", registry.host());
    let args = |extra: &[&str]| {
        from_cache(
            app.top(),
            &image,
            &[&server.https_url()],
            &[&signed.key.public],
            extra,
        )
    };

    // Without the certificate: refused, one line, nothing but the TLS handshake asked of it.
    let run = push_failing(&args(&[]));
    let cache_host = format!("127.0.0.1:{}", server.port);
    assert_refused(&run, 1, &["TLS", &cache_host, "--ca-cert"]);
    assert!(
        server.requests().is_empty(),
        "no request went through: {:?}",
        server.requests()
    );

    // With it: the image, its layers read from the cache's NARs over HTTPS.
    let cert = certificate.cert().display().to_string();
    let json = push_json(&Nixpush::new(), &args(&["--ca-cert", &cert]));
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    let listed = skopeo_ok(&[
        "inspect",
        "--format",
        "{{.Digest}}",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    assert_eq!(
        String::from_utf8(listed.stdout).unwrap().trim(),
        pinned.split_once('@').unwrap().1,
        "the tag names the pushed image"
    );
    let downloaded: std::collections::BTreeSet<String> =
        server.nar_downloads().into_iter().collect();
    assert_eq!(downloaded.len(), app.closure.len(), "{downloaded:?}");
}

#[test]
fn nix_s_own_https_cache_is_trusted_with_nix_s_ca_file() {
    let app = Built::attr("cached-25");
    let signed = SignedCache::copy(&app.closure, &app.key_name());
    delete_from_store(&app.closure);
    let certificate = SelfSigned::new("IP:127.0.0.1");
    let server =
        CacheServer::serve_tls(signed.cache.dir(), &certificate.cert(), &certificate.key());
    // The cache as Nix is configured with it: no --substituter, no --ca-cert.
    let conf_dir = nix_conf_with_caches(&[&server.https_url()], &[&signed.key.public]);
    let registry = Registry::start();
    let image = format!("{}/nix-ca/app:v1", registry.host());
    let push = |ca_file: &str| {
        Nixpush::new().run_with(
            &[app.top(), &image, "--system", SYSTEM, "--json"],
            &[
                ("NIX_CONF_DIR", conf_dir.path().display().to_string()),
                ("NIX_SSL_CERT_FILE", ca_file.to_owned()),
            ],
            None,
        )
    };

    // Nix's CA file without the cache's certificate: refused in one line naming TLS.
    let refused = push("/etc/ssl/certs/ca-certificates.crt");
    let cache_host = format!("127.0.0.1:{}", server.port);
    assert_refused(&refused, 1, &["TLS", &cache_host]);
    // Nix's CA file with it: the image, its NARs read over HTTPS.
    let run = push(&certificate.cert().display().to_string());
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert!(json["images"][0]["manifestDigest"].is_string());
    assert_eq!(server.nar_downloads().len(), app.closure.len());
}
