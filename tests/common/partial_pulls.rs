//! A node of a fleet: podman with a store of its own (overlay, as partial pulls need) and
//! containers/storage's partial pulls turned on, as a fleet's `storage.conf` would. Its images
//! are its own: no other test's pull or removal touches them, so it needs no turn at the shared
//! store.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{require, run_ok};

pub struct FleetNode {
    dir: tempfile::TempDir,
}

impl FleetNode {
    pub fn new() -> FleetNode {
        require("podman");
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{root}/store\"\nrunroot = \"{root}/run\"\n\
             [storage.options]\npull_options = {{enable_partial_images = \"true\", use_hard_links = \"false\", ostree_repos = \"\"}}\n",
            root = dir.path().display()
        );
        std::fs::write(dir.path().join("storage.conf"), conf).unwrap();
        FleetNode { dir }
    }

    /// The bed's podman (its containers.conf), on this node's store.
    fn podman(&self, args: &[&str]) -> Command {
        let mut cmd = super::podman(args);
        cmd.env(
            "CONTAINERS_STORAGE_CONF",
            self.dir.path().join("storage.conf"),
        );
        cmd
    }

    /// Pulls `image` (from a plain-HTTP registry).
    pub fn pull(&self, image: &str) {
        run_ok(
            &mut self.podman(&["pull", "--tls-verify=false", image]),
            "podman pull (partial pulls on)",
        );
    }

    /// Runs `image` and returns what it printed.
    pub fn run(&self, image: &str) -> String {
        let out = run_ok(
            &mut self.podman(&["run", "--rm", image]),
            "podman run (partial pulls on)",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The sha256 of every regular file below `path` in `image`'s file system, by name.
    pub fn file_digests(&self, image: &str, path: &Path) -> Vec<(String, String)> {
        let out = run_ok(
            &mut self.podman(&["image", "mount", image]),
            "podman image mount",
        );
        let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let digests = file_digests(&root.join(path.strip_prefix("/").unwrap()));
        run_ok(
            &mut self.podman(&["image", "unmount", image]),
            "podman image unmount",
        );
        digests
    }
}

impl Drop for FleetNode {
    fn drop(&mut self) {
        // Unmounts the store's layers, so its directory can go.
        let _ = self.podman(&["rmi", "--all", "--force"]).output();
        let _ = self.podman(&["system", "reset", "--force"]).output();
    }
}

/// The sha256 of every regular file below `dir`, by path relative to it, sorted.
pub fn file_digests(dir: &Path) -> Vec<(String, String)> {
    let out = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("find . -type f -print0 | sort -z | xargs -0 sha256sum")
            .current_dir(dir),
        "sha256sum of the files",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (digest, name) = l.split_once("  ").unwrap();
            (name.to_owned(), digest.to_owned())
        })
        .collect()
}
