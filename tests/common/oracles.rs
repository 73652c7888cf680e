//! The independent references nixpush's output is checked against: Python scripts in
//! tests/oracle/ that compute a layer's bytes, a dockerTools config, an archive's facts, from the
//! same inputs, without nixpush's code; and nix2container's rules in Go
//! (fixtures/nix2container/oracle.go, with Go's own archive/tar and encoding/json).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::bed::{repo_root, require, run_ok};

/// The diff_id the Python tarfile oracle gives for a layer of `paths`; `owner` holds its
/// ownership flags (`--mtime N --uid N --gid N --uname S --gname S`), empty for the defaults.
pub fn oracle_diff_id(paths: &[PathBuf], owner: &[&str]) -> String {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/layer_tar.py"))
            .args(owner)
            .args(paths),
        "the tar oracle",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The config digest (image ID) nixpkgs' stream script gives the image a conf.json describes,
/// as the Python oracle (tests/oracle/nixpkgs_config.py) derives it from nixpkgs' rules.
pub fn oracle_config_digest(conf: &Path) -> String {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/nixpkgs_config.py"))
            .arg(conf),
        "the config oracle",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What an image archive holds, read by Python's tarfile (tests/oracle/archive_facts.py):
/// `image_id`, `layer_digests`, `diff_ids`, `repo_tags`.
pub fn archive_facts(archive: &Path) -> serde_json::Value {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/archive_facts.py"))
            .arg(archive),
        "the archive reader",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The JSON the layer checker prints for a gzip layer blob: diff_id, expected, paths.
pub fn check_layer(blob: &Path) -> serde_json::Value {
    check_layers(&[blob.to_owned()]).remove(0)
}

/// The same for each of `blobs`, in order, in one run of the checker.
pub fn check_layers(blobs: &[PathBuf]) -> Vec<serde_json::Value> {
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/check_layer.py"))
            .args(blobs),
        "the layer checker",
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

/// Runs the nix2container oracle (fixtures/nix2container/oracle.go, built once with Go's
/// standard library only) with `args`; returns its stdout.
pub fn nix2container_oracle(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let oracle = BUILT.get_or_init(|| {
        require("go");
        let out = repo_root().join("target/nix2container-oracle");
        run_ok(
            Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(repo_root().join("fixtures/nix2container/oracle.go"))
                .env("GOCACHE", "/tmp/nixpush-go-cache")
                .env("GO111MODULE", "off")
                .env("CGO_ENABLED", "0"),
            "go build of the nix2container oracle",
        );
        out
    });
    run_ok(Command::new(oracle).args(args), "the nix2container oracle").stdout
}
