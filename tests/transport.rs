//! Getting bytes to the registry: TLS on loopback (a certificate error never falls back to plain
//! HTTP), and connections that break in the middle of a push (retried, the layer stream reopened,
//! and the result still a complete, correct image).

use crate::common;

use common::front::{Action, Front, TlsHello};
use common::*;

#[test]
fn untrusted_certificate_on_loopback_is_an_error_not_a_fallback_to_http() {
    let registry = Registry::start_with(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("TLS") && line.contains("certificate"),
        "{line}"
    );
    assert!(
        line.contains("--insecure"),
        "the error says how to proceed: {line}"
    );
    let log = registry.log();
    assert!(
        !log.contains("HTTP request to an HTTPS server"),
        "nixpush fell back to plain HTTP:\n{log}"
    );
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn insecure_accepts_an_untrusted_certificate_on_loopback() {
    let registry = Registry::start_with(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let image = format!("{}/x/y:v1", registry.host());
    let pinned = Nixpush::new()
        .run(&[&fixture("demo", "app"), &image, "--insecure"])
        .assert_ok()
        .to_owned();
    let raw = skopeo_inspect(&image, "--raw");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(pinned.starts_with(&format!("{}/x/y@sha256:", registry.host())));
    assert!(!registry.log().contains("HTTP request to an HTTPS server"));
}

#[test]
fn ca_cert_trusts_a_private_ca_over_verified_tls() {
    let registry = Registry::start_with(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let cert = registry.certificate();
    let image = format!("{}/x/ca:v1", registry.host());
    Nixpush::new()
        .run(&[
            &fixture("demo", "app"),
            &image,
            "--ca-cert",
            cert.to_str().unwrap(),
        ])
        .assert_ok();
    assert_eq!(
        skopeo_inspect(&image, "--raw")["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn a_ca_in_certs_d_is_trusted_without_a_flag_and_means_tls() {
    let registry = Registry::start_with(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let certs = CertsD::new();
    let dir = certs.dir(&registry);
    let image = format!("{}/x/certs-d:v1", registry.host());
    let nixpush = Nixpush::new();
    // Without the CA: the loopback registry's certificate is not trusted, and that is an error.
    let run = certs.push(&nixpush, &image);
    assert_eq!(run.code, 1, "{}", run.stderr);
    std::fs::copy(registry.certificate(), dir.join("ca.crt")).unwrap();
    certs.push(&nixpush, &image).assert_ok();
    assert_eq!(
        skopeo_inspect(&image, "--raw")["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // A CA configured for a plain-HTTP registry: no silent fallback to HTTP.
    let plain = Registry::start();
    std::fs::copy(registry.certificate(), certs.dir(&plain).join("ca.crt")).unwrap();
    let run = certs.push(&nixpush, &format!("{}/x/y:v1", plain.host()));
    assert_refused(&run, 1, &["does not speak TLS"]);
}

#[test]
fn a_client_certificate_in_certs_d_answers_a_registry_that_asks_for_one() {
    let registry = Registry::start_with(RegistryConfig {
        tls: true,
        client_certs: true,
        ..Default::default()
    });
    let certs = CertsD::new();
    let dir = certs.dir(&registry);
    std::fs::copy(registry.certificate(), dir.join("ca.crt")).unwrap();
    let image = format!("{}/x/mtls:v1", registry.host());
    let nixpush = Nixpush::new();
    // The CA alone: the registry refuses the connection, one line, exit 1, nothing pushed.
    let run = certs.push(&nixpush, &image);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Said as such when the server's alert arrives, which ends the retries at once (TLS 1.3
    // may close the connection before the alert on some attempts; those are retried).
    assert!(
        run.error_line().contains("wants a client certificate"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.contains("wants a client certificate") && l.ends_with("; retrying")),
        "{}",
        run.stderr
    );

    // A certificate without its key is refused before anything is sent.
    let (cert, key) = registry.client_certificate();
    std::fs::copy(&cert, dir.join("client.cert")).unwrap();
    let run = certs.push(&nixpush, &image);
    assert_refused(&run, 1, &["client.key is missing"]);

    // With both, as docker has them: the push goes through mutual TLS.
    std::fs::copy(&key, dir.join("client.key")).unwrap();
    certs.push(&nixpush, &image).assert_ok();
    let cert_dir = dir.display().to_string();
    skopeo_ok(&[
        "inspect",
        "--raw",
        "--cert-dir",
        &cert_dir,
        &format!("docker://{image}"),
    ]);
}

#[test]
fn ca_cert_never_falls_back_to_plain_http() {
    let registry = Registry::start();
    let other = Registry::start_with(RegistryConfig {
        tls: true,
        ..Default::default()
    });
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
        "--ca-cert",
        other.certificate().to_str().unwrap(),
    ]);
    assert_refused(&run, 1, &["does not speak TLS"]);
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn insecure_and_ca_cert_together_are_a_usage_error() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/x/y",
        "--insecure",
        "--ca-cert",
        "/dev/null",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// Docker's documented setup, the certificate is `certs.d/HOST:PORT/ca.crt`.
const DOCKER_SAN: &str = "IP:127.0.0.1,DNS:localhost";

#[test]
fn a_self_signed_certificate_in_certs_d_is_trusted_as_docker_has_it() {
    let cert = SelfSigned::new(DOCKER_SAN);
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert.cert())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "the certificate is its own CA, as OpenSSL's default config makes it"
    );
    let registry = cert.registry();
    let certs = CertsD::new();
    let dir = certs.dir(&registry);
    std::fs::copy(cert.cert(), dir.join("ca.crt")).unwrap();
    let image = format!("{}/x/self-signed:v1", registry.host());
    certs.push(&Nixpush::new(), &image).assert_ok();
    assert!(!registry.log().contains("HTTP request to an HTTPS server"));
    let cert_dir = dir.display().to_string();
    let out = skopeo_ok(&[
        "inspect",
        "--raw",
        "--cert-dir",
        &cert_dir,
        &format!("docker://{image}"),
    ]);
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn a_self_signed_certificate_given_with_ca_cert_is_trusted() {
    let cert = SelfSigned::new(DOCKER_SAN);
    let registry = cert.registry();
    let image = format!("{}/x/self-signed:v1", registry.host());
    Nixpush::new()
        .run(&[
            &fixture("demo", "app"),
            &image,
            "--ca-cert",
            cert.cert().to_str().unwrap(),
        ])
        .assert_ok();
    assert_eq!(
        skopeo_inspect(&image, "--raw")["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
}

/// A refused certificate: exit 1, one line saying so, nothing sent over plain HTTP.
fn assert_tls_refused(run: &Run, registry: &Registry, why: &str) {
    assert_refused(run, 1, &["TLS", why]);
    assert!(
        !registry.log().contains("HTTP request to an HTTPS server"),
        "nixpush fell back to plain HTTP:\n{}",
        registry.log()
    );
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn a_self_signed_certificate_nobody_configured_is_refused() {
    let cert = SelfSigned::new(DOCKER_SAN);
    let registry = cert.registry();
    // Another self-signed certificate for the same names, configured: not this one.
    let other = SelfSigned::new(DOCKER_SAN);
    let certs = CertsD::new();
    std::fs::copy(other.cert(), certs.dir(&registry).join("ca.crt")).unwrap();
    let image = format!("{}/x/y:v1", registry.host());
    let nixpush = Nixpush::new();
    let run = nixpush.run(&[&fixture("demo", "app"), &image]);
    assert_tls_refused(&run, &registry, "certificate");
    let run = certs.push(&nixpush, &image);
    assert_tls_refused(&run, &registry, "certificate");
}

#[test]
fn a_configured_self_signed_certificate_for_another_name_is_refused() {
    let cert = SelfSigned::new("DNS:other.example");
    let registry = cert.registry();
    let certs = CertsD::new();
    std::fs::copy(cert.cert(), certs.dir(&registry).join("ca.crt")).unwrap();
    let run = certs.push(&Nixpush::new(), &format!("{}/x/y:v1", registry.host()));
    assert_tls_refused(&run, &registry, "not valid for name");
}

#[test]
fn an_expired_configured_self_signed_certificate_is_refused() {
    let cert = SelfSigned::dated(DOCKER_SAN, "20200101000000Z", "20210101000000Z");
    let registry = cert.registry();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", registry.host()),
        "--ca-cert",
        cert.cert().to_str().unwrap(),
    ]);
    assert_tls_refused(&run, &registry, "xpired");
}

/// Pushes `installable` through `proxy` as `repo:v1` and checks the image is complete and exact.
fn push_through(proxy: &FaultProxy, registry: &Registry, installable: &str, repo: &str) -> Run {
    let nixpush = Nixpush::new();
    // One layer at a time, so the first upload is the first layer's.
    let run = nixpush.run(&[
        installable,
        &format!("{}/{repo}:v1", proxy.host()),
        "--jobs",
        "1",
    ]);
    assert!(proxy.tripped(), "the fault was never injected");
    run.assert_ok();
    assert!(
        run.stderr.contains("retrying"),
        "the retry is reported:\n{}",
        run.stderr
    );
    // Read back from the registry itself: every layer is whole and exact.
    OciCopy::pull(&format!("{}/{repo}:v1", registry.host())).checked_layers();
    run
}

#[test]
fn connection_dropped_in_the_middle_of_a_layer_upload_is_retried_from_a_reopened_stream() {
    let registry = Registry::start();
    // The demo's first layer is busybox, over 1 MiB compressed: let its PATCH carry 64 KiB,
    // then cut the connection.
    let proxy = FaultProxy::start(registry.port, b"PATCH /v2/", 64 * 1024);
    let installable = fixture("demo", "app");
    push_through(&proxy, &registry, &installable, "demo/app");
    let layers = nix_closure(&nix_build(&installable)).len() + 1;
    // One upload per layer (store paths, root filesystem) and the config, plus the one that was
    // cut and started again.
    assert_eq!(registry.uploads_started(), layers + 2, "{}", registry.log());
    // The broken upload session was cancelled.
    assert!(
        registry.requests("DELETE", "/blobs/uploads/") >= 1,
        "{}",
        registry.log()
    );
}

#[test]
fn connection_dropped_when_writing_the_manifest_is_retried() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(registry.port, b"PUT /v2/edge/all/manifests/", 0);
    push_through(&proxy, &registry, &fixture("edge", "all"), "edge/all");
    assert_eq!(registry.manifest_status("edge/all", "v1", None), 200);
}

/// A plain-HTTP registry behind a front that closes or resets a connection opening with a TLS
/// ClientHello, as some port-forwarders do (`kubectl port-forward`): on loopback nixpush goes
/// on over plain HTTP, as docker does for a loopback or insecure registry (moby's
/// `lookupV2Endpoints`, registry/service_v2.go, lists an `http://` endpoint after the
/// `https://` one for them, tried when HTTPS fails).
#[test]
fn a_loopback_front_that_cuts_the_tls_handshake_is_spoken_to_over_plain_http() {
    let registry = Registry::start();
    for (how, repo) in [(TlsHello::Reset, "x/reset"), (TlsHello::Close, "x/close")] {
        let front = Front::start(Some(registry.port), |_| Action::forward());
        front.on_tls_hello(how);
        let image = format!("{}/{repo}:v1", front.host());
        Nixpush::new()
            .run(&[&fixture("demo", "app"), &image])
            .assert_ok();
        assert_eq!(
            front.tls_hellos(),
            1,
            "{how:?}: HTTPS was tried once, first"
        );
        assert_eq!(
            skopeo_inspect(&format!("{}/{repo}:v1", registry.host()), "--raw")["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
    }
}

#[test]
fn a_cut_tls_handshake_never_falls_back_when_a_ca_is_configured() {
    let registry = Registry::start();
    let front = Front::start(Some(registry.port), |_| Action::forward());
    front.on_tls_hello(TlsHello::Reset);
    let cert = SelfSigned::new(DOCKER_SAN);
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/x/y:v1", front.host()),
        "--ca-cert",
        cert.cert().to_str().unwrap(),
        "--retry-for",
        "2",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(front.tls_hellos() >= 1);
    assert!(
        front.seen().is_empty(),
        "a request went over plain HTTP: {:?}",
        front.seen()
    );
}
