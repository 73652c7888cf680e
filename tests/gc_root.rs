//! Built paths stay alive for the whole push: a garbage collection while nixpush holds a `Built`
//! deletes nothing of its closure, and once it is dropped the same collection can.
//!
//! A test binary of its own, with one test, on purpose (Cargo.toml): it runs `nix-store --gc`,
//! which must not race with other tests building fixtures, and cargo runs test binaries one
//! after another, while the tests of the integration binary run side by side.

mod common;

use std::process::Command;

use common::*;

fn collect_garbage() {
    let out = nix_env(Command::new("nix-store").arg("--gc"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_built_installable_survives_garbage_collection_until_dropped() {
    require("nix-store");
    // The library runs `nix` itself: give it the test bed's offline configuration.
    std::env::set_var("NIX_REMOTE", "local");
    std::env::set_var("NIX_CONF_DIR", repo_root().join("fixtures"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let built = runtime
        .block_on(nixpush::nix::build(&fixture("demo", "app"), &[]))
        .unwrap();
    let closure: Vec<_> = built.closure.paths.keys().cloned().collect();
    assert_eq!(closure.len(), 2);

    collect_garbage();
    for p in &closure {
        assert!(p.exists(), "{} was collected while in use", p.display());
    }

    drop(built);
    collect_garbage();
    assert!(
        !built_top_exists(&closure),
        "nothing else roots the demo app, so it is collected once nixpush lets go"
    );
}

fn built_top_exists(closure: &[std::path::PathBuf]) -> bool {
    closure
        .iter()
        .filter(|p| p.to_str().unwrap().ends_with("-app"))
        .any(|p| p.exists())
}
