//! A cache's credentials never follow a redirect to another origin, shown through the binary
//! with a real signed cache. A binary cache URL may carry `user:pass@`, and caches commonly
//! send their NAR downloads elsewhere (object storage, a CDN) with a redirect; a client that
//! lets `Authorization` ride along hands the cache's password to whoever that other host is.
//! src/http/redirect.rs and src/binary_cache/fetch_tests.rs prove the policy in-process; this
//! file proves it for what `nixpush` itself sends: the closure only in a cache written by
//! `nix copy` (tests/common/cached_closure.rs), served behind two test fronts
//! (tests/common/front.rs) that log every header of every request.

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::binary_cache::{assert_not_in_store, hash_part};
use common::cached_closure::*;
use common::front::{assert_no_secret, Action, Forwarding, Front, Request, SECRET_PASSWORD};
use common::*;

/// The cache's user; its password is [`SECRET_PASSWORD`].
const USER: &str = "cache-reader";

/// The cookie origin A sets on each of its answers: a client with a cookie jar would send it
/// back, and it must not go to B either.
const COOKIE: &str = "cache-session=c00kie-SESSION-xyz";

/// Every request a front received, every header kept.
type Log = Arc<Mutex<Vec<Request>>>;

fn record(log: &Log, request: &Request) {
    log.lock().unwrap().push(request.clone());
}

fn requests(log: &Log) -> Vec<Request> {
    log.lock().unwrap().clone()
}

/// `Basic base64(USER:SECRET_PASSWORD)`, what the cache accepts.
fn basic() -> String {
    use base64::Engine as _;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET_PASSWORD}"));
    format!("Basic {token}")
}

/// Origin B, object storage on another port of the same host: `/hop1/nar/...` redirects
/// within B (307) to `/hop2/nar/...`, which serves the cache's `/nar/...` from `upstream`.
fn storage(upstream: u16, log: Log) -> Front {
    Front::start(Some(upstream), move |r| {
        record(&log, r);
        if let Some(nar) = r.path().strip_prefix("/hop1") {
            Action::answer(307, &[("Location", &format!("/hop2{nar}"))], b"")
        } else if let Some(nar) = r.path().strip_prefix("/hop2") {
            Action::Forward(Forwarding {
                target: Some(nar.to_owned()),
                ..Forwarding::default()
            })
        } else {
            Action::answer(404, &[], b"")
        }
    })
}

/// Origin A, the cache: every request without its Basic credential is `401`; with it,
/// `/nar/...` is a `302` to B's `/hop1/nar/...`, and the rest (narinfos, nix-cache-info) comes
/// from `upstream`. Each answer sets a cookie.
fn cache(upstream: u16, storage: String, log: Log) -> Front {
    let expected = basic();
    Front::start(Some(upstream), move |r| {
        record(&log, r);
        if r.header("authorization") != Some(expected.as_str()) {
            return Action::answer(401, &[("WWW-Authenticate", "Basic realm=\"cache\"")], b"");
        }
        if r.path().starts_with("/nar/") {
            let location = format!("{storage}/hop1{}", r.path());
            return Action::answer(302, &[("Location", &location), ("Set-Cookie", COOKIE)], b"");
        }
        Action::Forward(Forwarding {
            edit_response: Some(Box::new(|head| head.set("Set-Cookie", COOKIE))),
            ..Forwarding::default()
        })
    })
}

#[test]
fn cache_credentials_never_follow_a_nar_redirect_to_another_origin() {
    let app = Built::attr("cached-20");
    let cached = FromCache::only_there(&app);
    let (a_log, b_log): (Log, Log) = Default::default();
    let b = storage(cached.server.port, b_log.clone());
    let a = cache(cached.server.port, b.origin(), a_log.clone());
    assert_ne!(a.origin(), b.origin());
    let url = format!("http://{USER}:{SECRET_PASSWORD}@{}", a.host());
    let image = cached.image("cache/app:v1");
    let args = from_cache(
        app.top(),
        &image,
        &[&url],
        &[&cached.key.public],
        &["--verbose"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let run = Nixpush::new().run(&args);
    let json: serde_json::Value =
        serde_json::from_str(run.assert_ok()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let layered: BTreeSet<&str> = json["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["storePaths"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    let closure: BTreeSet<&str> = app.closure.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(layered, closure, "{json}");
    assert_eq!(
        cached.registry.manifest_status("cache/app", "v1", None),
        200
    );
    assert_not_in_store(&app.closure);
    assert_no_secret(&run, USER, &[SECRET_PASSWORD]);

    // A, the cache's origin, had the credential on every request: each narinfo, each NAR.
    let a_seen = requests(&a_log);
    for r in &a_seen {
        assert_eq!(r.header("authorization"), Some(basic().as_str()), "{r:?}");
    }
    let narinfos: Vec<String> = app
        .closure
        .iter()
        .map(|p| format!("/{}.narinfo", hash_part(p)))
        .collect();
    for narinfo in &narinfos {
        assert!(
            a_seen.iter().any(|r| r.path() == narinfo),
            "{narinfo} asked of A: {a_seen:#?}"
        );
    }
    let nars = cached.nar_paths(&app.closure_paths());
    let redirected: BTreeSet<String> = a_seen
        .iter()
        .filter(|r| r.path().starts_with("/nar/"))
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(redirected, nars, "every NAR asked of A first");

    // B saw both hops of every NAR, and never a credential or a cookie on any of them.
    let b_seen = requests(&b_log);
    for hop in ["/hop1", "/hop2"] {
        let asked: BTreeSet<String> = b_seen
            .iter()
            .filter_map(|r| r.path().strip_prefix(hop))
            .map(str::to_owned)
            .collect();
        assert_eq!(asked, nars, "{hop} on B: {b_seen:#?}");
    }
    for r in &b_seen {
        for (name, value) in &r.headers {
            for sensitive in ["authorization", "cookie", "proxy-authorization"] {
                assert!(
                    !name.eq_ignore_ascii_case(sensitive),
                    "B got {name} on {} {}",
                    r.method,
                    r.target
                );
            }
            assert!(
                !value.contains(SECRET_PASSWORD) && !value.contains(&basic()),
                "B got the password in {name} on {}",
                r.target
            );
        }
        assert!(!r.target.contains(SECRET_PASSWORD), "{}", r.target);
    }
    // And the NARs' bytes came from the cache's directory, through B's second hop.
    assert_eq!(cached.downloaded(), nars);
}
