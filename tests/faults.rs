//! Pushing through a faulty network. A front between nixpush and the real registry breaks
//! requests in a seeded pattern: one fault in every five requests (a connection dropped in the
//! middle of the request body, an answer cut short, 500, 503, or 429 with `Retry-After: 1`),
//! never more than two faults in a row on the same request. Every push completes and skopeo,
//! reading the registry directly, gets a complete and exact image. A push that fails for good
//! tags nothing and leaves no upload session open; Ctrl-C in the middle of an upload exits 130,
//! tags nothing, and cancels the sessions it had open.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::front::*;
use common::seeded::faulty_front;
use common::*;

/// Seeds of the fault pattern every push below must ride out.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// Requests the front broke.
fn faults(front: &Front) -> Vec<Seen> {
    front
        .seen()
        .into_iter()
        .filter(|s| s.action != "forward")
        .collect()
}

/// Pushes `attr` of the demo flake through faults from `seed`, one in five requests, to a
/// registry of its own, and reads it back from the registry directly.
fn push_through_faults(attr: &str, seed: u64) {
    let registry = Registry::start();
    let front = faulty_front(&registry, seed, 5);
    let run = Nixpush::new().run(&[
        &fixture("demo", attr),
        &format!("{}/demo/{attr}:v1", front.host()),
    ]);
    let broken = faults(&front);
    let seen = front.seen();
    assert_eq!(
        run.code,
        0,
        "seed {seed}: the push failed; {} of {} requests were broken:\n{broken:#?}\n{}",
        broken.len(),
        seen.len(),
        run.stderr
    );
    assert!(
        broken.len() * 5 >= seen.len().saturating_sub(4),
        "seed {seed}: {} faults in {} requests",
        broken.len(),
        seen.len()
    );
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    let mut kinds: Vec<&str> = broken.iter().map(|s| s.action.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    println!(
        "{attr}, seed {seed}: {} requests, {} broken ({})",
        seen.len(),
        broken.len(),
        kinds.join(", ")
    );
    let copy = OciCopy::pull(&format!("{}/demo/{attr}:v1", registry.host()));
    assert_eq!(copy.checked_layers().len(), 3, "seed {seed}");
    // The tag names exactly the image nixpush said it pushed.
    let pinned = run.stdout.trim();
    assert!(
        pinned.ends_with(&format!("@{}", copy.manifest_digest)),
        "{pinned} vs {}",
        copy.manifest_digest
    );
}

#[test]
fn a_dockertools_image_pushed_through_seeded_faults_is_complete_and_exact() {
    for seed in SEEDS {
        push_through_faults("docker", seed);
    }
}

#[test]
fn a_package_pushed_through_seeded_faults_is_complete_and_exact() {
    for seed in SEEDS {
        push_through_faults("app", seed);
    }
}

/// The session id in an upload URL (`.../blobs/uploads/<id>?...`).
fn session_id(url: &str) -> Option<String> {
    let rest = url.split_once("/blobs/uploads/")?.1;
    let id = rest.split(['?', '/']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// Every upload session the registry opened for nixpush (a POST answered 202 that reached it)
/// and nixpush did not commit was cancelled: the registry got a `DELETE` for it.
fn assert_no_session_left_open(front: &Front, registry: &Registry) {
    let seen = front.seen();
    let opened: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "POST" && s.status == Some(202))
        .filter_map(|s| session_id(s.location.as_deref()?))
        .collect();
    assert!(!opened.is_empty());
    for id in opened {
        let committed = seen
            .iter()
            .any(|s| s.method == "PUT" && s.status == Some(201) && s.target.contains(&id));
        if !committed {
            assert!(
                registry.requests("DELETE", &id) >= 1,
                "upload session {id} was left open:\n{seen:#?}"
            );
        }
    }
}

#[test]
fn a_manifest_the_registry_never_takes_fails_the_push_and_tags_nothing() {
    let registry = Registry::start();
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PUT" && r.path().contains("/manifests/") {
            Action::answer(503, &[], b"manifests are read-only today")
        } else {
            Action::forward()
        }
    });
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "docker"),
        &format!("{}/demo/docker:v1", front.host()),
        "--retry-for",
        "4s",
    ]);
    assert_refused(&run, 1, &["503", "manifests are read-only today"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(registry.manifest_status("demo/docker", "v1", None), 404);
    assert_eq!(
        registry.manifest_status("demo/docker", "fixture", None),
        404
    );
    // Tried again for as long as --retry-for says (with backoff: 0.3, 0.6, 1.2 s...), then
    // given up.
    let puts = front
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .count();
    assert!((3..=6).contains(&puts), "{puts}");
}

#[test]
fn blobs_the_registry_never_commits_fail_the_push_tag_nothing_and_leave_no_session_open() {
    let registry = Registry::start();
    // Layer bodies throttled: busybox's (over 1 MiB) is still on its way when the small layers
    // have failed for good (--retry-for 3s), and its session is open when the push gives up.
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PUT" && r.path().contains("/blobs/uploads/") {
            Action::answer(503, &[], b"storage backend down")
        } else if r.method == "PATCH" {
            Action::Forward(Forwarding {
                throttle: Some(THROTTLE),
                ..Default::default()
            })
        } else {
            Action::forward()
        }
    });
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/demo/app:v1", front.host()),
        "--retry-for",
        "3s",
    ]);
    assert_refused(&run, 1, &["503"]);
    assert_eq!(registry.manifest_status("demo/app", "v1", None), 404);
    assert!(!front
        .seen()
        .iter()
        .any(|s| s.target.contains("/manifests/v1") && s.method == "PUT"));
    // The uploads still running beside the one that failed were stopped, and cancelled too.
    assert!(
        !uncommitted_uploads(&front).is_empty(),
        "an upload was still running: {:#?}",
        front.seen()
    );
    assert_no_session_left_open(&front, &registry);
    assert_storage_holds_no_partial_upload(&registry);
}

#[test]
fn ctrl_c_in_the_middle_of_an_upload_exits_130_tags_nothing_and_cancels_open_sessions() {
    let registry = Registry::start();
    // Layer bodies throttled: busybox's layer (over 1 MiB) takes seconds.
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PATCH" {
            Action::Forward(Forwarding {
                throttle: Some(THROTTLE),
                ..Default::default()
            })
        } else {
            Action::forward()
        }
    });
    let nixpush = Nixpush::new();
    let child = nixpush
        .command(&[
            &fixture("demo", "app"),
            &format!("{}/demo/app:v1", front.host()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !front.seen().iter().any(|s| s.method == "PATCH") {
        assert!(Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let interrupted_at = Instant::now();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert_eq!(
        run.error_line(),
        "nixpush: interrupted; the tag was not moved to a partial image"
    );
    assert!(interrupted_at.elapsed() < Duration::from_secs(10));
    assert!(run.stdout.is_empty());
    assert_eq!(registry.manifest_status("demo/app", "v1", None), 404);
    // The upload cut short was cancelled (the registry got its DELETE), as was any other open.
    assert!(
        !uncommitted_uploads(&front).is_empty(),
        "{:#?}",
        front.seen()
    );
    assert_no_session_left_open(&front, &registry);
    assert_storage_holds_no_partial_upload(&registry);
}

/// Layer bodies are passed on at this rate: a layer of over 1 MiB (busybox's) is still on its
/// way for seconds, and a stopped upload can still end its request within the wind-down.
const THROTTLE: u64 = 384 * 1024;

/// Sessions a layer body was sent in (a PATCH) and that were never committed.
fn uncommitted_uploads(front: &Front) -> Vec<String> {
    let seen = front.seen();
    seen.iter()
        .filter(|s| s.method == "PATCH")
        .filter_map(|s| session_id(&s.target))
        .filter(|id| {
            !seen
                .iter()
                .any(|s| s.method == "PUT" && s.status == Some(201) && s.target.contains(id))
        })
        .collect()
}

/// The registry's storage holds no upload's partial data: the DELETEs took effect.
fn assert_storage_holds_no_partial_upload(registry: &Registry) {
    // The registry may still be finishing the request that was cut when the DELETE came.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !registry.partial_uploads().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let deletes: Vec<String> = registry
        .log()
        .lines()
        .filter(|l| l.contains("DELETE") || l.contains("resumed") || l.contains("level=error"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        registry.partial_uploads(),
        Vec::<std::path::PathBuf>::new(),
        "{deletes:#?}"
    );
}

/// skopeo and nixpush through the same fault patterns, counting completed pushes: a comparison
/// to run by hand (it measures skopeo, so it asserts nothing about it):
/// `make setup && NIX_REMOTE=local NIX_CONF_DIR=$PWD/fixtures cargo test --release --test integration -- --ignored --nocapture faults::`
#[test]
#[ignore = "a measurement, run by hand"]
fn skopeo_and_nixpush_through_the_same_faults() {
    require("skopeo");
    // skopeo's source: the demo image as an OCI layout.
    let source_registry = Registry::start();
    let source = format!("{}/demo/app:v1", source_registry.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &source])
        .assert_ok();
    let layout = tempfile::tempdir().unwrap();
    skopeo_to_oci(&source, layout.path(), "src", &[], &[]);
    let skopeo_copy = |front: &Front| {
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--retry-times",
                "5",
                "--dest-tls-verify=false",
                &format!("oci:{}:src", layout.path().display()),
                &format!("docker://{}/demo/app:v1", front.host()),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        (
            out.status.success(),
            stderr.lines().last().unwrap_or_default().to_owned(),
        )
    };
    // Through the front with no fault, skopeo succeeds: what fails below is the faults.
    let registry = Registry::start();
    let clean = Front::start(Some(registry.port), |_| Action::forward());
    let (ok, why) = skopeo_copy(&clean);
    assert!(ok, "skopeo through a faultless front: {why}");
    for every in [10, 5, 3] {
        let (mut skopeo_ok, mut nixpush_ok) = (0, 0);
        let (mut skopeo_time, mut nixpush_time) = (Duration::ZERO, Duration::ZERO);
        let seeds = 1..=10u64;
        for seed in seeds.clone() {
            let registry = Registry::start();
            let front = faulty_front(&registry, seed, every);
            let started = Instant::now();
            let (ok, why) = skopeo_copy(&front);
            skopeo_time += started.elapsed();
            skopeo_ok += usize::from(ok);
            if !ok {
                println!("  seed {seed}, skopeo: {why}");
            }
            let registry = Registry::start();
            let front = faulty_front(&registry, seed, every);
            let started = Instant::now();
            let run = Nixpush::new().run(&[
                &fixture("demo", "app"),
                &format!("{}/demo/app:v1", front.host()),
            ]);
            nixpush_time += started.elapsed();
            nixpush_ok += usize::from(run.code == 0);
            if run.code != 0 {
                println!("  seed {seed}, nixpush: {}", run.error_line());
            }
        }
        let n = seeds.count();
        println!(
            "one fault in {every} requests: skopeo copy --retry-times 5 completed {skopeo_ok}/{n} ({:.1} s in all), nixpush {nixpush_ok}/{n} ({:.1} s in all)",
            skopeo_time.as_secs_f64(),
            nixpush_time.as_secs_f64()
        );
    }
}
