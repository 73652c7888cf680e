//! Redirects, followed hop by hop, and credentials that go only where they were given for.
//!
//! A credential (`Authorization: Basic` or `Bearer`, a registry's or a binary cache's) is bound
//! to one origin (scheme, host and port) and is attached to a hop only when the hop's URL has
//! that origin, on every hop of a chain: a cache that redirects a NAR to object storage, which
//! redirects within itself, never hands the storage the password. (reqwest's own policy compares
//! each hop with the one before it only, so the second hop within the other origin got the
//! credentials back.) Caller headers named [`SENSITIVE`] are dropped on any hop off the first
//! URL's origin, and user information in a URL is never sent.
//!
//! A 301/302 to a `POST`, and a 303, go on as `GET` without a body (as browsers and reqwest do);
//! 307/308 keep the method and body, unless the body is a stream, which cannot be sent twice: the
//! redirect is then the answer.

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_TYPE, COOKIE, LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use reqwest::{Method, Response, StatusCode, Url};

use super::transport::{SendError, Transport};

/// Redirects followed per request (reqwest's default, stated): blob reads may be sent to object
/// storage, but a loop ends in an error.
pub const MAX_REDIRECTS: usize = 10;

/// Headers that carry credentials: never sent off the origin they were given for.
pub const SENSITIVE: [HeaderName; 3] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION];

/// An `Authorization` value and the one origin it may be sent to. Its `Debug` shows the origin
/// only.
#[derive(Clone)]
pub struct OriginCredential {
    origin: url::Origin,
    value: HeaderValue,
}

impl OriginCredential {
    /// `value` (e.g. `Basic ...`, `Bearer ...`) for `url`'s origin; marked sensitive, so that
    /// no debug output shows it.
    pub fn new(url: &Url, mut value: HeaderValue) -> OriginCredential {
        value.set_sensitive(true);
        OriginCredential {
            origin: url.origin(),
            value,
        }
    }

    /// Whether a request to `url` carries this credential.
    pub fn applies_to(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    /// The header value, for the one place that sends it.
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }
}

impl std::fmt::Debug for OriginCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OriginCredential({}, <redacted>)",
            self.origin.ascii_serialization()
        )
    }
}

/// A request body: bytes can be sent again on a 307/308; a stream cannot.
pub enum Payload {
    Empty,
    Bytes(Bytes),
    Stream(reqwest::Body),
}

/// One request, before it is sent.
pub struct Outgoing<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Payload,
    /// Attached on each hop to the credential's origin, and on no other.
    pub credential: Option<&'a OriginCredential>,
}

impl<'a> Outgoing<'a> {
    /// `method url` with no header, body or credential.
    pub fn new(method: Method, url: Url) -> Outgoing<'a> {
        Outgoing {
            method,
            url,
            headers: HeaderMap::new(),
            body: Payload::Empty,
            credential: None,
        }
    }
}

/// Where a redirect answer sends a request next: its method, URL, and whether the body goes too.
fn next_hop(method: &Method, r: &Response) -> Option<(Method, Url, bool)> {
    let (method, keeps_body) = match r.status() {
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND if *method == Method::POST => {
            (Method::GET, false)
        }
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => (method.clone(), true),
        StatusCode::SEE_OTHER if *method == Method::HEAD => (Method::HEAD, false),
        StatusCode::SEE_OTHER => (Method::GET, false),
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => (method.clone(), true),
        _ => return None,
    };
    let location = r.headers().get(LOCATION)?.to_str().ok()?;
    let mut next = r.url().join(location).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    strip_user_info(&mut next);
    Some((method, next, keeps_body))
}

fn strip_user_info(url: &mut Url) {
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

impl Transport {
    /// Sends `out`, following redirects (at most [`MAX_REDIRECTS`]); the answer is the last
    /// hop's, and its `url()` says where that was.
    pub async fn send(&self, out: Outgoing<'_>) -> Result<Response, SendError> {
        let Outgoing {
            mut method,
            mut url,
            mut headers,
            body,
            credential,
        } = out;
        strip_user_info(&mut url);
        let first_origin = url.origin();
        let (mut bytes, mut stream) = match body {
            Payload::Empty => (None, None),
            Payload::Bytes(b) => (Some(b), None),
            Payload::Stream(s) => (None, Some(s)),
        };
        let streamed = stream.is_some();
        let mut hops = 0;
        loop {
            let mut hop_headers = headers.clone();
            if url.origin() != first_origin {
                for name in &SENSITIVE {
                    hop_headers.remove(name);
                }
            }
            if let Some(c) = credential.filter(|c| c.applies_to(&url)) {
                hop_headers.insert(AUTHORIZATION, c.value().clone());
            }
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(hop_headers);
            if let Some(b) = &bytes {
                request = request.body(b.clone());
            } else if let Some(s) = stream.take() {
                request = request.body(s);
            }
            let r = request.send().await.map_err(SendError::Transport)?;
            let Some((next_method, next_url, keeps_body)) = next_hop(&method, &r) else {
                return Ok(r);
            };
            if keeps_body && streamed {
                // The stream is spent: the caller decides what to do with the redirect.
                return Ok(r);
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(SendError::TooManyRedirects);
            }
            if !keeps_body {
                bytes = None;
                for name in [
                    CONTENT_TYPE,
                    CONTENT_LENGTH,
                    CONTENT_ENCODING,
                    TRANSFER_ENCODING,
                ] {
                    headers.remove(name);
                }
            }
            (method, url) = (next_method, next_url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_server::{Reply, TestServer};
    use crate::http::{HostTls, Transport};

    /// Origin B: `/hop` redirects within B, `/end` answers.
    async fn storage() -> TestServer {
        TestServer::start(|r| match r.path() {
            "/hop" => Reply::with(307, &[("location", "/end?signed=1")], b""),
            _ => Reply::with(200, &[], b"stored"),
        })
        .await
    }

    #[tokio::test]
    async fn credentials_never_reach_another_origin_on_any_hop() {
        let b = storage().await;
        let to_b = format!("{}/hop", b.origin);
        // Origin A takes the credential, and sends its reads (and a write) on to B.
        let a = TestServer::start(move |r| match r.path() {
            "/self" => Reply::with(302, &[("location", "/nar")], b""),
            _ => Reply::with(
                if r.method == "POST" { 307 } else { 302 },
                &[("location", &to_b)],
                b"",
            ),
        })
        .await;
        let transport = Transport::new(&HostTls::default(), a.host()).unwrap();
        let credential = OriginCredential::new(
            &a.url("/"),
            HeaderValue::from_static("Basic dXNlcjpzM2NyZXQ="),
        );
        for (method, path, body) in [
            (Method::GET, "/self", Payload::Empty),
            (
                Method::POST,
                "/nar",
                Payload::Bytes(Bytes::from_static(b"form")),
            ),
        ] {
            let mut request = Outgoing::new(method, a.url(path));
            request.body = body;
            request.credential = Some(&credential);
            // A caller's own sensitive header is dropped off the first origin too.
            request
                .headers
                .insert(COOKIE, HeaderValue::from_static("session=s3cret"));
            let r = transport.send(request).await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.url().path(), "/end");
            assert_eq!(r.text().await.unwrap(), "stored");
        }
        let at_a = a.seen();
        assert_eq!(at_a.len(), 3, "{at_a:#?}");
        assert!(at_a
            .iter()
            .all(|r| r.header("authorization") == Some("Basic dXNlcjpzM2NyZXQ=")));
        let at_b = b.seen();
        assert_eq!(at_b.len(), 4, "two hops in B for each request: {at_b:#?}");
        for r in &at_b {
            assert_eq!(r.header("authorization"), None, "{r:#?}");
            assert_eq!(r.header("cookie"), None, "{r:#?}");
        }
        // The 307s of the POST kept its body, within B too.
        let posts: Vec<_> = at_b.iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 2, "{at_b:#?}");
        assert!(posts.iter().all(|r| r.body == b"form"));
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_in_an_error() {
        let looping = TestServer::start(|_| Reply::with(302, &[("location", "/again")], b"")).await;
        let transport = Transport::new(&HostTls::default(), looping.host()).unwrap();
        let sent = transport
            .send(Outgoing::new(Method::GET, looping.url("/")))
            .await;
        assert!(matches!(sent, Err(SendError::TooManyRedirects)), "{sent:?}");
        assert_eq!(looping.seen().len(), MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn a_streamed_body_is_not_sent_twice() {
        let b = storage().await;
        let to_b = format!("{}/end", b.origin);
        let a = TestServer::start(move |_| Reply::with(307, &[("location", &to_b)], b"")).await;
        let transport = Transport::new(&HostTls::default(), a.host()).unwrap();
        let mut request = Outgoing::new(Method::PATCH, a.url("/upload"));
        request.body = Payload::Stream(reqwest::Body::from("streamed"));
        let r = transport.send(request).await.unwrap();
        assert_eq!(r.status(), 307);
        assert!(b.seen().is_empty());
    }

    #[test]
    fn a_credential_goes_to_its_origin_only() {
        let base: Url = "https://cache.example/nix-cache/".parse().unwrap();
        let c = OriginCredential::new(&base, HeaderValue::from_static("Basic eDp5"));
        for same in [
            "https://cache.example/nar/x.nar",
            "https://cache.example:443/other",
        ] {
            assert!(c.applies_to(&same.parse().unwrap()), "{same}");
        }
        for other in [
            "http://cache.example/nar/x.nar",
            "https://cache.example:8443/nar",
            "https://storage.example/nar",
            "https://sub.cache.example/nar",
        ] {
            assert!(!c.applies_to(&other.parse().unwrap()), "{other}");
        }
        let shown = format!("{c:?}");
        assert!(!shown.contains("eDp5"), "{shown}");
        assert!(c.value().is_sensitive());
    }
}
