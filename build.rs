//! Sets `NIXPUSH_VERSION`, what `nixpush --version` prints after the name: the crate's version,
//! followed from a git checkout by the short hash of `HEAD` (`0.1.0 (84e1d3d)`); from a package
//! (no `.git`) or without git, the version alone. Uses only git itself, no build dependency.

use std::path::Path;
use std::process::Command;

/// What `git ARGS` prints, when it succeeds and prints something.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    println!("cargo:rerun-if-changed=build.rs");
    // `.git` is a directory in a clone, a file in a `git worktree`; a package has neither.
    let commit = if Path::new(".git").exists() {
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    match commit {
        Some(commit) => {
            println!("cargo:rustc-env=NIXPUSH_VERSION={version} ({commit})");
            // Run again when HEAD moves: a checkout changes HEAD, a commit the branch it names.
            let branch = git(&["symbolic-ref", "-q", "HEAD"]);
            for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
                // Only files that exist: cargo runs the script each time for a missing one.
                let path = git(&["rev-parse", "--git-path", name]);
                if let Some(path) = path.filter(|p| Path::new(p).exists()) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
        None => println!("cargo:rustc-env=NIXPUSH_VERSION={version}"),
    }
}
