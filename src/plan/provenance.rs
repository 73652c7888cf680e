//! The image's provenance as standard manifest annotations (`org.opencontainers.image.source`,
//! `revision`, `created`, `version`), read from the flake itself: its locked revision, its
//! `lastModified` (never the wall clock), its repository and the package's `version`. The same
//! commit pushed twice gives the same annotations, and so the same manifest digest.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::format_unix;
use crate::nix::{self, as_store_path, NixError};

pub const SOURCE: &str = "org.opencontainers.image.source";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const VERSION: &str = "org.opencontainers.image.version";

/// What `nix flake metadata --json` says that matters here.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlakeMetadata {
    /// The commit, for a clean git flake (a dirty tree has none: it is no commit).
    pub revision: Option<String>,
    pub last_modified: Option<i64>,
    pub resolved_url: Option<String>,
    /// The locked flake reference (with its `rev`, or `narHash` for a path flake).
    pub url: Option<String>,
    #[serde(default)]
    pub locked: LockedRef,
    /// The flake's lock file: every input, locked.
    #[serde(default)]
    pub locks: Locks,
}

/// A locked flake reference's attributes, as Nix prints them (`locked`, a lock node's `locked`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockedRef {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub nar_hash: Option<String>,
    pub rev: Option<String>,
    pub owner: Option<String>,
    pub repo: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
}

impl LockedRef {
    /// The reference as a flake URL, where its type has one.
    pub fn to_url(&self) -> Option<String> {
        let rev = self.rev.as_deref();
        match self.kind.as_deref()? {
            t @ ("github" | "gitlab" | "sourcehut") => Some(format!(
                "{t}:{}/{}{}",
                self.owner.as_deref()?,
                self.repo.as_deref()?,
                rev.map(|r| format!("/{r}")).unwrap_or_default()
            )),
            "git" | "hg" => Some(format!(
                "{}+{}{}",
                self.kind.as_deref()?,
                self.url.as_deref()?,
                rev.map(|r| format!("?rev={r}")).unwrap_or_default()
            )),
            "tarball" | "file" => self.url.clone(),
            "path" => Some(format!("path:{}", self.path.as_deref()?)),
            _ => None,
        }
    }
}

/// A flake's lock file as `nix flake metadata --json` prints it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Locks {
    #[serde(default)]
    pub nodes: BTreeMap<String, LockNode>,
    #[serde(default)]
    pub root: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct LockNode {
    pub locked: Option<LockedRef>,
}

/// The flake reference of a flake installable (`.#docker` -> `.`); `None` for a store path.
pub fn flake_ref(installable: &str) -> Option<&str> {
    // A store path names no flake, whether it is in the local store or not (yet).
    if crate::nix::named_store_path(installable).is_some() || as_store_path(installable).is_some() {
        return None;
    }
    let flake = installable.split_once('#').map_or(installable, |(f, _)| f);
    (!flake.is_empty()).then_some(flake)
}

/// Reads the metadata of the flake `installable` comes from.
pub async fn flake_metadata(
    installable: &str,
    nix_args: &[String],
) -> Result<Option<FlakeMetadata>, NixError> {
    let Some(flake) = flake_ref(installable) else {
        return Ok(None);
    };
    let mut args = vec!["flake", "metadata", "--json", flake];
    // Only the options that change how a flake is fetched apply here; build flags do not.
    args.extend(
        nix_args
            .iter()
            .map(String::as_str)
            .filter(|a| *a == "--impure" || *a == "--offline"),
    );
    let out = nix::nix_stdout(&args).await?;
    serde_json::from_slice(&out)
        .map(Some)
        .map_err(|e| NixError::Unexpected(format!("nix flake metadata printed {e}")))
}

/// The annotations `metadata` (and the package's `version`) give; `origin` is the remote a
/// local git checkout was cloned from, if known.
pub fn annotations(
    metadata: &FlakeMetadata,
    origin: Option<&str>,
    version: Option<&str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let source = metadata
        .resolved_url
        .as_deref()
        .and_then(web_url)
        .or_else(|| origin.and_then(web_url));
    if let Some(source) = source {
        out.insert(SOURCE.to_owned(), source);
    }
    if let Some(rev) = &metadata.revision {
        out.insert(REVISION.to_owned(), rev.clone());
    }
    if let Some(t) = metadata.last_modified {
        out.insert(CREATED.to_owned(), format_unix(t));
    }
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        out.insert(VERSION.to_owned(), v.to_owned());
    }
    out
}

/// The local checkout of a `git+file://` flake, whose remote says where the source lives.
pub fn local_checkout(metadata: &FlakeMetadata) -> Option<&str> {
    let url = metadata.resolved_url.as_deref()?;
    let path = url.strip_prefix("git+file://")?;
    Some(path.split(['?', '#']).next().unwrap_or(path))
}

/// The `origin` remote of a local git checkout, if git answers.
pub async fn origin_of(checkout: &str) -> Option<String> {
    let mut git = tokio::process::Command::new("git");
    crate::child::dies_with_us(git.as_std_mut());
    let out = git
        .kill_on_drop(true)
        .args(["-C", checkout, "remote", "get-url", "origin"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !url.trim().is_empty()).then(|| url.trim().to_owned())
}

/// A browsable https URL for a flake or git remote URL, if it names a hosted repository (never
/// a local path, and never with credentials a URL may carry).
pub fn web_url(url: &str) -> Option<String> {
    let hosted = [
        ("github:", "https://github.com/"),
        ("gitlab:", "https://gitlab.com/"),
        ("sourcehut:", "https://git.sr.ht/"),
    ];
    for (prefix, base) in hosted {
        if let Some(rest) = url.strip_prefix(prefix) {
            let rest = rest.split(['?', '#']).next().unwrap_or(rest);
            let parts: Vec<&str> = rest.split('/').take(2).collect();
            if parts.len() == 2 && parts.iter().all(|p| !p.is_empty()) {
                return Some(format!("{base}{}/{}", parts[0], parts[1]));
            }
            return None;
        }
    }
    let url = url.strip_prefix("git+").unwrap_or(url);
    // scp-like `git@host:owner/repo.git`.
    let (host, path) = if let Some((user_host, path)) = url
        .split_once(':')
        .filter(|(h, p)| h.contains('@') && !h.contains('/') && !p.starts_with("//"))
    {
        (user_host.rsplit('@').next()?, path)
    } else {
        let rest = ["https://", "http://", "ssh://", "git://"]
            .iter()
            .find_map(|s| url.strip_prefix(s))?;
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        // An explicit port belongs to ssh, not to the web page.
        let host = if url.starts_with("ssh://") {
            host.split(':').next()?
        } else {
            host
        };
        (host, path)
    };
    let path = path.split(['?', '#']).next()?.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    (!host.is_empty() && !path.is_empty()).then(|| format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosted_flakes_and_remotes_become_web_urls() {
        for (url, web) in [
            (
                "github:styrene-lab/repo",
                "https://github.com/styrene-lab/repo",
            ),
            (
                "github:styrene-lab/repo/main?dir=x",
                "https://github.com/styrene-lab/repo",
            ),
            ("gitlab:g/p", "https://gitlab.com/g/p"),
            (
                "git+https://example.org/a/b.git?ref=main",
                "https://example.org/a/b",
            ),
            (
                "git@github.com:styrene-lab/repo.git",
                "https://github.com/styrene-lab/repo",
            ),
            (
                "ssh://git@example.org:2222/a/b.git",
                "https://example.org/a/b",
            ),
            (
                "https://user:secret@example.org/a/b",
                "https://example.org/a/b",
            ),
        ] {
            assert_eq!(web_url(url).as_deref(), Some(web), "{url}");
        }
        for url in [
            "path:/work/x",
            "git+file:///work/x",
            "github:only",
            "/srv/repo",
        ] {
            assert_eq!(web_url(url), None, "{url}");
        }
    }

    #[test]
    fn annotations_come_from_the_metadata_only() {
        let m = FlakeMetadata {
            revision: Some("28806d8a24553191ec26c9b0d7d85e6609ee0bab".into()),
            last_modified: Some(1_700_000_000),
            resolved_url: Some("git+file:///tmp/flk".into()),
            ..Default::default()
        };
        let a = annotations(&m, Some("git@github.com:o/r.git"), Some("1.2.3"));
        assert_eq!(a[SOURCE], "https://github.com/o/r");
        assert_eq!(a[REVISION], "28806d8a24553191ec26c9b0d7d85e6609ee0bab");
        assert_eq!(a[CREATED], "2023-11-14T22:13:20Z");
        assert_eq!(a[VERSION], "1.2.3");
        assert_eq!(local_checkout(&m), Some("/tmp/flk"));
        // A dirty tree: no revision, and no source without a remote.
        let dirty = FlakeMetadata {
            revision: None,
            last_modified: Some(1),
            resolved_url: Some("path:/x".into()),
            ..Default::default()
        };
        let a = annotations(&dirty, None, None);
        assert_eq!(a.keys().collect::<Vec<_>>(), vec![CREATED]);
    }

    #[test]
    fn flake_refs_of_installables() {
        assert_eq!(flake_ref(".#docker"), Some("."));
        assert_eq!(flake_ref("github:o/r#x"), Some("github:o/r"));
        assert_eq!(flake_ref("."), Some("."));
        assert_eq!(flake_ref("#x"), None);
    }
}
