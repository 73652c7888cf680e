//! The real clients that read back what nixpush pushed: skopeo (copy to an OCI layout, inspect),
//! umoci (unpack a layout), podman (pull and run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::bed::{read_json, repo_root, require, run_ok};
use super::oracles::check_layers;

/// `skopeo copy`s a pushed image into an OCI layout at `dir` under `tag`.
/// `global` are skopeo's own options (`--override-arch`), `copy` the copy's (`--src-creds`).
pub fn skopeo_to_oci(image: &str, dir: &Path, tag: &str, global: &[&str], copy: &[&str]) {
    require("skopeo");
    run_ok(
        Command::new("skopeo")
            .args(global)
            .args([
                "copy",
                "--quiet",
                // The blobs exactly as the registry holds them (skopeo would compress a plain
                // tar).
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .args(copy)
            .args([
                &format!("docker://{image}"),
                &format!("oci:{}:{tag}", dir.display()),
            ]),
        "skopeo copy",
    );
}

/// `skopeo inspect --raw` or `--config` of a pushed image, as JSON.
pub fn skopeo_inspect(image: &str, what: &str) -> serde_json::Value {
    require("skopeo");
    let out = run_ok(
        Command::new("skopeo").args([
            "inspect",
            what,
            "--tls-verify=false",
            &format!("docker://{image}"),
        ]),
        "skopeo inspect",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `umoci unpack --rootless` of `dir:tag` into `bundle`; returns the root filesystem.
pub fn umoci_unpack(dir: &Path, tag: &str, bundle: &Path) -> PathBuf {
    require("umoci");
    run_ok(
        Command::new("umoci").args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:{tag}", dir.display()),
            &bundle.display().to_string(),
        ]),
        "umoci unpack",
    );
    bundle.join("rootfs")
}

/// A blob of an OCI layout by digest.
pub fn oci_blob(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    dir.join("blobs/sha256").join(hex)
}

/// A pushed image copied back by skopeo into an OCI layout, with its manifest read.
pub struct OciCopy {
    _dir: tempfile::TempDir,
    pub layout: PathBuf,
    pub manifest_digest: String,
    pub manifest: serde_json::Value,
}

impl OciCopy {
    /// `skopeo copy docker://image oci:DIR:copy` and read the manifest it wrote.
    pub fn pull(image: &str) -> OciCopy {
        OciCopy::pull_with(image, &[], &[])
    }

    /// The same, from a registry that wants credentials (`USER:PASSWORD`).
    pub fn pull_with_creds(image: &str, creds: &str) -> OciCopy {
        OciCopy::pull_with(image, &[], &["--src-creds", creds])
    }

    /// The same, for an image of another architecture than this machine's.
    pub fn pull_platform(image: &str, arch: &str) -> OciCopy {
        OciCopy::pull_with(image, &["--override-arch", arch], &[])
    }

    fn pull_with(image: &str, global: &[&str], copy: &[&str]) -> OciCopy {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        skopeo_to_oci(image, &layout, "copy", global, copy);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let manifest = read_json(&oci_blob(&layout, &manifest_digest));
        OciCopy {
            _dir: dir,
            layout,
            manifest_digest,
            manifest,
        }
    }

    pub fn config(&self) -> serde_json::Value {
        read_json(&oci_blob(
            &self.layout,
            self.manifest["config"]["digest"].as_str().unwrap(),
        ))
    }

    /// Checks every layer blob of store paths against the oracle; returns the checker's findings
    /// for all layers in order (`expected` is null for a layer without store paths).
    pub fn checked_layers(&self) -> Vec<serde_json::Value> {
        let blobs: Vec<PathBuf> = self.manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| oci_blob(&self.layout, layer["digest"].as_str().unwrap()))
            .collect();
        let checks = check_layers(&blobs);
        assert_eq!(checks.len(), blobs.len());
        for check in &checks {
            if !check["expected"].is_null() {
                assert_eq!(
                    check["diff_id"], check["expected"],
                    "layer bytes differ from the oracle: {check}"
                );
            }
        }
        checks
    }

    /// `umoci unpack` into a directory next to the layout; returns the root filesystem.
    pub fn unpack(&self) -> PathBuf {
        umoci_unpack(&self.layout, "copy", &self.layout.with_file_name("bundle"))
    }
}

/// A podman command with the test bed's configuration (runc, fixtures/containers.conf).
pub fn podman(args: &[&str]) -> Command {
    require("podman");
    let mut cmd = Command::new("podman");
    cmd.env(
        "CONTAINERS_CONF",
        repo_root().join("fixtures/containers.conf"),
    )
    .args(args);
    cmd
}

/// A turn at podman's image store, which every test of the binary shares: one test's `rmi` of
/// an image whose layers another test is pulling at that moment leaves the pull with "layer not
/// known" (containers/storage), so the tests that pull, load or remove images take turns. A
/// test that has the turn keeps it through the helpers it calls.
pub fn podman_turn() -> PodmanTurn {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if HAS_TURN.with(|has| has.get()) {
        return PodmanTurn(None);
    }
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    HAS_TURN.with(|has| has.set(true));
    PodmanTurn(Some(turn))
}

thread_local!(static HAS_TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// Held while a test uses podman's image store (see [`podman_turn`]).
pub struct PodmanTurn(Option<std::sync::MutexGuard<'static, ()>>);

impl Drop for PodmanTurn {
    fn drop(&mut self) {
        if self.0.is_some() {
            HAS_TURN.with(|has| has.set(false));
        }
    }
}

/// Runs `image` with podman (runc, fixtures/containers.conf): `options` go before the image,
/// `args` after it. Returns stdout, failing the test if podman fails; removes the image after.
pub fn podman_run(image: &str, options: &[&str], args: &[&str]) -> String {
    require("runc");
    let _turn = podman_turn();
    let podman = |argv: Vec<&str>| podman(&argv).output().expect("cannot run podman");
    let mut argv = vec!["run", "--rm", "--tls-verify=false"];
    argv.extend(options);
    argv.push(image);
    argv.extend(args);
    let out = podman(argv);
    let _ = podman(vec!["rmi", "--force", image]);
    assert!(
        out.status.success(),
        "podman run {image} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo inspect --raw`: the manifest or index bytes exactly as the registry serves them.
pub fn skopeo_raw(image: &str) -> Vec<u8> {
    skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ])
    .stdout
}

/// The referrers fallback tag's index (`sha256-<hex>`) of the image `pinned`
/// (`host/repo@sha256:...`), read with skopeo.
pub fn fallback_referrers(pinned: &str) -> serde_json::Value {
    let (repo, digest) = pinned.split_once('@').unwrap();
    let tag = digest.replace(':', "-");
    serde_json::from_slice(&skopeo_raw(&format!("{repo}:{tag}"))).unwrap()
}

/// `skopeo inspect --format '{{.Digest}}'`: the digest the registry gives the reference.
pub fn skopeo_digest(image: &str) -> String {
    let out = skopeo_ok(&[
        "inspect",
        "--format",
        "{{.Digest}}",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs skopeo, failing the test with its stderr if it fails.
pub fn skopeo_ok(args: &[&str]) -> Output {
    require("skopeo");
    run_ok(Command::new("skopeo").args(args), "skopeo")
}
