//! A push that never gives up early and never hangs. Through the seeded fault front (a
//! connection dropped mid-body, an answer cut short, 500, 503, 429 with `Retry-After`) in front
//! of the real registry, every step of an upload is retried on its own within a time budget, so
//! pushes land at rates that made a count of tries give up; a registry that stalls is given up
//! on in bounded time, naming the request; a body stalled half-way is asked for again; a cache
//! entry found under another layer's name is not trusted; no `Referer` leaves nixpush; and a
//! killed nixpush takes its `nix` with it. Each landed push is pulled back and its layers checked
//! against the store (the tarfile oracle), and its tag names exactly what nixpush printed.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::front::*;
use common::seeded::faulty_front;
use common::*;

/// Pushes `attr` through faults from `seed` (one in `every` requests), empty cache, to a
/// registry of its own; on success, checks what the registry holds. Returns whether it landed.
fn lands(attr: &str, seed: u64, every: usize, layers: usize) -> bool {
    let registry = Registry::start();
    let front = faulty_front(&registry, seed, every);
    let image = format!("{}/res/{attr}:v1", front.host());
    let started = Instant::now();
    let run = Nixpush::new().run(&[&fixture("demo", attr), &image]);
    let broken = front
        .seen()
        .iter()
        .filter(|s| s.action != "forward")
        .count();
    println!(
        "{attr}, one fault in {every}, seed {seed}: exit {} in {:.1} s, {} requests, {broken} broken",
        run.code,
        started.elapsed().as_secs_f64(),
        front.seen().len()
    );
    if run.code != 0 {
        // A push that gave up tags nothing.
        assert_eq!(
            registry.manifest_status(&format!("res/{attr}"), "v1", None),
            404
        );
        println!("  {}", run.error_line());
        return false;
    }
    let copy = OciCopy::pull(&format!("{}/res/{attr}:v1", registry.host()));
    assert_eq!(copy.checked_layers().len(), layers, "seed {seed}");
    assert!(
        run.stdout
            .trim()
            .ends_with(&format!("@{}", copy.manifest_digest)),
        "seed {seed}: the tag names another image than the one printed"
    );
    true
}

#[test]
fn ten_seeds_at_one_fault_in_five_all_land() {
    for seed in 1..=10 {
        assert!(lands("app", seed, 5, 3), "seed {seed} did not land");
    }
}

#[test]
fn at_one_fault_in_three_nine_seeds_of_ten_land() {
    let landed = (1..=10).filter(|seed| lands("app", *seed, 3, 3)).count();
    assert!(landed >= 9, "{landed}/10 landed");
}

#[test]
fn a_hundred_layer_image_at_one_fault_in_ten_lands_five_times_of_five() {
    for seed in 1..=5 {
        assert!(lands("many", seed, 10, 100), "seed {seed} did not land");
    }
}

/// A front that stalls (answers nothing for a minute) the requests `stall` picks.
fn stalling_front(
    registry: &Registry,
    stall: impl Fn(&Request) -> bool + Send + Sync + 'static,
) -> Front {
    Front::start(Some(registry.port), move |r| {
        if stall(r) {
            Action::Stall(Duration::from_secs(60))
        } else {
            Action::forward()
        }
    })
}

#[test]
fn a_registry_that_never_answers_the_ping_fails_the_push_in_bounded_time() {
    let registry = Registry::start();
    let front = stalling_front(&registry, |r| r.path() == "/v2/");
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/res/app:v1", front.host()),
        "--stall-timeout",
        "1s",
        "--retry-for",
        "3s",
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(line.contains("/v2/"), "names the request: {line}");
    // Tries for the budget (3 s) plus the last try's stall (1 s), and no more.
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(front.seen().len() >= 2, "tried again: {:#?}", front.seen());
}

#[test]
fn a_commit_that_is_never_answered_fails_the_push_in_bounded_time_and_tags_nothing() {
    let registry = Registry::start();
    let front = stalling_front(&registry, |r| {
        r.method == "PUT" && r.path().contains("/blobs/uploads/")
    });
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/res/app:v1", front.host()),
        "--stall-timeout",
        "1s",
        "--retry-for",
        "3s",
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("PUT") && line.contains("/blobs/uploads/"),
        "{line}"
    );
    assert!(took < Duration::from_secs(40), "{took:?}");
    assert_eq!(registry.manifest_status("res/app", "v1", None), 404);
}

#[test]
fn a_manifest_whose_body_stalls_half_way_is_asked_for_again() {
    let registry = Registry::start();
    let image = |host: String| format!("{host}/res/app:v1");
    // First pushed straight to the registry: the second push reads the tag's manifest to learn
    // its layers, and that read stalls half-way once.
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &image(registry.host())])
        .assert_ok();
    let stalled = Arc::new(AtomicUsize::new(0));
    let front = {
        let stalled = stalled.clone();
        Front::start(Some(registry.port), move |r| {
            let manifest_read = r.method == "GET" && r.path().contains("/manifests/");
            if manifest_read && stalled.fetch_add(1, Ordering::SeqCst) == 0 {
                Action::StallResponse(Duration::from_secs(60))
            } else {
                Action::forward()
            }
        })
    };
    let uploads = registry.uploads_started();
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &image(front.host()),
        "--stall-timeout",
        "1s",
        "--verbose",
    ]);
    run.assert_ok();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}: {}",
        started.elapsed(),
        run.stderr
    );
    let reads = front
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.target.contains("/manifests/"))
        .count();
    assert!(
        reads >= 2,
        "read again after the stall: {:#?}",
        front.seen()
    );
    // What the second read taught was used: every layer was skipped.
    assert_eq!(registry.uploads_started(), uploads);
}

#[test]
fn a_cache_entry_copied_over_another_layers_entry_is_not_trusted() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let args = |tag: &str| {
        vec![
            fixture("demo", "app"),
            format!("{}/res/app:{tag}", registry.host()),
            "--entrypoint".to_owned(),
            "bin/app".to_owned(),
        ]
    };
    let v1: Vec<String> = args("v1");
    let v1: Vec<&str> = v1.iter().map(String::as_str).collect();
    nixpush.run(&v1).assert_ok();
    // Two layers' entries: the first copied over the second (well-formed, wrong).
    let entries: Vec<std::path::PathBuf> = walk_files(nixpush.cache.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(entries.len() >= 3, "{entries:?}");
    std::fs::copy(&entries[0], &entries[1]).unwrap();
    let v2: Vec<String> = args("v2");
    let v2: Vec<&str> = v2.iter().map(String::as_str).collect();
    nixpush.run(&v2).assert_ok();
    // The same image under both tags, every layer what the store gives.
    let first = OciCopy::pull(&format!("{}/res/app:v1", registry.host()));
    let second = OciCopy::pull(&format!("{}/res/app:v2", registry.host()));
    assert_eq!(second.manifest["layers"], first.manifest["layers"]);
    second.checked_layers();
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn no_referer_leaves_nixpush_when_it_follows_a_redirect() {
    let registry = Registry::start();
    // Blob HEADs answered with a redirect to the same front, which then forwards them.
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "HEAD" && r.path().contains("/blobs/") && r.query("redirected").is_none() {
            let location = format!("{}?redirected=1", r.target);
            Action::answer(307, &[("Location", location.as_str())], b"")
        } else {
            Action::forward()
        }
    });
    let nixpush = Nixpush::new();
    let image = format!("{}/res/app:v1", front.host());
    nixpush.run(&[&fixture("demo", "app"), &image]).assert_ok();
    nixpush.run(&[&fixture("demo", "app"), &image]).assert_ok();
    let seen = front.seen();
    assert!(
        seen.iter().any(|s| s.target.contains("redirected=1")),
        "a redirect was followed: {seen:#?}"
    );
    let with_referer: Vec<&Seen> = seen.iter().filter(|s| s.referer.is_some()).collect();
    assert!(with_referer.is_empty(), "{with_referer:#?}");
}

#[test]
fn a_killed_nixpush_takes_its_nix_with_it() {
    // A `nix` that says where it is and then takes its time.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("nix.pid");
    let fake = dir.path().join("nix");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 600\n",
            pid_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Nixpush::new()
        .command(&[".#app", "127.0.0.1:9/res/app:v1"])
        .env("NIXPUSH_NIX", &fake)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "nix never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    // Killed outright: no handler runs, no destructor.
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    assert_process_ends(&pid_file);
}

#[test]
fn a_slow_upload_that_keeps_moving_is_never_cut_by_the_stall_timeout() {
    let registry = Registry::start();
    // Layer bodies at 96 KiB/s: busybox's layer (over 1 MiB) takes over ten seconds to send,
    // five times the stall timeout, and never stops moving.
    let front = Front::start(Some(registry.port), |r| {
        if r.method == "PATCH" {
            Action::Forward(Forwarding {
                throttle: Some(96 * 1024),
                ..Default::default()
            })
        } else {
            Action::forward()
        }
    });
    let started = Instant::now();
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        &format!("{}/res/app:v1", front.host()),
        "--stall-timeout",
        "2s",
    ]);
    run.assert_ok();
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the link was slow"
    );
    // Sent once each: no upload was cut and started again.
    let patches = front.seen().iter().filter(|s| s.method == "PATCH").count();
    assert_eq!(patches, 3, "{:#?}", front.seen());
    let copy = OciCopy::pull(&format!("{}/res/app:v1", registry.host()));
    assert_eq!(copy.checked_layers().len(), 3);
}
