//! The certs.d convention docker, podman and skopeo share: a registry's private CA is a `*.crt`
//! file in `certs.d/<host[:port]>/`, under `$XDG_CONFIG_HOME/containers` (rootless podman),
//! `/etc/containers` or `/etc/docker`. A machine set up for those tools trusts the same CAs for
//! nixpush with no flag. A client certificate for registries that ask for one (mutual TLS) is a
//! `NAME.cert` with its key `NAME.key` beside it, as docker has it.

use std::path::{Path, PathBuf};

/// The certs.d roots, most specific first.
fn roots() -> Vec<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
    config
        .map(|c| c.join("containers/certs.d"))
        .into_iter()
        .chain([
            PathBuf::from("/etc/containers/certs.d"),
            PathBuf::from("/etc/docker/certs.d"),
        ])
        .collect()
}

/// The CA files configured for `host` (`host[:port]`, as in the reference), in a stable order.
pub fn ca_files(host: &str) -> Vec<PathBuf> {
    ca_files_in(&roots(), host)
}

fn ca_files_in(roots: &[PathBuf], host: &str) -> Vec<PathBuf> {
    // A host name never holds '/' or "..": anything else cannot name a directory here.
    if host.is_empty() || host.contains('/') || host.contains("..") {
        return Vec::new();
    }
    let mut found = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root.join(host)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt") && p.is_file())
            .collect();
        files.sort();
        found.extend(files);
    }
    found
}

/// A client certificate and its private key (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The client certificate configured for `host`, if any: the first `*.cert` (by name, most
/// specific root first). A `NAME.cert` without `NAME.key` is an error, as for docker: a
/// half-configured certificate must not silently go unused.
pub fn client_certificate(host: &str) -> Result<Option<ClientCert>, MissingKey> {
    client_certificate_in(&roots(), host)
}

/// A `NAME.cert` in certs.d without its `NAME.key`.
#[derive(Debug, thiserror::Error)]
#[error("{} has no key beside it ({} is missing)", cert.display(), cert.with_extension("key").display())]
pub struct MissingKey {
    pub cert: PathBuf,
}

fn client_certificate_in(roots: &[PathBuf], host: &str) -> Result<Option<ClientCert>, MissingKey> {
    if host.is_empty() || host.contains('/') || host.contains("..") {
        return Ok(None);
    }
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root.join(host)) else {
            continue;
        };
        let mut certs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cert") && p.is_file())
            .collect();
        certs.sort();
        if let Some(cert) = certs.into_iter().next() {
            let key = cert.with_extension("key");
            if !key.is_file() {
                return Err(MissingKey { cert });
            }
            return Ok(Some(ClientCert { cert, key }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_crt_files_of_the_host_in_every_root() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let host = "registry.example:5000";
        std::fs::create_dir_all(a.path().join(host)).unwrap();
        std::fs::create_dir_all(b.path().join(host)).unwrap();
        for (dir, name) in [
            (&a, "z.crt"),
            (&a, "ca.crt"),
            (&a, "client.cert"),
            (&b, "ca.crt"),
        ] {
            std::fs::write(dir.path().join(host).join(name), "x").unwrap();
        }
        let roots = [a.path().to_owned(), b.path().to_owned()];
        let found = ca_files_in(&roots, host);
        assert_eq!(
            found,
            [
                a.path().join(host).join("ca.crt"),
                a.path().join(host).join("z.crt"),
                b.path().join(host).join("ca.crt"),
            ]
        );
        assert!(ca_files_in(&roots, "other.example").is_empty());
        assert!(ca_files_in(&roots, "../etc").is_empty());
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let a = tempfile::tempdir().unwrap();
        let host = "registry.example";
        let dir = a.path().join(host);
        std::fs::create_dir_all(&dir).unwrap();
        let roots = [a.path().to_owned()];
        assert_eq!(client_certificate_in(&roots, host).unwrap(), None);
        std::fs::write(dir.join("client.cert"), "c").unwrap();
        let e = client_certificate_in(&roots, host).unwrap_err();
        assert!(e.to_string().contains("client.key is missing"), "{e}");
        std::fs::write(dir.join("client.key"), "k").unwrap();
        assert_eq!(
            client_certificate_in(&roots, host).unwrap(),
            Some(ClientCert {
                cert: dir.join("client.cert"),
                key: dir.join("client.key"),
            })
        );
    }
}
