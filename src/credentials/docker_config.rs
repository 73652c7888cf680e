//! Credentials stored by `docker login` in Docker's `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker`), and by `podman login` in its `auth.json` (same format): the `auths` entries, as
//! `auth` (base64 `user:password`) or `username`/`password`; else the credential helper the file
//! names for the registry (`credHelpers`) or for all (`credsStore`), run as
//! `docker-credential-<name> get`. Docker Hub is also looked up under its legacy key
//! `https://index.docker.io/v1/`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::reference::DOCKER_HUB;
use crate::registry::{Credentials, Secret};

/// Where Docker keeps its client configuration.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Why Docker's config could not be used. No variant holds any part of the file's content:
/// serde_json quotes the offending value in its messages, and that value may be a password.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a Docker config at line {line}, column {column}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("the \"auth\" of {key:?} in {} is not base64 of user:password", path.display())]
    BadAuth { path: PathBuf, key: String },
    #[error("credential helper docker-credential-{helper} failed: {reason}")]
    Helper { helper: String, reason: String },
    #[error("credential helper docker-credential-{helper} did not answer within {seconds} s (stopped; NIXPUSH_CREDENTIAL_HELPER_TIMEOUT sets the limit)")]
    HelperTimeout { helper: String, seconds: f64 },
}

impl DockerConfigError {
    /// Whether the error is a credential helper's: the place the user said this registry's
    /// credentials are could not give them, so going on without them would mislead.
    pub fn is_helper(&self) -> bool {
        matches!(
            self,
            DockerConfigError::Helper { .. } | DockerConfigError::HelperTimeout { .. }
        )
    }
}

/// How long a credential helper may take to answer unless `NIXPUSH_CREDENTIAL_HELPER_TIMEOUT`
/// (seconds) says otherwise: long enough for a helper that asks a keychain or a cloud's
/// metadata service, short enough that a hung one fails the push rather than hanging it.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest limit `NIXPUSH_CREDENTIAL_HELPER_TIMEOUT` may set.
const MAX_HELPER_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// How often a running helper is checked on.
const HELPER_POLL: Duration = Duration::from_millis(10);
/// Most bytes of a helper's answer read: credentials are small.
const MAX_HELPER_ANSWER: u64 = 1024 * 1024;

/// Stops a helper and everything it started (its process group), and reaps it.
fn stop_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the helper leads; it
        // touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The helper time limit in force.
fn helper_timeout() -> Duration {
    std::env::var("NIXPUSH_CREDENTIAL_HELPER_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        // A day at most: a limit past that is no limit, and too large a one would overflow.
        .map(|s| Duration::from_secs_f64(s.min(MAX_HELPER_TIMEOUT.as_secs_f64())))
        .unwrap_or(HELPER_TIMEOUT)
}

/// Credentials for `registry` in the config file at `path`, if it has any. A missing file is
/// no credentials; an unreadable or malformed one is an error worth telling.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, DockerConfigError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DockerConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
        #[serde(default, rename = "credHelpers")]
        cred_helpers: std::collections::BTreeMap<String, String>,
        #[serde(default, rename = "credsStore")]
        creds_store: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
        identitytoken: Option<String>,
    }
    let config: Config =
        serde_json::from_slice(&text).map_err(|e| DockerConfigError::Malformed {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
        })?;
    let mut keys = vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == DOCKER_HUB {
        keys.push("https://index.docker.io/v1/".to_owned());
        keys.push("index.docker.io".to_owned());
    }
    let entry = config.auths.iter().find(|(k, _)| {
        let k = k.trim_end_matches('/');
        keys.iter()
            .any(|want| want == k || format!("{want}/v1") == k || format!("{want}/v2") == k)
            || (registry == DOCKER_HUB && k == "https://index.docker.io/v1")
    });
    let helper = config
        .cred_helpers
        .get(registry)
        .or(config.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    let Some((key, entry)) = entry
        .filter(|(_, e)| e.auth.is_some() || e.username.is_some() || e.identitytoken.is_some())
    else {
        return match helper {
            Some(helper) => from_helper(helper, &server_url(registry)),
            None => Ok(None),
        };
    };
    // `docker login` to a registry that hands out refresh tokens stores one here; it wins.
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::identity_token(token)));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || DockerConfigError::BadAuth {
            path: path.to_owned(),
            key: key.clone(),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(bad)?;
        let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: Secret::new(pass),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            password: Secret::new(p.clone()),
        })),
        _ => Ok(None),
    }
}

/// What Docker hands a credential helper for a registry.
fn server_url(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// `docker-credential-<helper> get`, server URL on stdin, `{"Username","Secret"}` on stdout.
/// A helper that knows no credentials for the server answers with an error: that is none.
fn from_helper(helper: &str, server: &str) -> Result<Option<Credentials>, DockerConfigError> {
    use std::io::{Read, Write};
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| DockerConfigError::Helper {
        helper: helper.to_owned(),
        reason,
    };
    // In a process group of its own, so a helper that is a script starting other programs is
    // stopped whole at the deadline.
    let mut command = std::process::Command::new(&program);
    command.process_group(0);
    // Ctrl-C does not reach it (a process group of its own): it dies with nixpush instead.
    crate::child::dies_with_us(&mut command);
    let mut child = command
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    // Read on a thread of its own, so a helper that never ends (waiting on a prompt no one
    // sees, a hung keychain) is killed at the deadline instead of hanging the push.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sent, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout
            .by_ref()
            .take(MAX_HELPER_ANSWER)
            .read_to_end(&mut out);
        let _ = sent.send(out);
    });
    let timeout = helper_timeout();
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                stop_group(&mut child);
                return Err(DockerConfigError::HelperTimeout {
                    helper: helper.to_owned(),
                    seconds: timeout.as_secs_f64(),
                });
            }
            None => std::thread::sleep(HELPER_POLL),
        }
    };
    if !status.success() {
        return Ok(None);
    }
    // The helper has exited; what it printed is all there (a child it left behind holding the
    // pipe open gets until the deadline).
    let out = answer
        .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    // Never quote the answer in an error: it holds the secret.
    let answer: Answer = serde_json::from_slice(&out)
        .map_err(|_| fail("its answer is not the JSON credential helpers print".to_owned()))?;
    // An identity token comes as the user `<token>` (Azure's helper does this).
    Ok(Some(Credentials {
        username: answer.username,
        password: Secret::new(answer.secret),
    }))
}

/// Podman's auth files, in the order podman reads them.
pub fn podman_auth_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        paths.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        paths.push(PathBuf::from(dir).join("containers/auth.json"));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), json).unwrap();
        f
    }

    #[test]
    fn finds_auth_by_host_and_scheme_prefixed_keys() {
        // "dTpw" is base64 of "u:p".
        let f = config(
            r#"{"auths":{"https://ghcr.io":{"auth":"dTpw"},"r.io:5000":{"username":"a","password":"b"}}}"#,
        );
        let c = lookup(f.path(), "ghcr.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "p"));
        let c = lookup(f.path(), "r.io:5000").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("a", "b"));
        assert!(lookup(f.path(), "quay.io").unwrap().is_none());
    }

    #[test]
    fn an_identity_token_wins_over_auth_and_is_marked_as_one() {
        let f = config(r#"{"auths":{"r.io":{"auth":"dTpw","identitytoken":"refresh-me"}}}"#);
        let c = lookup(f.path(), "r.io").unwrap().unwrap();
        assert!(c.is_identity_token());
        assert_eq!(c.password.expose(), "refresh-me");
        assert!(!format!("{c:?}").contains("refresh-me"));
        let f = config(r#"{"auths":{"r.io":{"auth":"dTpw","identitytoken":""}}}"#);
        assert!(!lookup(f.path(), "r.io")
            .unwrap()
            .unwrap()
            .is_identity_token());
    }

    #[test]
    fn docker_hub_uses_the_legacy_key() {
        let f = config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#);
        assert!(lookup(f.path(), "docker.io").unwrap().is_some());
    }

    #[test]
    fn a_malformed_config_never_quotes_its_content() {
        // A string where an object belongs: serde_json would quote it; it is a secret here.
        let f = config(r#"{"auths":{"r.io":"dXNlcjpodW50ZXIy"}}"#);
        let e = lookup(f.path(), "r.io").unwrap_err().to_string();
        assert!(
            !e.contains("dXNlcjpodW50ZXIy") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(e.contains("line 1"), "{e}");
        let f = config(r#"{"auths":{"r.io":{"username":"u","password":12345678}}}"#);
        let e = lookup(f.path(), "r.io").unwrap_err().to_string();
        assert!(!e.contains("12345678"), "{e}");
    }

    #[test]
    fn missing_file_is_none_and_malformed_is_an_error_without_secrets() {
        assert!(lookup(Path::new("/nonexistent/config.json"), "x")
            .unwrap()
            .is_none());
        let f = config("{not json");
        assert!(lookup(f.path(), "x").is_err());
        let f = config(r#"{"auths":{"x":{"auth":"!!!secret!!!"}}}"#);
        let e = lookup(f.path(), "x").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
