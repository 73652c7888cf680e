//! Registries that point elsewhere or misbehave. Credentials go to the registry's own origin
//! only: an upload `Location` on another host (object storage) and a redirect there get no
//! `Authorization`, and a 401 challenge from there cannot make nixpush send its password to a
//! token realm of that host's choosing. Redirect loops end in an error, not a hang. Huge,
//! endless or malformed answers are read only as far as needed and shown bounded, on one line.
//! No password is printed, whatever fails, even with `--verbose`.

use crate::common;

use std::time::{Duration, Instant};

use common::front::*;
use common::*;

const USER: &str = "alice";

/// `Authorization: Basic` for alice with the secret password.
fn basic() -> String {
    use base64::Engine as _;
    let raw = format!("{USER}:{SECRET_PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn registry_with_password(password: &str) -> Registry {
    Registry::start_with(RegistryConfig {
        htpasswd: Some((USER.into(), password.into())),
        ..Default::default()
    })
}

/// Object storage on another host (127.0.0.2) in front of `registry`: it authorizes requests
/// by their URL, as signed URLs do, so it adds the registry's credentials itself; what nixpush
/// sent it is in its log. `answer` may answer a request instead.
fn object_storage(
    registry: &Registry,
    answer: impl Fn(&Request) -> Option<Action> + Send + Sync + 'static,
) -> Front {
    Front::start_on("127.0.0.2", Some(registry.port), move |r| {
        answer(r).unwrap_or_else(|| {
            Action::Forward(Forwarding {
                set_request_headers: vec![("Authorization".into(), basic())],
                ..Default::default()
            })
        })
    })
}

/// The registry's own front: upload sessions are moved to `storage` (the `Location` of every
/// `POST` answer points there), and with `redirect`, blob checks (`HEAD`) and the manifest `PUT`
/// are redirected there (307).
fn front_moving_uploads_to(registry: &Registry, storage: &Front, redirect: bool) -> Front {
    let storage = storage.origin();
    Front::start(Some(registry.port), move |r| {
        let elsewhere = format!("{storage}{}", r.target);
        let redirected = (r.method == "HEAD" && r.path().contains("/blobs/"))
            || (r.method == "PUT" && r.path().contains("/manifests/"));
        if redirect && redirected {
            return Action::answer(307, &[("Location", &elsewhere)], b"");
        }
        if r.method == "POST" && r.path().ends_with("/blobs/uploads/") {
            let storage = storage.clone();
            return Action::Forward(Forwarding {
                edit_response: Some(Box::new(move |head: &mut ResponseHead| {
                    if let Some(location) = head.header("location").map(str::to_owned) {
                        let path = location
                            .find("/v2/")
                            .map(|i| &location[i..])
                            .unwrap_or(&location);
                        head.set("Location", &format!("{storage}{path}"));
                    }
                })),
                ..Default::default()
            });
        }
        Action::forward()
    })
}

/// skopeo copies `image` (with alice's credentials); every layer is checked against the tar
/// oracle. Returns how many layers there are.
fn pull_checked(image: &str) -> usize {
    OciCopy::pull_with_creds(image, &format!("{USER}:{SECRET_PASSWORD}"))
        .checked_layers()
        .len()
}

#[test]
fn uploads_moved_and_requests_redirected_to_another_host_get_no_credentials() {
    let registry = registry_with_password(SECRET_PASSWORD);
    let storage = object_storage(&registry, |_| None);
    let front = front_moving_uploads_to(&registry, &storage, true);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), USER, SECRET_PASSWORD);
    let image = format!("{}/moved/app:v1", front.host());
    let run = nixpush.run(&[&fixture("demo", "app"), &image, "--verbose"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);

    let at_storage = storage.seen();
    for (method, part) in [
        ("PATCH", "/blobs/uploads/"),
        ("PUT", "/blobs/uploads/"),
        ("HEAD", "/blobs/"),
        ("PUT", "/manifests/v1"),
    ] {
        assert!(
            at_storage
                .iter()
                .any(|s| s.method == method && s.target.contains(part)),
            "no {method} {part} reached the other host: {at_storage:#?}"
        );
    }
    let with_credentials: Vec<&Seen> = at_storage
        .iter()
        .filter(|s| s.authorization.is_some())
        .collect();
    assert!(with_credentials.is_empty(), "{with_credentials:#?}");
    // The registry's own origin did get them.
    assert!(front
        .seen()
        .iter()
        .any(|s| s.method == "POST" && s.authorization.as_deref() == Some(basic().as_str())));
    assert_eq!(
        pull_checked(&format!("{}/moved/app:v1", registry.host())),
        3
    );
}

#[test]
fn a_challenge_from_another_host_never_gets_the_credentials() {
    let registry = registry_with_password(SECRET_PASSWORD);
    // Object storage that asks, when an upload is committed, for a token from a realm of its
    // own, and would gladly take a password there.
    let storage = object_storage(&registry, |r| {
        let realm = format!("http://{}/token", r.header("host").unwrap_or_default());
        if r.path() == "/token" {
            return Some(Action::answer(200, &[], br#"{"token":"stolen"}"#));
        }
        (r.method == "PUT").then(|| {
            let challenge = format!(r#"Bearer realm="{realm}",service="storage""#);
            Action::answer(401, &[("WWW-Authenticate", &challenge)], b"token needed")
        })
    });
    let front = front_moving_uploads_to(&registry, &storage, false);
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), USER, SECRET_PASSWORD);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/moved/app:v1", front.host()),
        "--verbose",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.starts_with("nixpush: error: ") && line.contains("401"),
        "{line}"
    );
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);
    let at_storage = storage.seen();
    assert!(at_storage.iter().any(|s| s.method == "PUT"));
    let with_credentials: Vec<&Seen> = at_storage
        .iter()
        .filter(|s| s.authorization.is_some() || s.target.starts_with("/token"))
        .collect();
    assert!(with_credentials.is_empty(), "{with_credentials:#?}");
    assert_eq!(
        registry.manifest_status("moved/app", "v1", Some((USER, SECRET_PASSWORD))),
        404
    );
}

#[test]
fn a_redirect_loop_ends_in_an_error_not_a_hang() {
    let registry = Registry::start();
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PUT" && r.path().contains("/manifests/") {
            // Back to itself, forever.
            let again = format!("http://{}{}", r.header("host").unwrap(), r.target);
            Action::answer(307, &[("Location", &again)], b"")
        } else {
            Action::forward()
        }
    });
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/loop/app:v1", front.host()),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(60));
    let line = run.error_line();
    assert!(line.contains("redirected more than 10 times"), "{line}");
    // Followed a bounded number of times, and not tried again: a loop stays a loop.
    let puts = front
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .count();
    assert!((2..=11).contains(&puts), "{puts}");
    assert_eq!(registry.manifest_status("loop/app", "v1", None), 404);
}

/// A registry of its own making, with no storage: it takes every blob (without reading it
/// anywhere), and answers manifest requests with `manifest(request)` (default: none stored,
/// and a PUT taken).
fn fake_registry(manifest: impl Fn(&Request) -> Option<Action> + Send + Sync + 'static) -> Front {
    Front::start(None, move |r| {
        let path = r.path();
        if path.contains("/manifests/") {
            if let Some(action) = manifest(r) {
                return action;
            }
        }
        let json = [("Content-Type", "application/json")];
        match (r.method.as_str(), path) {
            ("GET", "/v2/") => Action::answer(200, &json, b"{}"),
            ("HEAD", p) if p.contains("/blobs/") => Action::answer(404, &[], b""),
            ("POST", p) if p.ends_with("/blobs/uploads/") => {
                let location = format!("{p}session");
                Action::answer(202, &[("Location", &location)], b"")
            }
            ("PATCH", p) => Action::answer(202, &[("Location", p)], b""),
            ("PUT", p) if p.contains("/blobs/uploads/") => {
                let digest = r.query("digest").unwrap_or_default();
                Action::answer(201, &[("Docker-Content-Digest", &digest)], b"")
            }
            ("GET", p) if p.contains("/manifests/") => Action::answer(404, &json, b"{}"),
            ("PUT", p) if p.contains("/manifests/") => Action::answer(201, &[], b""),
            ("DELETE", _) => Action::answer(204, &[], b""),
            _ => Action::answer(404, &[], b""),
        }
    })
}

/// A body of `len` bytes of `byte`, or endless (`None`): never held in memory.
fn repeated(status: u16, byte: u8, len: Option<u64>) -> Action {
    Action::Answer(Reply {
        status,
        headers: vec![],
        body: ReplyBody::Repeat {
            byte,
            len: len.unwrap_or(u64::MAX),
            declared: len.is_some(),
        },
    })
}

const HUNDRED_MB: u64 = 100 * 1000 * 1000;
/// What a client that stops reading early lets through: what it read, plus socket buffers.
const READ_AT_MOST: u64 = 48 * 1024 * 1024;

fn push_to(front: &Front) -> (Run, Duration) {
    let started = Instant::now();
    // A short budget: these registries fail for good; how long a push keeps trying is
    // tests/resilience.rs's subject.
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/hostile/app:v1", front.host()),
        "--retry-for",
        "5s",
    ]);
    (run, started.elapsed())
}

#[test]
fn a_huge_error_body_is_shown_bounded_on_one_line_and_never_read_whole() {
    // 100 MB on one line, then the same endless: refused (400), and failing (500, retried).
    for (status, len) in [(400, Some(HUNDRED_MB)), (500, None)] {
        let front =
            fake_registry(move |r| (r.method == "PUT").then(|| repeated(status, b'x', len)));
        let (run, took) = push_to(&front);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(took < Duration::from_secs(60), "{took:?}");
        let line = run.error_line();
        assert!(line.contains(&status.to_string()), "{line}");
        assert!(
            line.contains("xxxxxxxx"),
            "the registry's words are shown: {line}"
        );
        assert!(line.chars().count() < 600, "{} chars", line.chars().count());
        println!("{} bytes taken in {took:?}", front.answered_bytes());
        assert!(
            front.answered_bytes() < READ_AT_MOST,
            "{} bytes taken",
            front.answered_bytes()
        );
    }
}

#[test]
fn a_huge_endless_or_malformed_manifest_does_not_stop_the_push() {
    // The manifest under the tag is read first (for known layers): an endless one, a 100 MB
    // one, and one that is not JSON are all set aside, and the push goes on.
    let bodies: [Action; 3] = [
        repeated(200, b'{', None),
        repeated(200, b'[', Some(HUNDRED_MB)),
        Action::answer(200, &[], b"\x00\xff{\"layers\": [ not json"),
    ];
    for body in bodies {
        let body = std::sync::Mutex::new(Some(body));
        let front = fake_registry(move |r| {
            (r.method == "GET")
                .then(|| body.lock().unwrap().take())
                .flatten()
        });
        let (run, took) = push_to(&front);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(took < Duration::from_secs(60), "{took:?}");
        println!("{} bytes taken in {took:?}", front.answered_bytes());
        assert!(
            front.answered_bytes() < READ_AT_MOST,
            "{} bytes taken",
            front.answered_bytes()
        );
        assert!(
            front
                .seen()
                .iter()
                .any(|s| s.method == "PUT" && s.target.ends_with("/manifests/v1")),
            "the tag was written"
        );
    }
}

/// Whatever fails, neither the password nor its Basic form shows in anything nixpush prints,
/// even with `--verbose`: a wrong password, a registry that never takes the manifest. (The
/// tests above check it for other hosts' challenges and redirects, tests/token_auth.rs for
/// token realms and tokens.)
#[test]
fn no_password_is_ever_printed_when_a_push_fails() {
    // A registry that wants another password.
    let registry = registry_with_password("an-0ther-password");
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), USER, SECRET_PASSWORD);
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/leak/app:v1", registry.host()),
        "--verbose",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line().contains("credentials were rejected"),
        "{}",
        run.error_line()
    );
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);

    // The right password, and a manifest the registry never takes.
    let registry = registry_with_password(SECRET_PASSWORD);
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PUT" && r.path().contains("/manifests/") {
            Action::answer(503, &[], b"down")
        } else {
            Action::forward()
        }
    });
    let nixpush = Nixpush::new();
    nixpush.login(&front.host(), USER, SECRET_PASSWORD);
    // Tried again for a few seconds, not the default budget: the retries' lines are what is
    // looked through, and a few of them say what a minute of them would.
    let run = nixpush.run(&[
        &fixture("demo", "app"),
        &format!("{}/leak/app:v1", front.host()),
        "--verbose",
        "--retry-for",
        "5s",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);
}
