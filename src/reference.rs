//! Image references (`host[:port]/repo[:tag][@digest]`) and the rules that come with them: Docker
//! Hub short names, loopback detection for the HTTP fallback, and the API host to talk to.
//!
//! The grammar is distribution's (`reference/regexp.go`), written out by hand rather than taken from
//! `oci-spec`'s parser because nixpush needs two things that parser does not give: bracketed IPv6
//! hosts (`[::1]:5000/repo`) and whether a tag was written at all (the default tag depends on the
//! image, so "no tag" must not silently become `latest` here).

use std::fmt;
use std::net::IpAddr;

use crate::digest::Digest;

/// Docker Hub's canonical name, what `nginx` or `user/app` expand to.
pub const DOCKER_HUB: &str = "docker.io";
/// The tag meant when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The host Docker Hub's registry API answers on.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Distribution's limit on a repository name.
const MAX_REPOSITORY_LEN: usize = 255;
/// Distribution's limit on a tag.
const MAX_TAG_LEN: usize = 128;

/// A parsed, valid image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid reference; shown to the user as one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    input: String,
    reason: String,
}

impl Reference {
    /// Parse `input` the way `docker push` reads its argument.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        if input.contains("://") {
            return Err(fail(
                "write the registry host without a scheme, e.g. ghcr.io/org/repo",
            ));
        }
        let (name, digest) = match input.split_once('@') {
            Some((name, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|_| fail("the digest must be sha256: followed by 64 hex digits"))?;
                (name, Some(digest))
            }
            None => (input, None),
        };
        let (registry, rest) = split_registry(name);
        let (path, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(fail(
                    "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
                ));
            }
        }
        let registry = match registry {
            Some(r) => {
                if !valid_registry(r) {
                    return Err(fail("the registry host is not a valid host[:port]"));
                }
                if r == "index.docker.io" {
                    DOCKER_HUB.to_owned()
                } else {
                    r.to_owned()
                }
            }
            None => DOCKER_HUB.to_owned(),
        };
        if path.is_empty() {
            return Err(fail("the repository name is missing"));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail("the repository name must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(fail(
                "repository components are lowercase letters and digits, separated by '.', '_', '__' or '-'",
            ));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        if repository.len() > MAX_REPOSITORY_LEN {
            return Err(fail("the repository name is longer than 255 characters"));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry as written (`docker.io` for Docker Hub), used for credentials and output.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The `host[:port]` the distribution API is reached on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag written in the reference, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for when reading this image: the digest, else the tag, else
    /// [`DEFAULT_TAG`], as `docker pull` has it.
    pub fn manifest_target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// True for `localhost`, `127.0.0.0/8` and `[::1]`: hosts where an unencrypted registry is
    /// only reachable by this machine, so plain HTTP may be tried when TLS is not spoken.
    pub fn is_loopback(&self) -> bool {
        let host = host_without_port(&self.registry);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    }

    /// `registry/repository@digest`: how a pushed image is named without ambiguity.
    pub fn pinned(&self, digest: &Digest) -> String {
        format!("{}/{}@{}", self.registry, self.repository, digest)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first component is a registry if it has a `.` or `:`, is `localhost`, is a
/// bracketed IPv6 address, or has an uppercase letter (repository names cannot).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    if let Some(rest) = name.strip_prefix('[') {
        // An IPv6 host: the registry runs to the first '/' after the closing bracket.
        if let Some(close) = rest.find(']') {
            let after = &name[close + 2..];
            return match after.find('/') {
                Some(i) => (Some(&name[..close + 2 + i]), &after[i + 1..]),
                None => (Some(name), ""),
            };
        }
    }
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        return match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        };
    }
    registry.split(':').next().unwrap_or(registry)
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = if registry.starts_with('[') {
        let Some(close) = registry.find(']') else {
            return false;
        };
        let host = &registry[1..close];
        let rest = &registry[close + 1..];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match rest.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if rest.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    let host_ok = host.is_none_or(|h| !h.is_empty() && h.split('.').all(valid_host_label));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}

fn valid_host_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`: what a registry accepts as a tag.
pub fn valid_tag(tag: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(input: &str) -> (String, String, String, Option<String>) {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        (
            r.registry().to_owned(),
            r.api_host().to_owned(),
            r.repository().to_owned(),
            r.tag().map(str::to_owned),
        )
    }

    #[test]
    fn docker_hub_short_names_expand_like_docker() {
        let hub = |repo: &str, tag: Option<&str>| {
            (
                "docker.io".to_owned(),
                "registry-1.docker.io".to_owned(),
                repo.to_owned(),
                tag.map(str::to_owned),
            )
        };
        assert_eq!(parts("nginx"), hub("library/nginx", None));
        assert_eq!(parts("nginx:1.25"), hub("library/nginx", Some("1.25")));
        assert_eq!(parts("user/app"), hub("user/app", None));
        assert_eq!(parts("docker.io/app"), hub("library/app", None));
        assert_eq!(
            parts("index.docker.io/user/app:v1"),
            hub("user/app", Some("v1"))
        );
    }

    #[test]
    fn registries_with_ports_paths_and_ipv6() {
        let r = Reference::parse("127.0.0.1:5000/demo/app:v1").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "demo/app", Some("v1"))
        );
        assert!(r.is_loopback());
        let r = Reference::parse("[::1]:5000/a/b").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("[::1]:5000", "a/b", None)
        );
        assert!(r.is_loopback());
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert!(r.is_loopback());
        let r = Reference::parse("ghcr.io/styrene-lab/repo").unwrap();
        assert_eq!(
            (r.api_host(), r.repository()),
            ("ghcr.io", "styrene-lab/repo")
        );
        assert!(!r.is_loopback());
        assert!(!Reference::parse("127.example.com/x").unwrap().is_loopback());
        assert!(!Reference::parse("10.0.0.1:5000/x").unwrap().is_loopback());
        assert!(Reference::parse("127.1.2.3:80/x").unwrap().is_loopback());
    }

    #[test]
    fn digests_and_display_round_trip() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for input in [
            format!("ghcr.io/o/r@{d}"),
            format!("ghcr.io/o/r:t@{d}"),
            "localhost:5000/a__b/c-d/e.f:T_1.x-y".to_owned(),
        ] {
            assert_eq!(Reference::parse(&input).unwrap().to_string(), input);
        }
        let r = Reference::parse(&format!("ghcr.io/o/r@{d}")).unwrap();
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "https://ghcr.io/o/r",
            "ghcr.io/Org/repo",
            "ghcr.io/o/r:",
            "ghcr.io/o/r:-tag",
            "ghcr.io/o/r:tag with space",
            "ghcr.io/",
            "ghcr.io//r",
            "ghcr.io/o/r@sha256:abc",
            "ghcr.io/o/r@md5:e3b0c44298fc1c149afbf4c8996fb924",
            "ghcr.io:99999/o/r",
            "ghcr.io:/o/r",
            "-bad.io/o/r",
            "[::1/x",
            "[zz]:5000/x",
            "a/b/-c",
            "a/b_-c",
            "a/b___c",
            &format!("ghcr.io/{}", "a".repeat(256)),
            &format!("ghcr.io/o/r:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn error_names_the_input_and_the_rule() {
        let e = Reference::parse("ghcr.io/Org/repo")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"ghcr.io/Org/repo\"") && e.contains("lowercase"),
            "{e}"
        );
    }
}
