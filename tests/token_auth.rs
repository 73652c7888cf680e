//! The distribution token flow, in front of the real registry: a bearer challenge on `/v2/`,
//! credentials sent to the token realm (Basic) with the repository's pull,push scope (pull only
//! for `inspect`), the token on every registry request, a wrong password reported plainly and never printed. The token front
//! (tests/fakes/token_proxy.py) forwards authenticated requests to a real docker-registry.

use crate::common;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::front::{Action, Front};
use common::*;

const PASSWORD: &str = "t0ken-Pa55word";

struct TokenFront {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl TokenFront {
    fn start(registry: &Registry) -> TokenFront {
        TokenFront::start_with(registry, PASSWORD, &[])
    }

    /// A front whose token realm wants alice's `password`; `options` as token_proxy.py reads
    /// them (`--token T`, `--expire-on METHOD:N`).
    fn start_with(registry: &Registry, password: &str, options: &[&str]) -> TokenFront {
        require("python3");
        let log = tempfile::NamedTempFile::new().unwrap();
        let (child, port) = spawn_listening(
            Command::new("python3")
                .arg(repo_root().join("tests/fakes/token_proxy.py"))
                .arg(registry.port.to_string())
                .args(["alice", password])
                .arg(log.path())
                .args(options),
            "the token front",
        );
        TokenFront { child, port, log }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_push_behind_token_auth_asks_for_the_repository_scope_and_sends_the_token() {
    let registry = Registry::start();
    let front = TokenFront::start(&registry);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), "alice", PASSWORD);
    let image = format!("{}/team/app:v1", front.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image]);
    run.assert_ok();
    assert!(!run.stderr.contains(PASSWORD));

    let entries = front.entries();
    let tokens: Vec<&serde_json::Value> = entries.iter().filter(|e| e["token"] == true).collect();
    assert!(!tokens.is_empty(), "the token realm was asked");
    for t in &tokens {
        assert_eq!(t["credentials_ok"], true);
        assert_eq!(
            t["scope"],
            serde_json::json!(["repository:team/app:pull,push"])
        );
        assert_eq!(t["service"], serde_json::json!(["fake-registry"]));
    }
    // Only the first ping goes without the token; every other request carries it.
    let requests: Vec<&serde_json::Value> = entries.iter().filter(|e| e["token"] != true).collect();
    let without: Vec<_> = requests.iter().filter(|e| e["bearer"] != true).collect();
    assert_eq!(without.len(), 1, "{without:?}");
    assert_eq!(without[0]["path"], "/v2/");
    assert!(requests
        .iter()
        .any(|e| e["method"] == "PATCH" && e["bearer"] == true));
    // The image is whole in the registry behind.
    let copy = OciCopy::pull(&format!("{}/team/app:v1", registry.host()));
    assert_eq!(copy.checked_layers().len(), 3);
}

/// A fault front before the token front: the first `failures` token requests are answered
/// 503 (a token service restarting), everything else goes through. The challenge names the
/// realm on the host the client asked, so token requests pass this front too.
fn flaky_realm(tokens: &TokenFront, failures: usize) -> Front {
    let answered = Arc::new(AtomicUsize::new(0));
    Front::start(Some(tokens.port), move |r| {
        if r.path() == "/token" && answered.fetch_add(1, Ordering::SeqCst) < failures {
            Action::answer(503, &[], b"token service unavailable")
        } else {
            Action::forward()
        }
    })
}

#[test]
fn a_token_realm_answering_503_twice_is_asked_again_and_the_push_completes() {
    let registry = Registry::start();
    let tokens = TokenFront::start(&registry);
    let front = flaky_realm(&tokens, 2);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), "alice", PASSWORD);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
    ]);
    run.assert_ok();
    assert!(!run.stderr.contains(PASSWORD));
    let statuses: Vec<Option<u16>> = front
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/token"))
        .map(|s| s.status)
        .collect();
    assert_eq!(
        statuses[..3],
        [Some(503), Some(503), Some(200)],
        "{statuses:?}"
    );
    let copy = OciCopy::pull(&format!("{}/team/app:v1", registry.host()));
    assert_eq!(copy.checked_layers().len(), 3);
}

#[test]
fn a_token_realm_that_stays_unavailable_fails_the_push_in_one_line() {
    let registry = Registry::start();
    let tokens = TokenFront::start(&registry);
    let front = flaky_realm(&tokens, usize::MAX);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), "alice", PASSWORD);
    let started = Instant::now();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
        "--retry-for",
        "5s",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(line.contains("503") && line.contains("/token"), "{line}");
    // Retried with backoff, a bounded number of times, then given up: not a hang.
    let asked = front
        .seen()
        .iter()
        .filter(|s| s.target.starts_with("/token"))
        .count();
    assert!((2..=10).contains(&asked), "{asked} token requests");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!run.stderr.contains(PASSWORD));
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn a_wrong_password_at_the_token_realm_is_reported_and_never_printed() {
    let registry = Registry::start();
    let front = TokenFront::start(&registry);
    let nixpush = Nixpush::new();
    let wrong = "not-the-Pa55word";
    nixpush.login(&front.host(), "alice", wrong);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("credentials were rejected") && line.contains("alice"),
        "{line}"
    );
    assert!(!run.stderr.contains(wrong));
    assert_eq!(registry.uploads_started(), 0);
}

#[test]
fn no_credentials_for_a_token_registry_says_so() {
    let registry = Registry::start();
    let front = TokenFront::start(&registry);
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
    ]);
    assert_refused(&run, 1, &["requires credentials"]);
}

#[test]
fn inspect_behind_token_auth_asks_for_pull_access_only() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    // Pushed straight to the registry, then read through the token front.
    nixpush
        .run(&[
            &fixture("demo", "app"),
            &format!("{}/team/app:v1", registry.host()),
        ])
        .assert_ok();
    let front = TokenFront::start(&registry);
    let creds = format!("alice:{PASSWORD}");
    let run = nixpush.run(&[
        "inspect",
        "--creds",
        &creds,
        &format!("{}/team/app:v1", front.host()),
    ]);
    let text = run.assert_ok();
    assert!(text.contains("/team/app@sha256:"), "{text}");
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));

    let entries = front.entries();
    let tokens: Vec<&serde_json::Value> = entries.iter().filter(|e| e["token"] == true).collect();
    assert!(!tokens.is_empty(), "the token realm was asked");
    for t in &tokens {
        assert_eq!(t["credentials_ok"], true);
        assert_eq!(t["scope"], serde_json::json!(["repository:team/app:pull"]));
    }
    let writes: Vec<_> = entries
        .iter()
        .filter(|e| e["token"] != true && !matches!(e["method"].as_str(), Some("GET" | "HEAD")))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn an_identity_token_is_exchanged_as_an_oauth2_refresh_token() {
    let registry = Registry::start();
    let front = TokenFront::start(&registry);
    let nixpush = Nixpush::new();
    // What `docker login` stores for a registry that hands out refresh tokens.
    std::fs::write(
        nixpush.docker_config.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"{PASSWORD}"}}}}}}"#,
            front.host()
        ),
    )
    .unwrap();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
    ]);
    run.assert_ok();
    assert!(!run.stderr.contains(PASSWORD));
    let entries = front.entries();
    let tokens: Vec<&serde_json::Value> = entries.iter().filter(|e| e["token"] == true).collect();
    assert!(!tokens.is_empty());
    for t in &tokens {
        // A POSTed form, never the refresh token as a Basic password.
        assert_eq!(t["grant_type"], serde_json::json!(["refresh_token"]), "{t}");
        assert_eq!(t["credentials_ok"], true);
        assert_eq!(t["authorization"], false);
        assert_eq!(
            t["scope"],
            serde_json::json!(["repository:team/app:pull,push"])
        );
    }
    assert_eq!(
        OciCopy::pull(&format!("{}/team/app:v1", registry.host()))
            .checked_layers()
            .len(),
        3
    );

    // A refresh token the realm does not know is refused plainly, and never printed.
    let stale = "stale-refresh-T0KEN";
    std::fs::write(
        nixpush.docker_config.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{stale}"}}}}}}"#,
            front.host()
        ),
    )
    .unwrap();
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v2", front.host()),
    ]);
    assert_refused(&run, 1, &["credentials were rejected"]);
    assert!(!run.stderr.contains(stale));
}

#[test]
fn a_mount_asks_for_pull_on_the_source_repository_too() {
    let registry = Registry::start();
    let front = TokenFront::start(&registry);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), "alice", PASSWORD);
    nixpush
        .run(&[
            &fixture("demo", "app"),
            &format!("{}/team/base:v1", front.host()),
        ])
        .assert_ok();
    // Same cache, another repository: the layers are mounted from team/base.
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/team/app:v1", front.host()),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    for l in json["images"][0]["layers"].as_array().unwrap() {
        assert_eq!(l["action"], "mounted", "{json}");
    }
    let entries = front.entries();
    let scopes: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["token"] == true)
        .map(|e| &e["scope"])
        .collect();
    assert!(
        scopes.contains(&&serde_json::json!([
            "repository:team/app:pull,push",
            "repository:team/base:pull"
        ])),
        "{scopes:?}"
    );
}

/// A token that stops working in the middle of a push (the front answers one request 401 with
/// its challenge, as a registry does when a token expires early): nixpush fetches a new one and
/// the push completes, whether the refused request had a body it can send again (HEAD, PUT) or a
/// layer stream (PATCH, then the upload is retried as a whole).
#[test]
fn a_token_that_expires_in_the_middle_of_a_push_is_renewed_and_the_push_completes() {
    for expire_on in ["PATCH:2", "PUT:2", "HEAD:1"] {
        let registry = Registry::start();
        let front = TokenFront::start_with(&registry, PASSWORD, &["--expire-on", expire_on]);
        let nixpush = Nixpush::new();
        nixpush.login(&front.host(), "alice", PASSWORD);
        let run = nixpush.run(&[
            &fixture("demo", "app"),
            &format!("{}/team/app:v1", front.host()),
        ]);
        assert_eq!(run.code, 0, "{expire_on}: {}", run.stderr);
        let entries = front.entries();
        let expired: Vec<&serde_json::Value> =
            entries.iter().filter(|e| e["expired"] == true).collect();
        assert_eq!(expired.len(), 1, "{expire_on}: {entries:#?}");
        let method = expire_on.split(':').next().unwrap();
        assert_eq!(expired[0]["method"], method);
        let generations: Vec<&serde_json::Value> = entries
            .iter()
            .filter(|e| e["token"] == true)
            .map(|e| &e["generation"])
            .collect();
        assert!(
            generations.contains(&&serde_json::json!(1))
                && generations.contains(&&serde_json::json!(2)),
            "{expire_on}: a second token was issued: {generations:?}"
        );
        let copy = OciCopy::pull(&format!("{}/team/app:v1", registry.host()));
        assert_eq!(copy.checked_layers().len(), 3, "{expire_on}");
    }
}

/// Behind token auth, neither the password nor a token shows in anything nixpush prints, even
/// with `--verbose`: the realm refusing the password, a token expiring mid-push.
#[test]
fn no_password_or_token_is_ever_printed_behind_token_auth() {
    use common::front::{assert_no_secret, SECRET_PASSWORD};
    const TOKEN: &str = "tok-KNOWN-4f9a1c";
    let registry = Registry::start();
    let scenarios: [(&str, &[&str], i32); 2] = [
        // The realm wants another password.
        (PASSWORD, &["--token", TOKEN], 1),
        // The right password; the token expires at the second layer upload.
        (
            SECRET_PASSWORD,
            &["--token", TOKEN, "--expire-on", "PATCH:2"],
            0,
        ),
    ];
    for (i, (realm_password, options, code)) in scenarios.into_iter().enumerate() {
        let front = TokenFront::start_with(&registry, realm_password, options);
        let nixpush = Nixpush::new();
        nixpush.login(&front.host(), "alice", SECRET_PASSWORD);
        let run = nixpush.run(&[
            &fixture("demo", "app"),
            &format!("{}/team/leak{i}:v1", front.host()),
            "--verbose",
        ]);
        assert_eq!(run.code, code, "{}", run.stderr);
        assert_no_secret(&run, "alice", &[SECRET_PASSWORD, TOKEN]);
    }
}
