//! `--provenance`: an in-toto Statement v1 with SLSA Provenance v1 of the exact Nix inputs,
//! attached cosign's way (the `.att` tag) and as an OCI 1.1 referrer. The DSSE envelope is
//! checked by the in-toto project's own library (securesystemslib) against the public key; its
//! store paths and their digests are compared with what Nix itself says of the image's closure
//! (`nix path-info --json -r`, hashes converted by `nix hash to-base16`).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PASSPHRASE: &str = "provenance passphrase";

fn keypair(dir: &Path) -> (String, String, String) {
    let (key, public, pass) = nixpush_keypair(dir, PASSPHRASE);
    let s = |p: PathBuf| p.to_str().unwrap().to_owned();
    (s(key), s(public), s(pass))
}

/// Nix's own account of `paths`' closure: each store path with its NAR hash as hex.
fn nix_closure_hashes(paths: &[std::path::PathBuf]) -> BTreeMap<String, String> {
    let mut cmd = Command::new("nix");
    cmd.args(["path-info", "--json", "-r"]).args(paths);
    let out = run_ok(nix_env(&mut cmd), "nix path-info");
    let infos: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries: Vec<(String, String)> = match &infos {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|i| {
                (
                    i["path"].as_str().unwrap().to_owned(),
                    i["narHash"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(p, i)| (p.clone(), i["narHash"].as_str().unwrap().to_owned()))
            .collect(),
        other => panic!("nix path-info printed {other}"),
    };
    entries
        .into_iter()
        .map(|(path, hash)| {
            let mut cmd = Command::new("nix");
            cmd.args(["hash", "to-base16", "--type", "sha256", &hash]);
            let hex = run_ok(nix_env(&mut cmd), "nix hash to-base16");
            (
                path,
                String::from_utf8(hex.stdout).unwrap().trim().to_owned(),
            )
        })
        .collect()
}

#[test]
fn signed_provenance_names_the_image_and_exactly_nix_s_closure() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public, pass) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/prov/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let run = Nixpush::new().run(&[
        &installable,
        &image,
        "--provenance",
        "--sign-key",
        &key,
        "--sign-passphrase-file",
        &pass,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let doc = &json["images"][0];
    let digest = doc["manifestDigest"].as_str().unwrap();
    assert_eq!(doc["provenance"]["signed"], true);

    // securesystemslib checks the envelope in the `.att` tag with the public key.
    let out = dsse_from_registry(registry.port, "prov/app", digest, Path::new(&public));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statements: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statement = &statements[0];
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );
    let build = &statement["predicate"]["buildDefinition"];
    assert_eq!(
        build["externalParameters"]["installable"],
        installable.as_str()
    );
    assert!(build["externalParameters"]["flake"]["narHash"].is_string());

    // Every store path of the image, with its NAR hash, exactly as Nix gives them.
    let from_statement: BTreeMap<String, String> = build["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("/nix/store/"))
        })
        .map(|d| {
            (
                d["uri"].as_str().unwrap().to_owned(),
                d["digest"]["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(from_statement, nix_closure_hashes(&nix_build(&installable)));

    // Also an OCI 1.1 referrer of the image, beside any SBOM.
    let referrers = fallback_referrers(&format!("{}/prov/app@{digest}", registry.host()));
    assert_eq!(
        referrers["manifests"][0]["artifactType"],
        "application/vnd.in-toto+json"
    );
    assert_eq!(
        referrers["manifests"][0]["digest"],
        doc["provenance"]["digest"]
    );

    // Pushed again: nothing new.
    let again = Nixpush::new().run(&[
        &installable,
        &image,
        "--provenance",
        "--sign-key",
        &key,
        "--sign-passphrase-file",
        &pass,
        "--json",
    ]);
    let again: serde_json::Value = serde_json::from_str(again.assert_ok()).unwrap();
    // Unchanged: the provenance there is kept, no second statement attached.
    assert!(again["images"][0].get("provenance").is_none(), "{again}");
    let referrers = fallback_referrers(&format!("{}/prov/app@{digest}", registry.host()));
    assert_eq!(referrers["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn provenance_without_a_key_is_attached_unsigned_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public, _) = keypair(dir.path());
    let registry = Registry::start();
    let image = format!("{}/prov/unsigned:v1", registry.host());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &image, "--provenance", "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_eq!(json["images"][0]["provenance"]["signed"], false);
    assert!(json["images"][0].get("signatures").is_none());
    assert_eq!(json["warnings"][0]["kind"], "unsigned-provenance");
    assert!(
        run.stderr.contains("the provenance is unsigned"),
        "{}",
        run.stderr
    );
    // securesystemslib finds no signature by the key on it.
    let digest = json["images"][0]["manifestDigest"].as_str().unwrap();
    let out = dsse_from_registry(registry.port, "prov/unsigned", digest, Path::new(&public));
    assert!(!out.status.success());
}

#[test]
fn provenance_and_docker_schema_2_are_refused_together() {
    let run = Nixpush::new().run(&[
        &fixture("demo", "app"),
        "127.0.0.1:1/x:v1",
        "--provenance",
        "--format",
        "docker",
    ]);
    assert_refused(&run, 2, &["--format docker", "--provenance", "subject"]);
}
