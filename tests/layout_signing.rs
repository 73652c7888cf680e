//! Signatures and provenance in an OCI layout (`oci:DIR`): OCI 1.1 referrers of the manifests
//! they are about (cosign's artifact type for signatures), their signatures checked with the
//! public key by Python's `cryptography` (not nixpush); a docker-archive, which cannot hold
//! them, is refused before anything runs.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

const PASSPHRASE: &str = "layout passphrase";

fn read(dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
}

/// Whether `signature` (base64 DER) over `payload` is `public`'s, by Python's cryptography.
fn python_verifies(public: &Path, payload: &[u8], signature: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let payload_file = dir.path().join("payload");
    std::fs::write(&payload_file, payload).unwrap();
    let script = "import sys,base64\n\
from cryptography.hazmat.primitives.serialization import load_pem_public_key\n\
from cryptography.hazmat.primitives.asymmetric import ec\n\
from cryptography.hazmat.primitives import hashes\n\
key=load_pem_public_key(open(sys.argv[1],'rb').read())\n\
key.verify(base64.b64decode(sys.argv[3]),open(sys.argv[2],'rb').read(),ec.ECDSA(hashes.SHA256()))\n";
    Command::new(venv_python())
        .args(["-c", script])
        .arg(public)
        .arg(&payload_file)
        .arg(signature)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn an_oci_layout_holds_signatures_and_provenance_as_referrers() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = cosign_keypair(dir.path(), PASSPHRASE);
    let layout = dir.path().join("layout");
    let run = Nixpush::new().run_with(
        &[
            &fixture("demo", "app"),
            &format!("oci:{}:v1", layout.display()),
            "--sign-key",
            key.to_str().unwrap(),
            "--provenance",
            "--sbom",
            "--json",
        ],
        &[("NIXPUSH_SIGN_PASSPHRASE", PASSPHRASE.into())],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(run.assert_ok()).unwrap();
    let image = &json["images"][0];
    let manifest = image["manifestDigest"].as_str().unwrap();
    let sbom = image["sbomDigest"].as_str().unwrap();
    assert_eq!(image["provenance"]["signed"], true);

    let index = read_json(&layout.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let of_type = |t: &str| -> Vec<serde_json::Value> {
        entries
            .iter()
            .filter(|e| e["artifactType"] == t)
            .map(|e| serde_json::from_slice(&read(&layout, e["digest"].as_str().unwrap())).unwrap())
            .collect()
    };
    // One signature of the image manifest and one of the SBOM's, each valid for its subject.
    let signatures = of_type("application/vnd.dev.cosign.artifact.sig.v1+json");
    let mut subjects: Vec<&str> = signatures
        .iter()
        .map(|s| s["subject"]["digest"].as_str().unwrap())
        .collect();
    subjects.sort();
    let mut expected = vec![manifest, sbom];
    expected.sort();
    assert_eq!(subjects, expected);
    for s in &signatures {
        let layer = &s["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let payload = read(&layout, layer["digest"].as_str().unwrap());
        let signed: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            signed["critical"]["image"]["docker-manifest-digest"],
            s["subject"]["digest"]
        );
        let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap();
        assert!(python_verifies(&public, &payload, signature));
        let other = tempfile::tempdir().unwrap();
        let (_, other_public) = cosign_keypair(other.path(), PASSPHRASE);
        assert!(!python_verifies(&other_public, &payload, signature));
    }
    // The provenance: a DSSE envelope about the image, checked by securesystemslib.
    let provenance = of_type("application/vnd.in-toto+json");
    assert_eq!(provenance.len(), 1);
    assert_eq!(provenance[0]["subject"]["digest"], manifest);
    let envelope = dir.path().join("envelope.json");
    let layer = provenance[0]["layers"][0]["digest"].as_str().unwrap();
    std::fs::write(&envelope, read(&layout, layer)).unwrap();
    let out = dsse_verify(&envelope, &public);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_docker_archive_cannot_hold_signatures_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let archive = format!("docker-archive:{}", dir.path().join("a.tar").display());
    let run = Nixpush::new().run(&[&fixture("demo", "app"), &archive, "--provenance"]);
    assert_refused(
        &run,
        2,
        &["docker-archive", "cannot hold signatures or provenance"],
    );
    assert!(!dir.path().join("a.tar").exists());
}
