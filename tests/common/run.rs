//! Running the nixpush binary as a user would (an isolated layer cache and Docker config, the
//! offline Nix), and asserting on what a run did: its exit code, its output, its one-line error.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::bed::{nix_env, require};

/// nixpush with an isolated layer cache and Docker config, run against the offline Nix.
pub struct Nixpush {
    pub cache: tempfile::TempDir,
    pub docker_config: tempfile::TempDir,
}

/// What one run of nixpush did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last line of stderr: nixpush's own one-line error.
    pub fn error_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }

    pub fn assert_ok(&self) -> &str {
        assert_eq!(self.code, 0, "nixpush failed:\n{}", self.stderr);
        self.stdout.trim()
    }
}

impl Nixpush {
    pub fn new() -> Nixpush {
        require("nix");
        Nixpush {
            cache: tempfile::tempdir().unwrap(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a Docker config.json with basic credentials for `registry`.
    pub fn login(&self, registry: &str, user: &str, password: &str) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let json = format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#);
        std::fs::write(self.docker_config.path().join("config.json"), json).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixpush"));
        nix_env(&mut cmd)
            .args(args)
            .env("NIXPUSH_CACHE_DIR", self.cache.path())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// `run` with more environment, and `stdin` as standard input when given (else none).
    pub fn run_with(&self, args: &[&str], env: &[(&str, String)], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("cannot run nixpush");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        Run::from_output(child.wait_with_output().unwrap())
    }
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Waits a moment for the process whose pid `pid_file` holds to be gone (killed, then reaped
/// by whoever is its parent now), and fails the test if it is not.
pub fn assert_process_ends(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while proc_dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !proc_dir.exists(),
        "pid {} (from {}) is still running",
        pid.trim(),
        pid_file.display()
    );
}

/// A refusal: exit code `code`, nothing on stdout, and nixpush's own one-line error last on
/// stderr (after what nix said), mentioning each of `needles`.
pub fn assert_refused(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout on failure: {:?}",
        run.stdout
    );
    let line = run.error_line();
    assert!(line.starts_with("nixpush: error: "), "last line: {line:?}");
    for n in needles {
        assert!(line.contains(n), "{line:?} should mention {n:?}");
    }
}

/// The password the tests that look for leaks give nixpush: it must never be printed.
pub const SECRET_PASSWORD: &str = "s3cr3t-PASSWORD-xyz";

/// Fails the test if any of `secrets` (or the Basic form of `user` with the first) shows in what
/// nixpush printed.
pub fn assert_no_secret(run: &Run, user: &str, secrets: &[&str]) {
    use base64::Engine as _;
    let mut needles: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    if let Some(first) = secrets.first() {
        needles.push(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{first}")));
    }
    for needle in &needles {
        for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(needle.as_str()),
                "a secret was printed on {name}:\n{text}"
            );
        }
    }
}
