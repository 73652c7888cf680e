//! Registry authentication: credentials that never print, `WWW-Authenticate` challenges, and the
//! token exchange of the distribution token spec.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// A secret string: usable, never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A user name and password (or token used as one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// The user name Docker gives an identity token (an OAuth2 refresh token) in place of a
/// password: in config.json's `identitytoken`, and in credential helpers' answers.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// An identity token (OAuth2 refresh token), exchanged at the token realm with a POST.
    pub fn identity_token(token: impl Into<String>) -> Self {
        Credentials {
            username: IDENTITY_TOKEN_USER.to_owned(),
            password: Secret::new(token),
        }
    }

    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a registry's 401 asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value: `Basic realm="x"` or
    /// `Bearer realm="https://auth",service="registry",scope="..."`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
        })
    }
}

/// `k="v", k2=v2` with quoted values that may contain commas and escaped quotes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Secret,
    pub expires: Instant,
}

/// Tokens without `expires_in` last 60 s by the token spec; renew a little early.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(10);

impl Token {
    /// Reads a token server's answer: `token` or `access_token`, and `expires_in`.
    pub fn from_response(body: &[u8], now: Instant) -> Option<Token> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let a: Answer = serde_json::from_slice(body).ok()?;
        let value = a.token.or(a.access_token).filter(|t| !t.is_empty())?;
        let lifetime = a
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Some(Token {
            value: Secret::new(value),
            expires: now + lifetime.saturating_sub(TOKEN_RENEW_MARGIN),
        })
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Credentials {
            username: "me".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?} {:?}", Secret::new("tok"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("me"));
        assert_eq!(c.basic_header(), "Basic bWU6aHVudGVyMg==");
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="reg, \"x\"",scope="repository:a:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg, \"x\"".into()),
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None, "no realm");
        assert_eq!(Challenge::parse("Negotiate abc"), None);
    }

    #[test]
    fn reads_token_answers() {
        let now = Instant::now();
        let t = Token::from_response(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert!(t.is_fresh(now + Duration::from_secs(280)));
        assert!(!t.is_fresh(now + Duration::from_secs(295)));
        let t = Token::from_response(br#"{"access_token":"xyz"}"#, now).unwrap();
        assert_eq!(t.value.expose(), "xyz");
        assert!(Token::from_response(br#"{"token":""}"#, now).is_none());
        assert!(Token::from_response(b"<html>", now).is_none());
    }
}
