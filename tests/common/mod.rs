//! The test bed shared by the end-to-end tests: real Nix (single-user, offline, the repository's
//! own nix.conf), a real `docker-registry` on a free loopback port per test, and the real clients
//! (skopeo, umoci, podman, the Python tarfile oracle) to check what nixpush produced.
//!
//! A missing tool fails the test with a message saying to run `make setup`: nothing is skipped.

#![allow(dead_code)] // each test binary uses a different part of the bed

pub mod binary_cache;
pub mod front;
pub mod quirks;
pub mod seeded;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh registry may take to answer `/v2/`.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(15);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails the test, clearly, when a tool of the test bed is missing.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: run `make setup` (the tests never skip a missing tool)"
    );
}

/// Points a command at the offline single-user Nix configuration of the repository.
pub fn nix_env(cmd: &mut Command) -> &mut Command {
    cmd.env("NIX_REMOTE", "local")
        .env("NIX_CONF_DIR", repo_root().join("fixtures"))
}

/// `path:` flake reference of a fixture attribute (`path:` needs no `git add`).
pub fn fixture(flake: &str, attr: &str) -> String {
    format!("path:{}/fixtures/{flake}#{attr}", repo_root().display())
}

pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds an installable with nix and returns its outputs.
pub fn nix_build(installable: &str) -> Vec<PathBuf> {
    require("nix");
    let out = run_ok(
        nix_env(Command::new("nix").args(["build", "--no-link", "--json", installable])),
        "nix build",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["outputs"].as_object().unwrap().values())
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect()
}

/// The closure of `paths` as nix reports it.
pub fn nix_closure(paths: &[PathBuf]) -> Vec<PathBuf> {
    let out = run_ok(
        nix_env(
            Command::new("nix")
                .args(["path-info", "--recursive"])
                .args(paths),
        ),
        "nix path-info",
    );
    let mut v: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    v.sort();
    v
}

/// The diff_id the Python tarfile oracle gives for a layer of `paths`; `owner` holds its
/// ownership flags (`--mtime N --uid N --gid N --uname S --gname S`), empty for the defaults.
pub fn oracle_diff_id(paths: &[PathBuf], owner: &[&str]) -> String {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/layer_tar.py"))
            .args(owner)
            .args(paths),
        "the tar oracle",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The conf.json of a dockerTools-shaped fixture attribute, built and parsed.
pub fn fixture_conf(attr: &str) -> serde_json::Value {
    read_json(&fixture_conf_path(attr))
}

/// The store path of that conf.json.
pub fn fixture_conf_path(attr: &str) -> PathBuf {
    nix_build(&format!("{}.conf", fixture("demo", attr))).remove(0)
}

/// The config digest (image ID) nixpkgs' stream script gives the image a conf.json describes,
/// as the Python oracle (tests/oracle/nixpkgs_config.py) derives it from nixpkgs' rules.
pub fn oracle_config_digest(conf: &Path) -> String {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/nixpkgs_config.py"))
            .arg(conf),
        "the config oracle",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// What an image archive holds, read by Python's tarfile (tests/oracle/archive_facts.py):
/// `image_id`, `layer_digests`, `diff_ids`, `repo_tags`.
pub fn archive_facts(archive: &Path) -> serde_json::Value {
    require("python3");
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/archive_facts.py"))
            .arg(archive),
        "the archive reader",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Options of a test registry.
#[derive(Default)]
pub struct RegistryConfig {
    /// Require basic auth with this user and password (htpasswd, bcrypt).
    pub htpasswd: Option<(String, String)>,
    /// Refuse every write (distribution's read-only maintenance mode).
    pub read_only: bool,
    /// Serve HTTPS with a certificate for 127.0.0.1 from a fresh private CA (trusted by nobody).
    pub tls: bool,
    /// With `tls`: require a client certificate signed by that CA (mutual TLS); one is made
    /// for the test (`Registry::client_certificate`).
    pub client_certs: bool,
    /// Serve HTTPS with this certificate and key (PEM files) instead: a self-signed one the
    /// test made. `Registry::certificate` is then this certificate.
    pub server_cert: Option<(PathBuf, PathBuf)>,
    /// Require bearer tokens from this token server (distribution's `auth: token`).
    pub token: Option<TokenAuth>,
}

/// distribution's `auth: token` section: tokens are asked for at `realm` and must be signed by
/// a certificate in `rootcertbundle`, with `iss` = `issuer` and `aud` = `service`.
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub rootcertbundle: PathBuf,
}

/// A `docker-registry` of its own on a free loopback port, stopped when dropped.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    tls: bool,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(RegistryConfig::default())
    }

    pub fn start_with(config: RegistryConfig) -> Registry {
        require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display(),
            config.read_only
        );
        if let Some((cert, key)) = &config.server_cert {
            std::fs::copy(cert, dir.path().join("ca.pem")).unwrap();
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        } else if config.tls {
            // A private CA and a server certificate for 127.0.0.1 signed by it (webpki refuses
            // a CA certificate used as the server's own).
            require("openssl");
            let d = dir.path();
            let openssl = |args: &[&str]| {
                run_ok(
                    Command::new("openssl")
                        .current_dir(d)
                        .args(args)
                        .stderr(Stdio::null()),
                    "openssl",
                );
            };
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=nixpush test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ]);
            // A certificate for `subject`, with `extensions`, signed by the CA: its key in
            // `key`, itself in `cert` (`name` names the request's scratch files).
            let issue = |name: &str, subject: &str, extensions: &str, key: &str, cert: &str| {
                let (ext, csr) = (format!("{name}.ext"), format!("{name}.csr"));
                std::fs::write(d.join(&ext), extensions).unwrap();
                openssl(&[
                    "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", key,
                    "-out", &csr,
                ]);
                openssl(&[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                    "-out",
                    cert,
                ]);
            };
            issue(
                "server",
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
                "key.pem",
                "cert.pem",
            );
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("cert.pem").display(),
                d.join("key.pem").display()
            ));
            if config.client_certs {
                issue(
                    "client",
                    "/CN=nixpush test client",
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
                    "client.key",
                    "client.pem",
                );
                yaml.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    d.join("ca.pem").display()
                ));
            }
        }
        if let Some((user, pass)) = &config.htpasswd {
            require("htpasswd");
            let out = run_ok(
                Command::new("htpasswd").args(["-Bbn", user, pass]),
                "htpasswd",
            );
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: nixpush-test\n    path: {}\n",
                file.display()
            ));
        }
        if let Some(t) = &config.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start docker-registry");
        let mut registry = Registry {
            child,
            port,
            dir,
            tls: config.tls || config.server_cert.is_some(),
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            // Our own registry must say it listens on this port: another test's registry could
            // answer on a port that was free when it was picked.
            let listening = format!("listening on 127.0.0.1:{}", self.port);
            if self.log().contains(&listening)
                && http_status(self.port, "GET", "/v2/", None).is_some()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer in time:\n{}", self.log());
    }

    /// The certificate of the private CA that signed a TLS registry's certificate (PEM), or
    /// the `server_cert` it serves.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate and key a `client_certs` registry accepts (PEM).
    pub fn client_certificate(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("client.pem"),
            self.dir.path().join("client.key"),
        )
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of requests with `method` whose path contains `path_part`.
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        let needle = format!("\"{method} ");
        self.log()
            .lines()
            .filter(|l| l.contains(&needle))
            .filter(|l| {
                l.split(&needle)
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .is_some_and(|path| path.contains(path_part))
            })
            .count()
    }

    /// Upload sessions whose partial data the registry's storage still holds: an upload
    /// folder under a repository's `_uploads` with its `data`. (docker-registry 2.8 recreates a
    /// small `hashstates` file in the folder of a session it has just deleted; that holds no
    /// data, and is not counted.)
    pub fn partial_uploads(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                if path.file_name().is_some_and(|n| n == "_uploads") {
                    out.extend(
                        std::fs::read_dir(&path)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|e| e.path().join("data"))
                            .filter(|data| data.exists()),
                    );
                } else {
                    walk(&path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir.path().join("data"), &mut out);
        out
    }

    /// Blob uploads started so far (one POST to blobs/uploads/ per upload).
    pub fn uploads_started(&self) -> usize {
        self.requests("POST", "/blobs/uploads/")
    }

    /// Status of `HEAD /v2/<repo>/manifests/<reference>`, with basic auth if given.
    pub fn manifest_status(&self, repo: &str, reference: &str, auth: Option<(&str, &str)>) -> u16 {
        if self.tls {
            return self.manifest_status_tls(repo, reference, auth);
        }
        http_status(
            self.port,
            "HEAD",
            &format!("/v2/{repo}/manifests/{reference}"),
            auth,
        )
        .expect("the registry answers")
    }
}

impl Registry {
    /// `manifest_status` over TLS, trusting the registry's own CA, with curl.
    fn manifest_status_tls(&self, repo: &str, reference: &str, auth: Option<(&str, &str)>) -> u16 {
        require("curl");
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--head", "--output", "/dev/null"])
            .args(["--write-out", "%{http_code}", "--cacert"])
            .arg(self.certificate())
            .args([
                "--header",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ]);
        if let Some((u, p)) = auth {
            cmd.arg("--user").arg(format!("{u}:{p}"));
        }
        cmd.arg(format!(
            "https://{}/v2/{repo}/manifests/{reference}",
            self.host()
        ));
        let out = cmd.output().expect("curl runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("curl prints the status")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 request; the status code, or None if nothing answered.
fn http_status(port: u16, method: &str, path: &str, auth: Option<(&str, &str)>) -> Option<u16> {
    use base64::Engine as _;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n"
    );
    if let Some((u, p)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

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

/// The JSON the layer checker prints for a gzip layer blob: diff_id, expected, paths.
pub fn check_layer(blob: &Path) -> serde_json::Value {
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/oracle/check_layer.py"))
            .arg(blob),
        "the layer checker",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A TCP proxy in front of a registry that breaks one request on purpose: the first time the
/// client sends `needle` (a request line prefix such as `PATCH /v2/`), it forwards `budget` more
/// bytes and then cuts both connections, as a dropped network or a crashed frontend would.
/// Everything else passes through unchanged.
pub struct FaultProxy {
    pub port: u16,
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub fn start(target_port: u16, needle: &'static [u8], budget: usize) -> FaultProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tripped = Arc::new(AtomicBool::new(false));
        let flag = tripped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let flag = flag.clone();
                std::thread::spawn(move || {
                    proxy_connection(client, target_port, needle, budget, &flag)
                });
            }
        });
        FaultProxy { port, tripped }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the fault has happened.
    pub fn tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn proxy_connection(
    mut client: TcpStream,
    target_port: u16,
    needle: &[u8],
    budget: usize,
    tripped: &std::sync::atomic::AtomicBool,
) {
    use std::net::Shutdown;
    use std::sync::atomic::Ordering;
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target_port)) else {
        return;
    };
    let (mut back_from, mut back_to) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Both);
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut remaining: Option<usize> = None;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut forward = n;
        if remaining.is_none() && !tripped.load(Ordering::SeqCst) {
            let mut window = carry.clone();
            window.extend_from_slice(chunk);
            if let Some(at) = window.windows(needle.len()).position(|w| w == needle) {
                if !tripped.swap(true, Ordering::SeqCst) {
                    let start_in_chunk = at.saturating_sub(carry.len());
                    let extra = budget.min(n - start_in_chunk);
                    forward = start_in_chunk + extra;
                    remaining = Some(budget - extra);
                }
            }
            let keep = needle.len().saturating_sub(1).min(window.len());
            carry = window[window.len() - keep..].to_vec();
        } else if let Some(left) = remaining {
            forward = left.min(n);
            remaining = Some(left - forward);
        }
        if upstream.write_all(&chunk[..forward]).is_err() {
            break;
        }
        if remaining == Some(0) {
            let _ = upstream.shutdown(Shutdown::Both);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
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
        self.manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| {
                let check = check_layer(&oci_blob(&self.layout, layer["digest"].as_str().unwrap()));
                if !check["expected"].is_null() {
                    assert_eq!(
                        check["diff_id"], check["expected"],
                        "layer bytes differ from the oracle: {check}"
                    );
                }
                check
            })
            .collect()
    }

    /// `umoci unpack` into a directory next to the layout; returns the root filesystem.
    pub fn unpack(&self) -> PathBuf {
        umoci_unpack(&self.layout, "copy", &self.layout.with_file_name("bundle"))
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
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

/// Runs `image` with podman (runc, fixtures/containers.conf): `options` go before the image,
/// `args` after it. Returns stdout, failing the test if podman fails; removes the image after.
pub fn podman_run(image: &str, options: &[&str], args: &[&str]) -> String {
    require("runc");
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

/// Starts `cmd`, a test server that prints the port it listens on as the first line of its
/// standard output, and returns it with that port.
pub fn spawn_listening(cmd: &mut Command, what: &str) -> (Child, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} printed {line:?}, not its port"));
    (child, port)
}
