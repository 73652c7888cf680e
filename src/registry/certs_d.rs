//! The certs.d convention docker, podman and skopeo share: a registry's private CA is a `*.crt`
//! file in `certs.d/<host[:port]>/`, under `$XDG_CONFIG_HOME/containers` (rootless podman),
//! `/etc/containers` or `/etc/docker`. A machine set up for those tools trusts the same CAs for
//! nixpush with no flag. (Client certificates, `*.cert` with `*.key`, are not read.)

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
}
