//! A hand-written dockerTools conf.json whose `config` keys are not sorted gives the image ID
//! nixpkgs' script gives it: the script reads the conf with `json.load` (dicts keep the text's
//! order) and writes the config with `json.dumps(..., indent=4)`, so the conf's order, at every
//! depth, is the config's. The expected digest is the Python oracle's
//! (tests/oracle/nixpkgs_config.py, Python's own `json`), never nixpush's.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The demo fixture's docker conf, written again by hand: the same store paths, its `config`
/// with keys out of order (and nested objects out of order, one key given twice).
fn hand_written_conf(fixture: &serde_json::Value) -> String {
    let layers = serde_json::to_string(&fixture["store_layers"]).unwrap();
    let custom = fixture["customisation_layer"].as_str().unwrap();
    let entrypoint = serde_json::to_string(&fixture["config"]["Entrypoint"]).unwrap();
    format!(
        r#"{{
  "store_layers": {layers},
  "customisation_layer": "{custom}",
  "config": {{
    "WorkingDir": "/",
    "Labels": {{"org.example.z": "last", "org.example.a": "first"}},
    "Env": ["GREETING=hello", "Z=1", "A=2"],
    "ExposedPorts": {{"8080/tcp": {{}}, "80/tcp": {{}}}},
    "Entrypoint": {entrypoint},
    "Cmd": ["--port", "8080"],
    "WorkingDir": "/srv"
  }},
  "architecture": "amd64",
  "os": "linux",
  "store_dir": "/nix/store",
  "from_image": null,
  "repo_tag": "demo/hand-written:fixture",
  "created": "1970-01-01T00:00:01+00:00",
  "mtime": "1970-01-01T00:00:01+00:00",
  "uid": "0",
  "gid": "0",
  "uname": "root",
  "gname": "root"
}}"#
    )
}

/// Builds `expr` (impure: it names paths of this machine): its output's store path.
fn build(expr: &str) -> PathBuf {
    let out = run_ok(
        nix_env(Command::new("nix").args([
            "build",
            "--no-link",
            "--json",
            "--impure",
            "--expr",
            expr,
        ])),
        "nix build --expr",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(json[0]["outputs"]["out"].as_str().unwrap())
}

/// The conf in `file` as a store path that refers to the store paths it names (as the conf
/// nixpkgs builds does), and a store path referring to it, as a stream script refers to its
/// conf: what nixpush is given for a dockerTools image built outside a flake.
fn conf_and_stream(file: &Path, fixture: &serde_json::Value) -> (PathBuf, PathBuf) {
    let mut named: Vec<String> = fixture["store_layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l.as_array().unwrap().iter())
        .map(|p| format!("\"{}\"", p.as_str().unwrap()))
        .collect();
    named.push(format!(
        "\"{}\"",
        fixture["customisation_layer"].as_str().unwrap()
    ));
    let conf = build(&format!(
        r#"derivation {{ name = "hand-written-conf.json"; system = "x86_64-linux"; builder = "/bin/sh";
             named = map builtins.storePath [ {} ]; text = builtins.readFile {};
             args = ["-c" "/usr/bin/printf %s \"$text\" > $out"]; }}"#,
        named.join(" "),
        file.display()
    ));
    let stream = build(&format!(
        r#"derivation {{ name = "hand-written-stream"; system = "x86_64-linux"; builder = "/bin/sh";
             conf = builtins.storePath "{}"; args = ["-c" "/usr/bin/printf %s $conf > $out"]; }}"#,
        conf.display()
    ));
    (conf, stream)
}

#[test]
fn a_hand_written_conf_keeps_its_config_order_and_nixpkgs_image_id() {
    let fixture = fixture_conf("docker");
    let dir = tempfile::tempdir().unwrap();
    let text = hand_written_conf(&fixture);
    let written = dir.path().join("hand-written-conf.json");
    std::fs::write(&written, &text).unwrap();
    let (conf, installable) = conf_and_stream(&written, &fixture);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), text);
    let expected = oracle_config_digest(&conf);

    // The test can tell: the same conf with its keys sorted has another image ID.
    let sorted: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sorted_file = dir.path().join("sorted-conf.json");
    std::fs::write(&sorted_file, serde_json::to_vec(&sorted).unwrap()).unwrap();
    assert_ne!(oracle_config_digest(&sorted_file), expected);

    let layout = dir.path().join("layout");
    let run = Nixpush::new().run(&[
        installable.to_str().unwrap(),
        &format!("oci:{}", layout.display()),
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let config_digest = json["images"][0]["configDigest"].as_str().unwrap();
    assert_eq!(config_digest, expected, "nixpkgs' image ID");

    // The config's own bytes keep the conf's order at every depth.
    let blob = layout
        .join("blobs/sha256")
        .join(config_digest.trim_start_matches("sha256:"));
    let config = std::fs::read_to_string(blob).unwrap();
    let at = |needle: &str| {
        config
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {config}"))
    };
    assert!(at("\"WorkingDir\": \"/srv\"") < at("\"Labels\""));
    assert!(at("\"Labels\"") < at("\"Env\"") && at("\"Env\"") < at("\"ExposedPorts\""));
    assert!(at("\"ExposedPorts\"") < at("\"Entrypoint\"") && at("\"Entrypoint\"") < at("\"Cmd\""));
    assert!(at("org.example.z") < at("org.example.a"));
    assert!(at("8080/tcp") < at("80/tcp\""));
}
