//! The fixtures' Nix side: flake references of `fixtures/`, `nix build` and the closures Nix
//! reports, dockerTools confs.

use std::path::PathBuf;
use std::process::Command;

use super::bed::{nix_env, read_json, repo_root, require, run_ok};

/// `path:` flake reference of a fixture attribute (`path:` needs no `git add`).
pub fn fixture(flake: &str, attr: &str) -> String {
    format!("path:{}/fixtures/{flake}#{attr}", repo_root().display())
}

/// Builds an installable with nix and returns its outputs.
pub fn nix_build(installable: &str) -> Vec<PathBuf> {
    require("nix");
    let out = run_ok(
        nix_env(Command::new("nix").args(["build", "--no-link", "--json", installable])),
        "nix build",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["outputs"].as_object().unwrap().values())
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect()
}

/// The closure of `paths` as nix reports it.
pub fn nix_closure(paths: &[PathBuf]) -> Vec<PathBuf> {
    let out = run_ok(
        nix_env(
            Command::new("nix")
                .args(["path-info", "--recursive"])
                .args(paths),
        ),
        "nix path-info",
    );
    let mut v: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    v.sort();
    v
}

/// The conf.json of a dockerTools-shaped fixture attribute, built and parsed.
pub fn fixture_conf(attr: &str) -> serde_json::Value {
    read_json(&fixture_conf_path(attr))
}

/// The store path of that conf.json.
pub fn fixture_conf_path(attr: &str) -> PathBuf {
    nix_build(&format!("{}.conf", fixture("demo", attr))).remove(0)
}
