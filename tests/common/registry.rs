//! A real `docker-registry` (CNCF distribution) of its own for each test, on a free loopback
//! port, with the options a test asks for (basic auth, TLS, client certificates, bearer tokens,
//! read-only), and what tests read back from it: its access log, its storage, a manifest's status.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bed::{free_port, require, run_ok};

/// How long a fresh registry may take to answer `/v2/`.
const REGISTRY_START_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Keep blobs in this S3 bucket instead of the filesystem, with redirects on: a blob `GET`
    /// is answered `307` to a pre-signed URL of the storage host.
    pub s3: Option<S3Storage>,
}

/// distribution's `s3` storage driver: `bucket` at `endpoint` (plain HTTP, path-style, as
/// SeaweedFS and MinIO on a bare host:port need), signed with this access key.
pub struct S3Storage {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
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
            "version: 0.1\nlog:\n  level: info\nstorage:\n{}  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage_driver(&config, &dir.path().join("data")),
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
        let log_path = dir.path().join("registry.log");
        let mut port = port;
        // A port free when picked may be taken before the registry binds it (other tests, other
        // processes): then it is started again on another.
        for attempt in 1.. {
            std::fs::write(&config_path, &yaml).unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("docker-registry")
                // The AWS SDK of the s3 driver cannot load a CA bundle into distribution's
                // transport, and panics when one is named; the storage host is plain HTTP.
                .env_remove("AWS_CA_BUNDLE")
                .arg("serve")
                .arg(&config_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("cannot start docker-registry");
            match wait_ready(&mut child, port, &log_path) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        dir,
                        tls: config.tls || config.server_cert.is_some(),
                    }
                }
                Err(log) if log.contains("address already in use") && attempt < 5 => {
                    let next = free_port();
                    yaml = yaml.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{next}"));
                    port = next;
                }
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not start:\n{log}");
                }
            }
        }
        unreachable!("the loop returns or panics")
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

    /// The status and body bytes of each `GET` of blob `digest`, from the access log.
    pub fn blob_gets(&self, digest: &str) -> Vec<(u16, u64)> {
        let needle = format!("/blobs/{digest} HTTP/1.1\" ");
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&needle))
            .filter_map(|l| {
                let mut rest = l.split(&needle).nth(1)?.split(' ');
                Some((rest.next()?.parse().ok()?, rest.next()?.parse().ok()?))
            })
            .collect()
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

/// The `storage:` driver section: the filesystem under `data`, or an S3 bucket with redirects.
fn storage_driver(config: &RegistryConfig, data: &Path) -> String {
    match &config.s3 {
        None => format!("  filesystem:\n    rootdirectory: {}\n", data.display()),
        // distribution 2.8 sets path-style addressing itself when `regionendpoint` is given
        // (`forcepathstyle` is the 3.x name of that); `redirect.disable: false` is its default,
        // written out because the test is about it.
        Some(s3) => format!(
            "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {}\n    regionendpoint: {}\n    bucket: {}\n    secure: false\n    v4auth: true\n    forcepathstyle: true\n  redirect:\n    disable: false\n",
            s3.access_key, s3.secret_key, s3.region, s3.endpoint, s3.bucket
        ),
    }
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

/// Waits until the registry started as `child` says it listens on `port` and answers there;
/// its log if it exited or did not answer in time.
fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> Result<(), String> {
    let log = || std::fs::read_to_string(log_path).unwrap_or_default();
    let deadline = Instant::now() + REGISTRY_START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited ({status}):\n{}", log()));
        }
        // Our own registry must say it listens on this port: another test's registry could
        // answer on a port that was free when it was picked.
        let listening = format!("listening on 127.0.0.1:{port}");
        if log().contains(&listening) && http_status(port, "GET", "/v2/", None).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no answer in time:\n{}", log()))
}
