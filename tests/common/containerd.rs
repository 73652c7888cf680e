//! containerd, the runtime under Kubernetes and Docker, as a client of what nixpush pushed: a
//! daemon of the test's own (its root, state and socket in a temporary directory; the CRI
//! plugin off), `ctr images pull` and `ctr run`. Stopped when the test drops it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{require, run_ok};

pub struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Containerd {
    pub fn start() -> Containerd {
        require("containerd");
        require("ctr");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{root}/containerd.sock\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start containerd");
        let containerd = Containerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd
            .ctr(&["version"])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `ctr images pull` of `image` from a plain-HTTP registry (unpacked into its snapshotter).
    pub fn pull(&self, image: &str) {
        run_ok(
            &mut self.ctr(&["images", "pull", "--plain-http", image]),
            "ctr images pull",
        );
    }

    /// `ctr run` of `image` with `command`: what it printed.
    pub fn run(&self, image: &str, command: &[&str]) -> String {
        let mut args = vec!["run", "--rm", image, "nixpush-test"];
        args.extend(command);
        let out = run_ok(&mut self.ctr(&args), "ctr run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
