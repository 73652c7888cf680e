//! The connection to one repository of one registry: which scheme it speaks, how it wants to be
//! authenticated, and the sending every request goes through: credentials attached to the
//! registry's own origin only, an expired token renewed once on a 401, and (`send`) a request
//! retried when it may succeed later; upload steps use `send_once`, their sequence is retried by
//! the uploader.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::sync::Mutex;

use super::auth::{Challenge, Credentials, Token};
use super::error::{display_url, explain_body, transport_reason, RegistryError};
use super::retry::{backoff, MAX_ATTEMPTS};
use super::transport::{base_url, http_client, is_certificate_error, is_not_tls, transport_error};
use crate::progress::Reporter;
use crate::reference::Reference;

mod sessions;
pub use sessions::cancel_abandoned_uploads;

/// Most bytes of an error body read before giving up on the rest.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// What a connection may do in its repository: a bearer token is asked for exactly this scope,
/// so reading an image needs no write permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read manifests and blobs (`nixpush inspect`).
    Pull,
    /// Read and write: a push reads the manifest it replaces, then uploads.
    PullPush,
}

impl Access {
    /// The actions of a token scope, `repository:<name>:<actions>`.
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::PullPush => "pull,push",
        }
    }
}

/// How to reach a registry.
#[derive(Clone)]
pub struct ConnectOptions {
    /// What the connection is for; the scope of bearer tokens.
    pub access: Access,
    /// Allow plain HTTP and unverified TLS for any host (loopback hosts may use HTTP anyway).
    pub insecure: bool,
    /// PEM file of extra CA certificates to trust (a private CA); implies HTTPS.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Credentials to use when the registry asks for them.
    pub credentials: Option<Credentials>,
    /// Told about retries.
    pub reporter: Arc<dyn Reporter>,
}

enum Auth {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        token: Option<Token>,
    },
}

/// A ready connection to `registry/repository`.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    access: Access,
    auth: Mutex<Auth>,
    /// Other repositories whose blobs may be mounted here: a token must allow pulling them.
    mount_sources: std::sync::Mutex<Vec<String>>,
    reporter: Arc<dyn Reporter>,
    /// Upload sessions open now, cancelled if the client is dropped with them open.
    uploads: sessions::OpenUploads,
}

impl Client {
    /// Finds the scheme, pings `/v2/`, and authenticates if the registry asks.
    ///
    /// Loopback hosts try HTTPS and fall back to HTTP only when the server does not speak TLS
    /// at all; a certificate error never falls back. Other hosts use HTTPS unless `insecure`.
    pub async fn connect(
        reference: &Reference,
        options: ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let host = reference.api_host();
        // `--ca-cert`, then the CAs certs.d holds for this host (as docker and podman do).
        let ca_certs: Vec<_> = options
            .ca_cert
            .iter()
            .cloned()
            .chain(super::certs_d::ca_files(host))
            .collect();
        let client_cert =
            super::certs_d::client_certificate(host).map_err(|e| RegistryError::ClientCert {
                path: e.cert.clone(),
                reason: e.to_string(),
            })?;
        let http = http_client(options.insecure, &ca_certs, client_cert.as_ref(), host)?;
        // A CA given for the registry means it speaks TLS: never fall back to plain HTTP then.
        let may_use_http = (options.insecure || reference.is_loopback()) && ca_certs.is_empty();
        let mut client = Client {
            http,
            base: base_url("https", host)?,
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
            credentials: options.credentials,
            access: options.access,
            auth: Mutex::new(Auth::Anonymous),
            mount_sources: std::sync::Mutex::new(Vec::new()),
            reporter: options.reporter,
            uploads: Default::default(),
        };
        let ping = match client.ping().await {
            Err(PingError::NotTls) if may_use_http => {
                client.base = base_url("http", host)?;
                client.ping().await
            }
            other => other,
        };
        let response = match ping {
            Ok(r) => r,
            Err(PingError::NotTls) => {
                return Err(RegistryError::Tls {
                    host: host.to_owned(),
                    reason: "the server does not speak TLS (use --insecure to allow plain HTTP)"
                        .into(),
                })
            }
            Err(PingError::Other(e)) => return Err(e),
        };
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                let challenge = challenge_of(&response).ok_or_else(|| {
                    client.protocol(
                        "GET /v2/ answered 401 without a usable WWW-Authenticate challenge",
                    )
                })?;
                client.authenticate(challenge).await?;
                // Try the credentials now, so wrong ones are reported before any work.
                let v2 = client.base.join("v2/").expect("static path");
                client.send(Method::GET, v2, HeaderMap::new(), None).await?;
            }
            s => {
                return Err(client.protocol(&format!(
                    "GET /v2/ answered {s}: this does not look like an OCI registry"
                )))
            }
        }
        Ok(client)
    }

    /// The registry as the user wrote it, for messages.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `base/v2/<repository>/<rest>`.
    pub fn url(&self, rest: &str) -> Url {
        self.url_in(&self.repository, rest)
    }

    /// `base/v2/<repository>/<rest>` for another repository of the same registry.
    pub fn url_in(&self, repository: &str, rest: &str) -> Url {
        self.base
            .join(&format!("v2/{repository}/{rest}"))
            .expect("repository and path segments are URL-safe")
    }

    pub(crate) fn protocol(&self, what: &str) -> RegistryError {
        RegistryError::Protocol {
            host: self.registry.clone(),
            what: what.to_owned(),
        }
    }

    /// A retry is worth telling: a push that is slow because of them should say why.
    fn retrying(&self, reason: &str) {
        self.reporter
            .retrying(&format!("{}: {reason}", self.registry));
    }

    async fn ping(&self) -> Result<Response, PingError> {
        let url = self.base.join("v2/").expect("static path");
        let mut attempt = 1;
        loop {
            let sent = self.http.get(url.clone()).send().await;
            self.trace(&Method::GET, &url, &sent);
            match sent {
                Ok(r)
                    if super::error::is_temporary_status(r.status()) && attempt < MAX_ATTEMPTS =>
                {
                    tokio::time::sleep(backoff(attempt, Some(r.headers()))).await;
                }
                Ok(r) => return Ok(r),
                Err(e) if is_not_tls(&e) => return Err(PingError::NotTls),
                Err(e) if is_certificate_error(&e) => {
                    return Err(PingError::Other(RegistryError::Tls {
                        host: self.registry.clone(),
                        reason: transport_reason(&e),
                    }))
                }
                Err(e) if attempt < MAX_ATTEMPTS => {
                    self.retrying(&transport_reason(&e));
                    tokio::time::sleep(backoff(attempt, None)).await;
                }
                Err(e) => {
                    return Err(PingError::Other(RegistryError::Connect {
                        url: display_url(&url),
                        reason: transport_reason(&e),
                    }))
                }
            }
            attempt += 1;
        }
    }

    /// Sets up authentication for `challenge`; for bearer tokens, fetches one now so bad
    /// credentials are reported before any work.
    async fn authenticate(&self, challenge: Challenge) -> Result<(), RegistryError> {
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
                let token = self.fetch_token(&realm, service.as_deref()).await?;
                *auth = Auth::Bearer {
                    realm,
                    service,
                    token: Some(token),
                };
            }
        }
        Ok(())
    }

    fn no_credentials(&self) -> RegistryError {
        RegistryError::Denied {
            host: self.registry.clone(),
            user: None,
            reason: format!(
                "the registry requires credentials and none were found for {} (add them with `docker login {}` or to ~/.docker/config.json)",
                self.registry, self.registry
            ),
        }
    }

    fn denied(&self, reason: String) -> RegistryError {
        RegistryError::Denied {
            host: self.registry.clone(),
            user: self.credentials.as_ref().map(|c| c.username.clone()),
            reason,
        }
    }

    /// The distribution token spec's exchange: GET realm?service=..&scope=repository:R:pull,push
    /// (or `:pull` for a connection that only reads).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
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
        let req = match &self.credentials {
            // An identity token is an OAuth2 refresh token: POSTed as a form, never as Basic.
            Some(c) if c.is_identity_token() => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("client_id", "nixpush")
                    .append_pair("refresh_token", c.password.expose())
                    .append_pair("scope", &scopes.join(" "));
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                self.http
                    .post(url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.finish())
            }
            credentials => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for scope in &scopes {
                        q.append_pair("scope", scope);
                    }
                }
                let req = self.http.get(url.clone());
                match credentials {
                    Some(c) => req.header(AUTHORIZATION, c.basic_header()),
                    None => req,
                }
            }
        };
        let sent = req.send().await;
        let method = if self
            .credentials
            .as_ref()
            .is_some_and(|c| c.is_identity_token())
        {
            Method::POST
        } else {
            Method::GET
        };
        self.trace(&method, &url, &sent);
        let response = sent.map_err(|e| RegistryError::Connect {
            url: display_url(&url),
            reason: transport_reason(&e),
        })?;
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
            _ => return Err(status_error(&Method::GET, &url, response).await),
        }
        let body = read_bounded(response).await;
        Token::from_response(&body, Instant::now())
            .ok_or_else(|| self.protocol("the token server's answer has no token"))
    }

    /// Tells `--verbose` of a request and its answer: method, URL without its query (which may
    /// carry upload state), status. Never a header: they carry the credentials.
    fn trace(&self, method: &Method, url: &Url, sent: &Result<Response, reqwest::Error>) {
        let answer = match sent {
            Ok(r) => r.status().to_string(),
            Err(e) => transport_reason(e),
        };
        self.reporter
            .detail(&format!("{method} {} -> {answer}", display_url(url)));
    }

    /// Makes the next token also allow pulling from `repository`, for a cross-repository mount
    /// (a token already fetched without it is dropped).
    pub(super) async fn allow_mount_from(&self, repository: &str) {
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

    /// The `Authorization` value for a request to `url`, if any. Only requests to the registry's
    /// own origin get one: upload Locations and redirects may point at object storage.
    async fn authorization(&self, url: &Url) -> Result<Option<HeaderValue>, RegistryError> {
        if url.origin() != self.base.origin() {
            return Ok(None);
        }
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
                        let t = self.fetch_token(realm, service.as_deref()).await?;
                        let v = t.value.clone();
                        *token = Some(t);
                        v
                    }
                };
                format!("Bearer {}", value.expose())
            }
        };
        let mut header = HeaderValue::from_str(&value).map_err(|_| {
            self.protocol("the credentials contain characters not allowed in a header")
        })?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    /// A 401 or 403 that authentication cannot fix, said plainly.
    async fn refusal(&self, method: &Method, url: &Url, r: Response) -> RegistryError {
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
    async fn reauthenticate(&self, response: &Response) -> Result<(), RegistryError> {
        if let Some(challenge) = challenge_of(response) {
            if matches!(challenge, Challenge::Bearer { .. }) || self.credentials.is_some() {
                return self.authenticate(challenge).await;
            }
            return Err(self.no_credentials());
        }
        Err(self.denied("the registry answered 401".into()))
    }

    /// Sends a request whose body can be sent again, retrying what may succeed later and
    /// renewing authentication once. Returns the response whatever its status, except 401/403.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        self.send_with_attempts(method, url, headers, body, MAX_ATTEMPTS)
            .await
    }

    /// Like [`Client::send`], in one attempt: for the steps of a sequence (an upload) that is
    /// retried as a whole, so retries are never nested. Authentication is still renewed once.
    pub async fn send_once(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        self.send_with_attempts(method, url, headers, body, 1).await
    }

    async fn send_with_attempts(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        max_attempts: u32,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 1;
        let mut reauthenticated = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(auth) = self.authorization(&url).await? {
                req = req.header(AUTHORIZATION, auth);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let sent = req.send().await;
            self.trace(&method, &url, &sent);
            match sent {
                Err(e) => {
                    let err = transport_error(&method, &url, &e);
                    // A redirect loop would loop again.
                    if attempt >= max_attempts || !err.is_temporary() {
                        return Err(err);
                    }
                    self.retrying(&err.to_string());
                    tokio::time::sleep(backoff(attempt, None)).await;
                }
                // Only the registry's own 401 is a reason to authenticate: a challenge from
                // another host (a redirect, object storage) could name a realm that collects
                // credentials. Theirs is answered to the caller like any other status.
                Ok(r) if !reauthenticated && self.may_renew(&r) => {
                    reauthenticated = true;
                    self.reauthenticate(&r).await?;
                    continue;
                }
                Ok(r)
                    if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && self.is_own(r.url()) =>
                {
                    return Err(self.refusal(&method, &url, r).await);
                }
                Ok(r)
                    if super::error::is_temporary_status(r.status()) && attempt < max_attempts =>
                {
                    self.retrying(&format!("{method} answered {}", r.status()));
                    tokio::time::sleep(backoff(attempt, Some(r.headers()))).await;
                }
                Ok(r) => return Ok(r),
            }
            attempt += 1;
        }
    }

    /// Sends a request with a streamed body, once: a stream cannot be replayed, so retrying is
    /// the caller's (it reopens the stream). Authentication is whatever is current.
    pub async fn send_stream(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<Response, RegistryError> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body);
        if let Some(auth) = self.authorization(&url).await? {
            req = req.header(AUTHORIZATION, auth);
        }
        let sent = req.send().await;
        self.trace(&method, &url, &sent);
        let r = sent.map_err(|e| transport_error(&method, &url, &e))?;
        if !self.is_own(r.url()) {
            return Ok(r);
        }
        let has_token = matches!(*self.auth.lock().await, Auth::Bearer { .. });
        if has_token && self.may_renew(&r) {
            // A token that expired in the middle of the push: renew it. The stream cannot be
            // sent again, so the caller retries the upload as a whole, with the new token.
            self.reauthenticate(&r).await?;
            return Err(RegistryError::TokenRenewed {
                method: method.to_string(),
                url: display_url(&url),
            });
        }
        if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.refusal(&method, &url, r).await);
        }
        Ok(r)
    }

    /// Whether a renewed authentication may fix this answer: a 401 from the registry's own
    /// origin that is not about scope (`error="insufficient_scope"`: a new token with the same
    /// scope would be refused the same way).
    fn may_renew(&self, r: &Response) -> bool {
        r.status() == StatusCode::UNAUTHORIZED && self.is_own(r.url()) && !insufficient_scope(r)
    }

    /// Whether `url` is on the registry's own origin (scheme, host and port), the only one
    /// that gets credentials or may ask for them.
    fn is_own(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }
}

enum PingError {
    NotTls,
    Other(RegistryError),
}

/// Whether a 401 says the token is fine but does not allow this request
/// (`error="insufficient_scope"`, e.g. a DELETE a push token does not grant).
fn insufficient_scope(response: &Response) -> bool {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("error=\"insufficient_scope\""))
}

fn challenge_of(response: &Response) -> Option<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer a bearer challenge when a registry offers both.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}

/// Reads at most `MAX_ERROR_BODY` bytes of a response body; errors give what was read.
pub(crate) async fn read_bounded(mut response: Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    out
}

impl Client {
    /// Reads a whole response body of at most `max` bytes; `what` ("the manifest") names it in
    /// errors. Past `max` the read stops: a broken or hostile registry cannot make us hold more.
    pub(crate) async fn read_body(
        &self,
        mut response: Response,
        max: usize,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| self.protocol(&format!("{what} could not be read")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(self.protocol(&format!(
                    "{what} is larger than {} MiB",
                    max / (1024 * 1024)
                )));
            }
        }
        Ok(body)
    }
}

/// An unexpected status as an error carrying the registry's explanation.
pub(crate) async fn status_error(method: &Method, url: &Url, response: Response) -> RegistryError {
    let status = response.status();
    let retry_after = super::retry::retry_after(response.headers());
    let detail = explain_body(&read_bounded(response).await);
    RegistryError::Status {
        method: method.to_string(),
        url: display_url(url),
        status,
        detail,
        retry_after,
    }
}
