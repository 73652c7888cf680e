//! What a cache URL's `user:password@` becomes: the `Authorization: Basic` header for the
//! cache's own origin (its `%XX` escapes decoded, as Nix decodes them), and the URL as it may be
//! shown, without it.

use base64::Engine as _;
use reqwest::header::HeaderValue;
use reqwest::Url;

use crate::http::OriginCredential;

/// The `Authorization: Basic` of a URL's `user:password@`, for its own origin.
pub fn basic_credential(url: &Url) -> Option<OriginCredential> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let raw = format!(
        "{}:{}",
        percent_decode(url.username()),
        percent_decode(url.password().unwrap_or_default())
    );
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    Some(OriginCredential::new(
        url,
        HeaderValue::from_str(&value).ok()?,
    ))
}

/// A URL's user information with its `%XX` escapes decoded (as Nix decodes it).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cache URL as it may be shown: without what stands between `://` and `@` (a user and
/// password), even when the URL does not parse.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // A password may hold `/` (the reason such a URL does not parse): everything up to
            // the last `@` goes, whatever is taken with it.
            match rest.rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_url_is_shown_without_its_credentials() {
        assert_eq!(
            redact("https://user:s3cret@cache.example/x"),
            "https://cache.example/x"
        );
        assert_eq!(redact("https://us@er:pw@host:99"), "https://host:99");
        assert_eq!(
            redact("https://ci:ab/cd@cache.example"),
            "https://cache.example"
        );
        assert_eq!(redact("file:///srv/cache"), "file:///srv/cache");
    }
}
