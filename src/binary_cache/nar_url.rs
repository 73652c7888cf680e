//! Where a narinfo's `URL` may point: inside the cache the narinfo came from. The field is not
//! covered by the signature, so whoever serves the narinfo could name another host, or a path
//! above the cache's base on the same host, and the cache's credentials would go there too.
//!
//! The URL is resolved the way the HTTP client resolves it (the WHATWG rules of the `url`
//! crate: `\` is `/`, tabs and newlines are dropped, `%2e` is a dot), then it must keep the
//! cache's origin and credentials and stay below the cache's base path. What other clients
//! resolve differently (backslashes, control characters, dot segments, encoded or not) and
//! what is not a relative path (`/x`, `//host/x`, `https://...`) are refused before that: Nix
//! writes none of them (`nar/<hash>.nar.xz`).

use url::Url;

/// Why a narinfo's `URL` is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NarUrlProblem {
    #[error("its URL is empty")]
    Empty,
    #[error("its URL {0:?} holds a backslash")]
    Backslash(String),
    #[error("its URL {0:?} holds a control character")]
    ControlCharacter(String),
    #[error("its URL {0:?} holds a `.` or `..` segment or an encoded `/` or `\\`")]
    DotSegment(String),
    #[error("its URL {0:?} is not a path relative to the cache")]
    NotRelative(String),
    #[error("its URL {0:?} does not resolve")]
    Unresolvable(String),
    #[error("its URL {url:?} points outside the cache (to {outside})")]
    Outside { url: String, outside: String },
}

/// The base every file of the cache at `url` is below: its URL ending in `/`, without
/// credentials, query or fragment taken into account by [`check_nar_url`]'s path rule.
pub fn cache_base(url: &str) -> Option<Url> {
    let mut base = Url::parse(url).ok()?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Some(base)
}

/// Checks that `rel`, a narinfo's `URL`, names a file below `base` (from [`cache_base`]) on
/// the same origin.
pub fn check_nar_url(base: &Url, rel: &str) -> Result<(), NarUrlProblem> {
    if rel.is_empty() {
        return Err(NarUrlProblem::Empty);
    }
    if rel.contains('\\') {
        return Err(NarUrlProblem::Backslash(rel.to_owned()));
    }
    if rel.chars().any(char::is_control) {
        return Err(NarUrlProblem::ControlCharacter(rel.to_owned()));
    }
    // Nix writes `nar/<file>`; a path from the host's root or a URL of its own is another
    // place, whatever it resolves to.
    if rel.starts_with('/') || Url::parse(rel).is_ok() {
        return Err(NarUrlProblem::NotRelative(rel.to_owned()));
    }
    let path = rel.split(['?', '#']).next().unwrap_or_default();
    if path.split('/').any(hides_a_way_out) {
        return Err(NarUrlProblem::DotSegment(rel.to_owned()));
    }
    let resolved = base
        .join(rel)
        .map_err(|_| NarUrlProblem::Unresolvable(rel.to_owned()))?;
    let same_origin = resolved.scheme() == base.scheme()
        && resolved.host() == base.host()
        && resolved.port_or_known_default() == base.port_or_known_default()
        && resolved.username() == base.username()
        && resolved.password() == base.password();
    if !same_origin || !resolved.path().starts_with(base.path()) {
        let mut shown = resolved;
        // What is shown never carries the cache's credentials.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(NarUrlProblem::Outside {
            url: rel.to_owned(),
            outside: shown.to_string(),
        });
    }
    Ok(())
}

/// `.` or `..`, with any of the dots written `%2e` (as URL parsers read it), or a segment
/// holding an encoded `/` or `\` (which some servers decode before they resolve the path).
fn hides_a_way_out(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    let decoded = lower.replace("%2e", ".");
    decoded == "." || decoded == ".." || lower.contains("%2f") || lower.contains("%5c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_nix_writes_stays_inside() {
        for (cache, rel) in [
            ("http://127.0.0.1:8080", "nar/1mnxg5agdag1lnay.nar.xz"),
            ("http://127.0.0.1:8080/", "nar/1mnxg5agdag1lnay.nar.xz"),
            ("https://u:p@cache.example/base", "nar/x.nar.zst"),
            ("https://cache.example/a/b/", "x.nar"),
            ("https://cache.example/a", "nar/x.nar?query=1"),
            ("file:///srv/cache", "nar/x.nar.bz2"),
            ("https://cache.example/a", "nar/x..y.nar"),
            ("https://cache.example/a", "nar/..x"),
        ] {
            let base = cache_base(cache).unwrap();
            assert_eq!(check_nar_url(&base, rel), Ok(()), "{cache} {rel}");
        }
    }

    #[test]
    fn every_way_out_is_refused() {
        let base = cache_base("https://alice:s3cret@cache.example:8443/cache").unwrap();
        for rel in [
            "",
            "\\\\evil.example\\nar\\x",
            "nar\\..\\..\\secret",
            "nar/..\\x",
            ".\t./secret",
            "nar/.\n./x",
            "nar/x\r",
            "nar/\u{7f}",
            "nar/\u{85}",
            "nar/%2e%2e/%2e%2e/secret/x",
            "nar/%2E%2e/x",
            "nar/.%2e/x",
            "nar/%2e./x",
            "nar/%2e/x",
            "../secret/x",
            "nar/../../secret",
            "./nar/x",
            "/secret/x",
            "//evil.example/nar/x",
            "//alice@cache.example:8443/cache/nar/x",
            "//cache.example:8443/cache/nar/x",
            "http://cache.example:8443/cache/nar/x",
            "https://evil.example/cache/nar/x",
            "https://cache.example/cache/nar/x",
            "https:/secret",
            "file:///etc/passwd",
            "nar%2f..%2f..%2fsecret",
            "nar/%2F%2e%2e",
            "nar/..%5c..%5csecret",
        ] {
            let e = check_nar_url(&base, rel).unwrap_err();
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let file = cache_base("file:///srv/cache").unwrap();
        for rel in ["/etc/passwd", "file:///etc/passwd", "%2e%2e/x", "nar\\x"] {
            assert!(check_nar_url(&file, rel).is_err(), "{rel}");
        }
    }

    #[test]
    fn each_way_out_is_named_for_what_it_is() {
        let base = cache_base("https://alice:s3cret@cache.example/cache").unwrap();
        for (rel, problem) in [
            ("nar\\x", NarUrlProblem::Backslash("nar\\x".into())),
            ("nar/\tx", NarUrlProblem::ControlCharacter("nar/\tx".into())),
            ("nar/%2e%2E", NarUrlProblem::DotSegment("nar/%2e%2E".into())),
            (
                "nar%2f..%2fx",
                NarUrlProblem::DotSegment("nar%2f..%2fx".into()),
            ),
            ("..%5Cx", NarUrlProblem::DotSegment("..%5Cx".into())),
            ("/x", NarUrlProblem::NotRelative("/x".into())),
            (
                "https://evil.example/x",
                NarUrlProblem::NotRelative("https://evil.example/x".into()),
            ),
        ] {
            assert_eq!(check_nar_url(&base, rel), Err(problem));
        }
    }
}
