//! Signatures checked by implementations that are not nixpush's: cosign key pairs and key
//! signatures made in Python (`tests/tools/`, on cryptography and PyNaCl), verified by
//! sigstore-rs (`tests/sigstore-verify/`, the Sigstore project's Rust client); DSSE envelopes
//! verified by securesystemslib; and the signature policy of skopeo and podman
//! (containers/image), which on Debian 12 finds sigstore signatures but, built without
//! sigstore, refuses every one ("Debian-local change: sigstore disabled").

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::bed::{repo_root, require, run_ok};

/// The Python of the tests' virtualenv, which `make setup` fills (cryptography, PyNaCl,
/// securesystemslib).
pub fn venv_python() -> PathBuf {
    let python = repo_root().join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python virtualenv is made by `make setup` (target/test-venv)"
    );
    python
}

/// A script of `tests/tools/` run by the venv's Python, with `COSIGN_PASSWORD`.
fn python_tool(script: &str, passphrase: &str) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_root().join("tests/tools").join(script))
        .env("COSIGN_PASSWORD", passphrase);
    cmd
}

/// A fresh cosign key pair in `dir` (`cosign.key`, encrypted with `passphrase`, and
/// `cosign.pub`), made by tests/tools/cosign_key.py.
pub fn cosign_keypair(dir: &Path, passphrase: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join("cosign");
    run_ok(
        python_tool("cosign_key.py", passphrase)
            .arg("generate")
            .arg(&prefix),
        "cosign_key.py generate",
    );
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// Signs `repo@digest` in the plain-HTTP registry on `registry_port` as `cosign sign --key`
/// does, with tests/tools/cosign_sign.py (merged into the `.sig` tag's signatures).
pub fn python_sign(registry_port: u16, repo: &str, digest: &str, key: &Path, passphrase: &str) {
    python_sign_with(registry_port, repo, digest, key, passphrase, &[]);
}

/// `python_sign` whose payload names `payload_digest` instead: a forged signature, stored where
/// `digest`'s signatures are.
pub fn python_sign_naming(
    registry_port: u16,
    (repo, digest): (&str, &str),
    payload_digest: &str,
    key: &Path,
    passphrase: &str,
) {
    let extra = ["--digest-in-payload", payload_digest];
    python_sign_with(registry_port, repo, digest, key, passphrase, &extra);
}

fn python_sign_with(
    port: u16,
    repo: &str,
    digest: &str,
    key: &Path,
    passphrase: &str,
    extra: &[&str],
) {
    run_ok(
        python_tool("cosign_sign.py", passphrase)
            .args([&format!("127.0.0.1:{port}"), repo, digest, "--key"])
            .arg(key)
            .args(extra),
        "cosign_sign.py",
    );
}

/// The sigstore-rs verifier, built (once per test binary; a no-op when `make test-tools` has
/// built it) from its own crate and lock file into target/sigstore-verify.
pub fn sigstore_verify_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let root = repo_root();
            run_ok(
                Command::new(cargo)
                    .current_dir(&root)
                    .args([
                        "build",
                        "--release",
                        "--locked",
                        "--quiet",
                        "--manifest-path",
                    ])
                    .arg(root.join("tests/sigstore-verify/Cargo.toml"))
                    .arg("--target-dir")
                    .arg(root.join("target/sigstore-verify")),
                "cargo build of tests/sigstore-verify",
            );
            root.join("target/sigstore-verify/release/sigstore-verify")
        })
        .clone()
}

/// `sigstore-verify IMAGE_REF --key PUB`: sigstore-rs checks the image's cosign signatures
/// (exit 0, one line per valid signature; exit 1, one line, when none is valid).
pub fn sigstore_verify(image_ref: &str, public: &Path) -> Output {
    Command::new(sigstore_verify_bin())
        .args([image_ref, "--key"])
        .arg(public)
        .output()
        .expect("cannot run sigstore-verify")
}

/// `sigstore-verify --key-pair KEY PUB`: sigstore-rs opens a cosign private key file with
/// `passphrase` and compares its public key with `public`.
pub fn sigstore_key_pair(key: &Path, public: &Path, passphrase: &str) -> Output {
    Command::new(sigstore_verify_bin())
        .arg("--key-pair")
        .args([key, public])
        .env("COSIGN_PASSWORD", passphrase)
        .output()
        .expect("cannot run sigstore-verify")
}

/// How tests/tools/dsse_sign.py makes an envelope.
#[derive(Clone, Copy)]
pub enum DsseSigner {
    /// securesystemslib's `Envelope.sign`.
    Securesystemslib,
    /// The PAE and envelope written from the DSSE spec, with `cryptography` only.
    ByHand,
}

/// A DSSE envelope of `statement` (a file) signed with a cosign key; its bytes.
pub fn dsse_sign(statement: &Path, key: &Path, passphrase: &str, signer: DsseSigner) -> Vec<u8> {
    let mut cmd = python_tool("dsse_sign.py", passphrase);
    cmd.arg(statement).arg(key);
    if let DsseSigner::ByHand = signer {
        cmd.arg("--by-hand");
    }
    run_ok(&mut cmd, "dsse_sign.py").stdout
}

/// `dsse_sign`, also attached as cosign attests to `repo@digest` (the `.att` tag) in the
/// plain-HTTP registry on `registry_port`.
pub fn dsse_attach(
    registry_port: u16,
    (repo, digest): (&str, &str),
    statement: &Path,
    key: &Path,
    passphrase: &str,
) {
    run_ok(
        python_tool("dsse_sign.py", passphrase)
            .arg(statement)
            .arg(key)
            .args([
                "--attach",
                &format!("127.0.0.1:{registry_port}"),
                repo,
                digest,
            ]),
        "dsse_sign.py --attach",
    );
}

/// securesystemslib verifies a DSSE envelope file with `public` (exit 0 printing the
/// statement; exit 1, one line).
pub fn dsse_verify(envelope_path: &Path, public: &Path) -> Output {
    python_tool("dsse_verify.py", "")
        .arg(envelope_path)
        .arg(public)
        .output()
        .expect("cannot run dsse_verify.py")
}

/// The same for every envelope of `repo@digest`'s attestation tag in the plain-HTTP registry
/// on `registry_port` (exit 0 printing the statements as a JSON list).
pub fn dsse_from_registry(registry_port: u16, repo: &str, digest: &str, public: &Path) -> Output {
    python_tool("dsse_verify.py", "")
        .args([
            "--from-registry",
            &format!("127.0.0.1:{registry_port}"),
            repo,
            digest,
        ])
        .arg(public)
        .output()
        .expect("cannot run dsse_verify.py")
}

/// Writes into `dir` a containers/image signature policy requiring, for the docker transport
/// at `registry_host`, a sigstore signature by `public` for the image's own repository
/// (`policy.json`, `sigstoreSigned`, `matchRepository`), and a `registries.d/` saying the
/// registry keeps sigstore signatures as attachments (`use-sigstore-attachments`). Other
/// transports (the copy's destination) accept anything.
pub fn sigstore_policy(dir: &Path, registry_host: &str, public: &Path) -> PathBuf {
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                registry_host: [{
                    "type": "sigstoreSigned",
                    "keyPath": public,
                    "signedIdentity": {"type": "matchRepository"},
                }]
            },
            "dir": {"": [{"type": "insecureAcceptAnything"}]},
            "oci": {"": [{"type": "insecureAcceptAnything"}]},
        }
    });
    std::fs::write(dir.join("policy.json"), policy.to_string()).unwrap();
    let registries_d = dir.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("test-registry.yaml"),
        format!("docker:\n  {registry_host}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    dir.to_owned()
}

/// `skopeo copy` of `image` (plain HTTP) into a `dir:` under `policy_dir`, under the policy
/// `sigstore_policy` wrote there.
pub fn skopeo_copy_with_policy(image: &str, policy_dir: &Path) -> Output {
    require("skopeo");
    Command::new("skopeo")
        .arg("--policy")
        .arg(policy_dir.join("policy.json"))
        .arg("--registries.d")
        .arg(policy_dir.join("registries.d"))
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", policy_dir.join("copy").display()))
        .output()
        .expect("cannot run skopeo")
}

/// A key pair made by `nixpush key generate` in `dir` (`nixpush.key`, encrypted with
/// `passphrase`, and `nixpush.pub`), and the passphrase file it was given.
pub fn nixpush_keypair(dir: &Path, passphrase: &str) -> (PathBuf, PathBuf, PathBuf) {
    let pass = dir.join("nixpush.pass");
    std::fs::write(&pass, format!("{passphrase}\n")).unwrap();
    let prefix = dir.join("nixpush");
    let run = super::Nixpush::new().run(&[
        "key",
        "generate",
        prefix.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    run.assert_ok();
    (dir.join("nixpush.key"), dir.join("nixpush.pub"), pass)
}
