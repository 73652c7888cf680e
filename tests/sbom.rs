//! `--sbom`: the image's exact closure as an SPDX 2.3 (or CycloneDX 1.5) document, attached to
//! the pushed manifest as an OCI 1.1 referrer, checked in a real docker-registry 2.8 (no
//! referrers API: the distribution spec's fallback tag `sha256-<hex>`), validated by the SPDX
//! project's own validator, and compared with Nix's own closure.

use crate::common;

use std::process::Command;

use common::*;

/// A blob of `repo` (`host/repo`), read over HTTP.
fn blob(repo: &str, digest: &str) -> Vec<u8> {
    let (host, name) = repo.split_once('/').unwrap();
    let out = Command::new("curl")
        .args(["-sf", &format!("http://{host}/v2/{name}/blobs/{digest}")])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The SBOM attached to `pinned`: (artifact manifest, SBOM bytes).
fn attached(pinned: &str) -> (serde_json::Value, Vec<u8>) {
    let index = fallback_referrers(pinned);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    let (repo, _) = pinned.split_once('@').unwrap();
    let artifact = entries[0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&format!("{repo}@{artifact}"))).unwrap();
    let sbom = blob(repo, manifest["layers"][0]["digest"].as_str().unwrap());
    (manifest, sbom)
}

fn validate_spdx(sbom: &[u8]) {
    let venv = repo_root().join("target/test-venv/bin/pyspdxtools");
    assert!(
        venv.exists(),
        "the SPDX validator is installed by `make setup`"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sbom.spdx.json");
    std::fs::write(&file, sbom).unwrap();
    let out = Command::new(&venv)
        .arg("--infile")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyspdxtools refused the SBOM:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_spdx_sbom_of_the_exact_closure_is_attached_as_a_referrer() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/sbom/app:v1", registry.host());
    let installable = fixture("demo", "app");
    let run = nixpush.run(&[&installable, &image, "--sbom", "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let doc = &json["images"][0];
    let pinned = doc["reference"].as_str().unwrap().to_owned();

    // The fallback tag's index lists exactly one SPDX artifact about the pushed manifest.
    let index = fallback_referrers(&pinned);
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
    assert_eq!(index["manifests"][0]["digest"], doc["sbomDigest"]);
    let (manifest, sbom) = attached(&pinned);
    assert_eq!(manifest["artifactType"], "application/spdx+json");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["subject"]["digest"], doc["manifestDigest"]);
    assert!(manifest.get("annotations").is_none());
    validate_spdx(&sbom);

    // It names every store path of the closure, with the NAR hash Nix has for it.
    let spdx: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let named: std::collections::BTreeSet<String> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let closure: std::collections::BTreeSet<String> = nix_closure(&nix_build(&installable))
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(named, closure);
    let busybox = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "busybox")
        .unwrap();
    let path = busybox["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    let mut nix = Command::new("nix");
    nix_env(&mut nix).args(["hash", "path", "--base16", path]);
    let hash = String::from_utf8(nix.output().unwrap().stdout).unwrap();
    assert_eq!(busybox["checksums"][0]["checksumValue"], hash.trim());
    // app depends on busybox; the document describes app.
    let relations = spdx["relationships"].as_array().unwrap();
    assert!(relations
        .iter()
        .any(|r| r["relationshipType"] == "DEPENDS_ON"
            && r["relatedSpdxElement"] == busybox["SPDXID"]));
    assert!(relations
        .iter()
        .all(|r| r["spdxElementId"] != r["relatedSpdxElement"]));

    // A re-push (unchanged) leaves one entry, with the same digest.
    let again = nixpush.run(&[&installable, &image, "--sbom", "--json"]);
    let again: serde_json::Value = serde_json::from_str(again.assert_ok()).unwrap();
    assert_eq!(again["images"][0]["unchanged"], true);
    assert_eq!(again["images"][0]["sbomDigest"], doc["sbomDigest"]);
    assert_eq!(
        fallback_referrers(&pinned)["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Another machine, another registry: the same SBOM, the same artifact digest.
    let other = Registry::start();
    let elsewhere = format!("{}/elsewhere/app:v1", other.host());
    let run = Nixpush::new().run(&[&installable, &elsewhere, "--sbom", "--json"]);
    let there: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    assert_eq!(there["images"][0]["sbomDigest"], doc["sbomDigest"]);

    // The image's own tag still names the image, which still runs.
    assert_eq!(
        skopeo_digest(&image),
        doc["manifestDigest"].as_str().unwrap()
    );
    let app = nix_build(&installable)[0].join("bin/app");
    assert_eq!(
        podman_run(&image, &[], &[app.to_str().unwrap()]),
        "hello from nixpush\n"
    );
}

#[test]
fn a_missing_sbom_is_attached_by_an_unchanged_re_push_and_cyclonedx_is_the_alternative() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/sbom/cdx:v1", registry.host());
    let installable = fixture("demo", "app");
    let pinned = nixpush.run(&[&installable, &image]).assert_ok().to_owned();
    let run = nixpush.run(&[&installable, &image, "--sbom", "--sbom-format", "cyclonedx"]);
    assert_eq!(
        run.assert_ok(),
        pinned,
        "stdout is the pinned reference, as without --sbom"
    );
    let (manifest, sbom) = attached(&pinned);
    assert_eq!(manifest["artifactType"], "application/vnd.cyclonedx+json");
    let bom: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.5");
    let closure = nix_closure(&nix_build(&installable));
    assert_eq!(bom["components"].as_array().unwrap().len(), closure.len());
    assert_eq!(bom["dependencies"].as_array().unwrap().len(), closure.len());

    // `inspect` lists what is attached; `inspect --sbom` prints the SBOM as the registry has it.
    let listed = nixpush.run(&["inspect", &image]);
    let text = listed.assert_ok();
    assert!(text.contains("application/vnd.cyclonedx+json"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(nixpush.run(&["inspect", "--json", &image]).assert_ok()).unwrap();
    assert_eq!(json["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["referrers"][0]["artifactType"],
        "application/vnd.cyclonedx+json"
    );
    let printed = nixpush
        .command(&["inspect", "--sbom", &image])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(printed.stdout, sbom, "byte for byte");
    // Nothing attached: one line, exit 1.
    let bare = format!("{}/sbom/bare:v1", registry.host());
    nixpush.run(&[&installable, &bare]).assert_ok();
    let run = nixpush.run(&["inspect", "--sbom", &bare]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line().contains("no SBOM is attached"),
        "{}",
        run.stderr
    );
}

#[test]
fn each_platform_of_a_multi_arch_image_gets_its_own_sbom() {
    let registry = Registry::start();
    let image = format!("{}/sbom/multi:v1", registry.host());
    let amd = format!("linux/amd64={}", fixture("demo", "docker"));
    let arm = format!(
        "linux/arm64={}",
        fixture("demo", "packages.aarch64-linux.docker")
    );
    let run = Nixpush::new().run(&[
        "--platform",
        &amd,
        "--platform",
        &arm,
        &image,
        "--sbom",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let repo = image.rsplit_once(':').unwrap().0;
    for doc in json["images"].as_array().unwrap() {
        let manifest = doc["manifestDigest"].as_str().unwrap();
        let (artifact, sbom) = attached(&format!("{repo}@{manifest}"));
        assert_eq!(artifact["subject"]["digest"], manifest);
        validate_spdx(&sbom);
    }
    // The index under the tag is the image's, never an SBOM's.
    let top: serde_json::Value = serde_json::from_slice(&skopeo_raw(&image)).unwrap();
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert!(top.get("subject").is_none());
}

#[test]
fn an_oci_layout_holds_the_sbom_and_a_docker_archive_says_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let target = format!("oci:{}:v1", layout.display());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &target, "--sbom", "--json"]);
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let doc = &json["images"][0];
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let artifacts: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/spdx+json")
        .collect();
    assert_eq!(artifacts.len(), 1, "{index}");
    assert_eq!(artifacts[0]["digest"], doc["sbomDigest"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(oci_blob(&layout, artifacts[0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["subject"]["digest"], doc["manifestDigest"]);
    validate_spdx(
        &std::fs::read(oci_blob(
            &layout,
            manifest["layers"][0]["digest"].as_str().unwrap(),
        ))
        .unwrap(),
    );
    // The tag still names the image, which umoci unpacks.
    let bundle = dir.path().join("bundle");
    assert!(umoci_unpack(&layout, "v1", &bundle)
        .join("nix/store")
        .is_dir());

    let archive = format!("docker-archive:{}", dir.path().join("a.tar").display());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &archive, "--sbom"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("cannot hold an attached SBOM"),
        "{}",
        run.stderr
    );
}

/// The installable's `meta.license` is the top package's declared license; a `fromImage` base's
/// layers are one package each, their checksum the layer's diff_id.
#[test]
fn licenses_come_from_meta_and_base_layers_are_packages() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/sbom/licensed:v1", registry.host());
    let pinned = nixpush
        .run(&[&fixture("demo", "licensed"), &image, "--sbom"])
        .assert_ok()
        .to_owned();
    let (_, sbom) = attached(&pinned);
    let spdx: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let packages = spdx["packages"].as_array().unwrap();
    let app = packages.iter().find(|p| p["name"] == "app").unwrap();
    assert_eq!(app["licenseDeclared"], "MIT");
    let busybox = packages.iter().find(|p| p["name"] == "busybox").unwrap();
    assert_eq!(busybox["licenseDeclared"], "NOASSERTION");

    let based = format!("{}/sbom/based:v1", registry.host());
    let pinned = nixpush
        .run(&[&fixture("demo", "docker-from-image"), &based, "--sbom"])
        .assert_ok()
        .to_owned();
    let (_, sbom) = attached(&pinned);
    validate_spdx(&sbom);
    let spdx: serde_json::Value = serde_json::from_slice(&sbom).unwrap();
    let config = OciCopy::pull(&based).config();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().trim_start_matches("sha256:").to_owned())
        .collect();
    let layers: Vec<&serde_json::Value> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-Layer-"))
        .collect();
    assert_eq!(layers.len(), 2, "the base image's two layers");
    for layer in layers {
        let sum = layer["checksums"][0]["checksumValue"].as_str().unwrap();
        assert!(diff_ids.iter().any(|d| d == sum), "{layer}");
    }
}

/// A registry with the referrers API says so with `OCI-Subject` on the artifact's PUT (the
/// distribution spec, "Pushing Manifests with Subject"): then no fallback tag is written.
#[test]
fn a_registry_with_the_referrers_api_gets_no_fallback_tag() {
    use common::front::{Action, Forwarding, Front, ResponseHead};
    let registry = Registry::start();
    let front = Front::start(Some(registry.port), |r| {
        let by_digest = r.method == "PUT" && r.path().contains("/manifests/sha256:");
        if !by_digest {
            return Action::forward();
        }
        Action::Forward(Forwarding {
            edit_response: Some(Box::new(|head: &mut ResponseHead| {
                if head.status == 201 {
                    head.set("OCI-Subject", "sha256:indexed");
                }
            })),
            ..Default::default()
        })
    });
    let image = format!("{}/api/app:v1", front.host());
    Nixpush::new()
        .run(&[&fixture("demo", "app"), &image, "--sbom"])
        .assert_ok();
    let seen = front.seen();
    assert!(seen
        .iter()
        .any(|s| s.method == "PUT" && s.target.contains("/manifests/sha256:")));
    assert!(
        !seen.iter().any(|s| s.target.contains("/manifests/sha256-")),
        "{seen:#?}"
    );
}

#[test]
fn the_sbom_is_attached_before_the_tag_moves() {
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/sbom/ordered:v1", registry.host());
    nixpush
        .run(&[&fixture("demo", "app"), &image, "--sbom"])
        .assert_ok();
    // The manifest PUTs in the order the registry served them: the image by digest, the SBOM's
    // artifact and the fallback tag, and the tag last.
    let puts: Vec<String> = registry
        .log()
        .lines()
        .filter_map(|l| l.split("\"PUT ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|path| path.contains("/manifests/"))
        .map(|path| path.rsplit('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(puts.last().map(String::as_str), Some("v1"), "{puts:?}");
    assert_eq!(puts.iter().filter(|p| *p == "v1").count(), 1, "{puts:?}");
    let fallback = puts
        .iter()
        .position(|p| p.starts_with("sha256-"))
        .expect("the fallback tag written");
    let by_digest = puts
        .iter()
        .position(|p| p.starts_with("sha256:"))
        .expect("the image by digest");
    assert!(by_digest < fallback, "{puts:?}");
}
