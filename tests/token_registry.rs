//! Bearer-token auth against a real docker-registry configured with `auth: token`: the registry
//! checks every token itself (signature against the certificate the test made, issuer,
//! audience, expiry with its 60 s of leeway, the actions of each scope), and the token server
//! (tests/fakes/token_server.py) only issues them. A push with the right password, a wrong
//! password, a token the registry stops accepting in the middle of a push, and a mount between
//! two repositories, which needs pull on the source in the same token.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::front::{Action, Forwarding, Front};
use common::*;

const PASSWORD: &str = "reg1stry-T0ken-pw";
const SERVICE: &str = "nixpush-test";
const ISSUER: &str = "nixpush-test-issuer";

/// tests/fakes/token_server.py with a fresh RSA key and a self-signed certificate for it.
struct TokenServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TokenServer {
    /// `options` as token_server.py reads them (`--first-lifetime SECONDS`).
    fn start(options: &[&str]) -> TokenServer {
        require("python3");
        require("openssl");
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=nixpush test token signer"])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl req failed: {out:?}");
        let (child, port) = spawn_listening(
            Command::new("python3")
                .arg(repo_root().join("tests/fakes/token_server.py"))
                .arg(dir.path().join("key.pem"))
                .arg(dir.path().join("cert.pem"))
                .args(["alice", PASSWORD])
                .arg(dir.path().join("log"))
                .args(["--issuer", ISSUER, "--service", SERVICE])
                .args(options),
            "the token server",
        );
        TokenServer { child, port, dir }
    }

    /// A registry that wants this server's tokens, and only them.
    fn registry(&self) -> Registry {
        Registry::start_with(RegistryConfig {
            token: Some(TokenAuth {
                realm: format!("http://127.0.0.1:{}/token", self.port),
                service: SERVICE.into(),
                issuer: ISSUER.into(),
                rootcertbundle: self.dir.path().join("cert.pem"),
            }),
            ..Default::default()
        })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The token requests so far, as logged.
    fn entries(&self) -> Vec<serde_json::Value> {
        TokenServer::entries_at(&self.log_path())
    }

    fn entries_at(log: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The tokens issued so far.
    fn issued(&self) -> usize {
        self.entries().iter().filter(|e| e["ok"] == true).count()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// skopeo copies `image` with `creds`; every layer is checked against the tar oracle. Returns
/// how many layers there are.
fn pull_and_check(image: &str, creds: &str) -> usize {
    OciCopy::pull_with_creds(image, creds)
        .checked_layers()
        .len()
}

#[test]
fn a_push_to_a_token_auth_registry_gets_a_token_the_registry_accepts() {
    let server = TokenServer::start(&[]);
    let registry = server.registry();
    // The registry itself refuses a request without a token.
    assert_eq!(registry.manifest_status("team/app", "v1", None), 401);
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), "alice", PASSWORD);
    let image = format!("{}/team/app:v1", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image]);
    run.assert_ok();
    assert!(!run.stderr.contains(PASSWORD));

    let entries = server.entries();
    assert!(!entries.is_empty(), "the token server was asked");
    for e in &entries {
        assert_eq!(e["ok"], true, "{e}");
        assert_eq!(
            e["scope"],
            serde_json::json!(["repository:team/app:pull,push"])
        );
        assert_eq!(e["service"], serde_json::json!([SERVICE]));
    }
    // Every token was accepted: nothing was refused after the ping.
    let log = registry.log();
    assert!(!log.contains("invalid_token") && !log.contains("insufficient"));
    assert!(log.contains("auth.user.name=alice"), "{log}");
    assert_eq!(pull_and_check(&image, &format!("alice:{PASSWORD}")), 3);
}

#[test]
fn a_wrong_password_at_the_token_server_is_reported_once_and_never_printed() {
    let server = TokenServer::start(&[]);
    let registry = server.registry();
    let nixpush = Nixpush::new();
    let wrong = "not-the-T0ken-pw";
    nixpush.login(&registry.host(), "alice", wrong);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", registry.host()),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rejected: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("credentials were rejected"))
        .collect();
    assert_eq!(rejected.len(), 1, "{}", run.stderr);
    assert!(rejected[0].contains("alice"), "{}", rejected[0]);
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong));
    assert_eq!(server.issued(), 0);
    assert!(server.entries().iter().all(|e| e["ok"] == false));
    assert_eq!(registry.uploads_started(), 0);
}

/// The first token stops working a few seconds after it is issued (its `exp` is just inside
/// distribution's 60 s of leeway, while the token server says it lasts 300 s). A front holds
/// the first upload request of `method` until then, so the registry itself refuses it with its
/// own challenge (`error="invalid_token"`): nixpush fetches a new token and the push completes,
/// whether the refused request can be sent again (PUT) or was a layer stream (PATCH, then the
/// upload is retried as a whole).
#[test]
fn a_token_the_registry_stops_accepting_mid_push_is_renewed_and_the_push_completes() {
    const LIFETIME: u64 = 6;
    for method in ["PATCH", "PUT"] {
        let server = TokenServer::start(&["--first-lifetime", &LIFETIME.to_string()]);
        let registry = server.registry();
        let held = Arc::new(AtomicBool::new(false));
        let too_late = Arc::new(AtomicBool::new(false));
        let challenges = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let (h, late, c, log) = (
            held.clone(),
            too_late.clone(),
            challenges.clone(),
            server.log_path(),
        );
        let front = Front::start(Some(registry.port), move |req| {
            if req.method == method
                && req.path().contains("/blobs/uploads/")
                && !h.swap(true, Ordering::SeqCst)
            {
                // Until the first token is surely past its expiry, leeway included.
                let issued = TokenServer::entries_at(&log)[0]["issued"].as_f64().unwrap();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                let wait = issued + LIFETIME as f64 + 1.5 - now;
                late.store(wait <= 1.5, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs_f64(wait.max(0.0)));
            }
            let (c, what) = (c.clone(), format!("{} {}", req.method, req.path()));
            Action::Forward(Forwarding {
                edit_response: Some(Box::new(move |head| {
                    if head.status == 401 {
                        let challenge = head.header("www-authenticate").unwrap_or_default();
                        c.lock().unwrap().push((what, challenge.to_owned()));
                    }
                })),
                ..Default::default()
            })
        });
        let nixpush = Nixpush::new();
        nixpush.login(&front.host(), "alice", PASSWORD);
        let image = format!("{}/team/app:v1", front.host());
        let run = nixpush.run(&[&fixture("demo", "app"), &image]);
        assert_eq!(run.code, 0, "{method}: {}", run.stderr);
        assert!(held.load(Ordering::SeqCst), "{method}: no request was held");
        assert!(
            !too_late.load(Ordering::SeqCst),
            "{method}: the push reached its first upload {method} after the first token had expired"
        );

        // Past the anonymous ping, the registry's 401s are for the expired token, and the held
        // request is among them. (Cancelling the abandoned upload session, a DELETE, needs the
        // `delete` action a push token does not have: distribution refuses it whatever the token.)
        let refused: Vec<(String, String)> = challenges
            .lock()
            .unwrap()
            .iter()
            .filter(|(what, _)| what != "GET /v2/" && !what.starts_with("DELETE "))
            .cloned()
            .collect();
        assert!(
            refused.iter().any(|(what, _)| what.starts_with(method)),
            "{method}: {refused:?}"
        );
        let realm = format!("realm=\"http://127.0.0.1:{}/token\"", server.port);
        for (what, challenge) in &refused {
            assert!(
                challenge.starts_with("Bearer ")
                    && challenge.contains(&realm)
                    && challenge.contains("service=\"nixpush-test\"")
                    && challenge.contains("scope=\"repository:team/app:")
                    && challenge.contains("error=\"invalid_token\""),
                "{method}: {what}: {challenge}"
            );
        }
        assert!(registry.log().contains("token not to be used after"));
        let numbers: Vec<serde_json::Value> = server
            .entries()
            .iter()
            .map(|e| e["number"].clone())
            .collect();
        // Exactly two: the DELETE's `insufficient_scope` refusal is not taken for an expired
        // token (a new one with the same scope would be refused the same way).
        assert_eq!(
            numbers,
            [serde_json::json!(1), serde_json::json!(2)],
            "{method}: one renewal, no more"
        );
        assert_eq!(
            pull_and_check(
                &format!("{}/team/app:v1", registry.host()),
                &format!("alice:{PASSWORD}")
            ),
            3,
            "{method}"
        );
    }
}

#[test]
fn a_mount_gets_pull_on_the_source_in_the_same_token_and_the_registry_mounts() {
    let server = TokenServer::start(&[]);
    let registry = server.registry();
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), "alice", PASSWORD);
    nixpush
        .run(&[
            &fixture("demo", "app"),
            &format!("{}/team/base:v1", registry.host()),
        ])
        .assert_ok();
    // Same cache, another repository: the layers are mounted from team/base.
    let image = format!("{}/team/app:v1", registry.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image, "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let layers = json["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for l in layers {
        assert_eq!(l["action"], "mounted", "{json}");
    }
    let scopes: Vec<serde_json::Value> = server
        .entries()
        .iter()
        .map(|e| e["scope"].clone())
        .collect();
    assert!(
        scopes.contains(&serde_json::json!([
            "repository:team/app:pull,push",
            "repository:team/base:pull"
        ])),
        "{scopes:?}"
    );
    // distribution mounted the blobs (201 to POST ...?mount=), it did not start uploads.
    let log = registry.log();
    assert!(!log.contains("insufficient"), "{log}");
    let mounted = log
        .lines()
        .filter(|l| {
            l.contains("\"POST /v2/team/app/blobs/uploads/?mount=") && l.contains("\" 201 ")
        })
        .count();
    assert_eq!(mounted, 3, "{log}");
    assert_eq!(registry.requests("PATCH", "/team/app/"), 0);
    assert_eq!(pull_and_check(&image, &format!("alice:{PASSWORD}")), 3);
}
