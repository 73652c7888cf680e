//! Credentials stored by `docker login` in Docker's `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker`): the `auths` entries, as `auth` (base64 `user:password`) or `username`/`password`.
//! Docker Hub is also looked up under its legacy key `https://index.docker.io/v1/`.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::auth::{Credentials, Secret};
use crate::reference::DOCKER_HUB;

/// Where Docker keeps its client configuration.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Credentials for `registry` in the config file at `path`, if it has any. A missing file is
/// no credentials; an unreadable or malformed one is an error worth telling.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let config: Config = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
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
    let Some((key, entry)) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| {
                format!(
                    "the \"auth\" of {key:?} in {} is not base64 of user:password",
                    path.display()
                )
            })?;
        let (user, pass) = decoded.split_once(':').ok_or_else(|| {
            format!(
                "the \"auth\" of {key:?} in {} is not user:password",
                path.display()
            )
        })?;
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
    fn docker_hub_uses_the_legacy_key() {
        let f = config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#);
        assert!(lookup(f.path(), "docker.io").unwrap().is_some());
    }

    #[test]
    fn missing_file_is_none_and_malformed_is_an_error_without_secrets() {
        assert!(lookup(Path::new("/nonexistent/config.json"), "x")
            .unwrap()
            .is_none());
        let f = config("{not json");
        assert!(lookup(f.path(), "x").is_err());
        let f = config(r#"{"auths":{"x":{"auth":"!!!secret!!!"}}}"#);
        let e = lookup(f.path(), "x").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
