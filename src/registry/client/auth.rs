//! Authentication: the registry's challenge (Basic, or Bearer with a token from its realm),
//! the `Authorization` header for the registry's own origin only, a token renewed on a 401,
//! and a refusal said plainly. Token fetches are retried like any other request.

use std::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};

use super::{read_bounded, status_error, Access, Auth, Client};
use crate::http::{
    backoff, display_url, host_of, is_temporary_status, with_retries, Attempt, Budget, HttpError,
    OriginCredential, Outgoing, Payload,
};
use crate::registry::auth::{Challenge, Token};
use crate::registry::error::{explain_body, RegistryError};

impl Client {
    /// Sets up authentication for `challenge`; for bearer tokens, fetches one now so bad
    /// credentials are reported before any work.
    pub(super) async fn authenticate(
        &self,
        challenge: Challenge,
        budget: Budget,
    ) -> Result<(), RegistryError> {
        let mut auth = self.auth.lock().await;
        match challenge {
            Challenge::Basic => {
                match &self.credentials {
                    None => return Err(self.no_credentials()),
                    Some(c) if c.is_identity_token() => {
                        return Err(self.denied(
                            "the stored credentials are an identity token, which works only with token authentication, and this registry asks for a password".into(),
                        ))
                    }
                    Some(_) => {}
                }
                *auth = Auth::Basic;
            }
            Challenge::Bearer { realm, service } => {
                let token = self.fetch_token(&realm, service.as_deref(), budget).await?;
                *auth = Auth::Bearer {
                    realm,
                    service,
                    token: Some(token),
                };
            }
        }
        Ok(())
    }

    pub(super) fn no_credentials(&self) -> RegistryError {
        RegistryError::Denied {
            host: self.registry.clone(),
            user: None,
            reason: format!(
                "the registry requires credentials and none were found for {} (add them with `docker login {}` or to ~/.docker/config.json)",
                self.registry, self.registry
            ),
        }
    }

    pub(super) fn denied(&self, reason: String) -> RegistryError {
        RegistryError::Denied {
            host: self.registry.clone(),
            user: self.credentials.as_ref().map(|c| c.username.clone()),
            reason,
        }
    }

    /// The distribution token spec's exchange: GET realm?service=..&scope=repository:R:pull,push
    /// (or `:pull` for a connection that only reads).
    pub(super) async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        budget: Budget,
    ) -> Result<Token, RegistryError> {
        let mut url =
            Url::parse(realm).map_err(|_| self.protocol("the token realm is not a valid URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(self.protocol("the token realm is not an http(s) URL"));
        }
        // The destination first: some registries read only the first scope.
        let mut scopes = vec![format!(
            "repository:{}:{}",
            self.repository,
            self.access.actions()
        )];
        for source in self.mount_sources.lock().expect("not poisoned").iter() {
            scopes.push(format!("repository:{source}:pull"));
        }
        if self.credentials.is_some() {
            let realm_host_is_local = url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            });
            if url.scheme() == "http" && !realm_host_is_local {
                return Err(self.protocol(
                    "the token realm is plain HTTP on another host: refusing to send credentials there",
                ));
            }
        }
        // An identity token is an OAuth2 refresh token: POSTed as a form, never as Basic.
        let form = match &self.credentials {
            Some(c) if c.is_identity_token() => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("client_id", "nixpush")
                    .append_pair("refresh_token", c.password.expose())
                    .append_pair("scope", &scopes.join(" "));
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                Some(form.finish())
            }
            _ => {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for scope in &scopes {
                    q.append_pair("scope", scope);
                }
                None
            }
        };
        let method = match form {
            Some(_) => Method::POST,
            None => Method::GET,
        };
        // The password goes to the realm's own origin only, whatever it redirects to.
        let basic = match (&form, &self.credentials) {
            (None, Some(c)) => Some(OriginCredential::new(
                &url,
                HeaderValue::from_str(&c.basic_header()).map_err(|_| {
                    self.protocol("the credentials contain characters not allowed in a header")
                })?,
            )),
            _ => None,
        };
        let (url, form, method, basic) = (&url, &form, &method, &basic);
        // A token server that is restarting or overloaded is retried like the registry itself.
        let response = with_retries(
            budget,
            |reason| self.retrying(reason),
            async |attempt| {
                let mut request = Outgoing::new(method.clone(), url.clone());
                if let Some(form) = form {
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    );
                    request.headers = headers;
                    request.body = Payload::Bytes(form.clone().into());
                }
                request.credential = basic.as_ref();
                let Some(sent) = self.watched(self.http.send(request), None).await else {
                    return self.stalled_attempt(method, url, attempt);
                };
                self.trace(method, url, &sent);
                match sent {
                    Ok(r) if is_temporary_status(r.status()) => {
                        let reason = format!("the token server answered {}", r.status());
                        let wait = backoff(attempt, Some(r.headers()));
                        Attempt::Again {
                            last: Err(status_error(method, url, r).await),
                            wait,
                            reason: Some(reason),
                        }
                    }
                    Ok(r) => Attempt::Done(Ok(r)),
                    // A certificate the realm's host does not have will not change.
                    Err(e) if e.is_certificate_error() => Attempt::Done(Err(HttpError::Tls {
                        host: host_of(url),
                        reason: e.reason(),
                    }
                    .into())),
                    Err(e) if !e.to_http_error(method, url).is_temporary() => {
                        Attempt::Done(Err(e.to_http_error(method, url).into()))
                    }
                    Err(e) => Attempt::Again {
                        reason: Some(e.reason()),
                        last: Err(e.to_http_error(method, url).into()),
                        wait: backoff(attempt, None),
                    },
                }
            },
        )
        .await
        // Retried already: the upload step that needed a token is not retried around it.
        .map_err(RegistryError::given_up)?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let detail = read_bounded(response).await;
                return Err(match &self.credentials {
                    Some(_) => self.denied(format!(
                        "the credentials were rejected ({})",
                        explain_body(&detail)
                    )),
                    None => self.no_credentials(),
                });
            }
            _ => return Err(status_error(method, url, response).await),
        }
        let body = read_bounded(response).await;
        Token::from_response(&body, Instant::now())
            .ok_or_else(|| self.protocol("the token server's answer has no token"))
    }

    /// Makes the next token also allow pulling from `repository`, for a cross-repository mount
    /// (a token already fetched without it is dropped).
    pub(crate) async fn allow_mount_from(&self, repository: &str) {
        if repository == self.repository {
            return;
        }
        {
            let mut sources = self.mount_sources.lock().expect("not poisoned");
            if sources.iter().any(|s| s == repository) {
                return;
            }
            sources.push(repository.to_owned());
        }
        if let Auth::Bearer { token, .. } = &mut *self.auth.lock().await {
            *token = None;
        }
    }

    /// The credential of the registry's own origin, if any (a token fetched within `budget`
    /// when the last one expired). Only requests to that origin get it, on every hop: upload
    /// Locations and redirects may point at object storage.
    pub(super) async fn authorization(
        &self,
        budget: Budget,
    ) -> Result<Option<OriginCredential>, RegistryError> {
        let mut auth = self.auth.lock().await;
        let value = match &mut *auth {
            Auth::Anonymous => return Ok(None),
            Auth::Basic => match &self.credentials {
                Some(c) => c.basic_header(),
                None => return Ok(None),
            },
            Auth::Bearer {
                realm,
                service,
                token,
            } => {
                let fresh = token.as_ref().filter(|t| t.is_fresh(Instant::now()));
                let value = match fresh {
                    Some(t) => t.value.clone(),
                    None => {
                        let t = self.fetch_token(realm, service.as_deref(), budget).await?;
                        let v = t.value.clone();
                        *token = Some(t);
                        v
                    }
                };
                format!("Bearer {}", value.expose())
            }
        };
        let header = HeaderValue::from_str(&value).map_err(|_| {
            self.protocol("the credentials contain characters not allowed in a header")
        })?;
        Ok(Some(OriginCredential::new(&self.base, header)))
    }

    /// A 401 or 403 that authentication cannot fix, said plainly.
    pub(super) async fn refusal(&self, method: &Method, url: &Url, r: Response) -> RegistryError {
        let status = r.status();
        let detail = explain_body(&read_bounded(r).await);
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let what = format!("{method} {} answered {status}{detail}", display_url(url));
        match (status, &self.credentials) {
            (StatusCode::UNAUTHORIZED, None) => self.no_credentials(),
            (StatusCode::UNAUTHORIZED, Some(_)) => {
                self.denied(format!("the credentials were rejected ({what})"))
            }
            _ => self.denied(format!(
                "no permission to {} {} ({what})",
                match self.access {
                    Access::Pull => "pull from",
                    Access::PullPush => "push to",
                },
                self.repository
            )),
        }
    }

    /// After a 401: take a new challenge, or drop an expired token, so the next try re-authenticates.
    pub(super) async fn reauthenticate(
        &self,
        response: &Response,
        budget: Budget,
    ) -> Result<(), RegistryError> {
        if let Some(challenge) = challenge_of(response) {
            if matches!(challenge, Challenge::Bearer { .. }) || self.credentials.is_some() {
                return self.authenticate(challenge, budget).await;
            }
            return Err(self.no_credentials());
        }
        Err(self.denied("the registry answered 401".into()))
    }

    /// Whether a renewed authentication may fix this answer: a 401 from the registry's own
    /// origin that is not about scope (`error="insufficient_scope"`: a new token with the same
    /// scope would be refused the same way).
    pub(super) fn may_renew(&self, r: &Response) -> bool {
        r.status() == StatusCode::UNAUTHORIZED && self.is_own(r.url()) && !insufficient_scope(r)
    }

    /// Whether `url` is on the registry's own origin (scheme, host and port), the only one
    /// that gets credentials or may ask for them.
    pub(super) fn is_own(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }
}

/// Whether a 401 says the token is fine but does not allow this request
/// (`error="insufficient_scope"`, e.g. a DELETE a push token does not grant).
pub(super) fn insufficient_scope(response: &Response) -> bool {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("error=\"insufficient_scope\""))
}

pub(super) fn challenge_of(response: &Response) -> Option<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer a bearer challenge when a registry offers both.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}
