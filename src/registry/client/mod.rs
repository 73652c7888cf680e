//! The connection to one repository of one registry: which scheme it speaks (the ping), how it
//! wants to be authenticated (`auth.rs`), and the sending every request goes through
//! (`send.rs`). Stacked as in go-containerregistry's transports: scheme and TLS, then
//! authentication, then retries, each knowing nothing of the others' details.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode, Url};
use tokio::sync::Mutex;

use super::auth::{Credentials, Token};
use super::error::{explain_body, RegistryError};
use super::host_facts::{HostFacts, HostFactsStore};
use crate::http::{
    backoff, display_url, is_temporary_status, transport_reason, watched, with_retries, Attempt,
    Budget, HttpError, Notices, Outgoing, RetryPolicy, SendError, TlsOptions, Transport, Watch,
    FIRST_CONTACT_RETRY_FOR,
};
use crate::reference::Reference;
use auth::challenge_of;
use scheme::base_url;

mod auth;
mod scheme;
mod send;
mod sessions;
pub use sessions::cancel_abandoned_uploads;

/// Most bytes of an error body read before giving up on the rest.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an error body may stop coming before what came is taken as all of it.
const ERROR_BODY_STALL: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// PEM file of extra certificates to trust (a private CA, or the registry's own
    /// self-signed certificate); implies HTTPS.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Credentials to use when the registry asks for them.
    pub credentials: Option<Credentials>,
    /// Told about retries, what the host refused, and (`--verbose`) each request.
    pub notices: Arc<dyn Notices>,
    /// How long to keep trying, and how long a silent registry is waited for.
    pub retry: RetryPolicy,
    /// Where what each host was seen to refuse is remembered (none: this run only).
    pub host_facts: Option<std::path::PathBuf>,
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
    http: Transport,
    base: Url,
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    access: Access,
    auth: Mutex<Auth>,
    /// Other repositories whose blobs may be mounted here: a token must allow pulling them.
    mount_sources: std::sync::Mutex<Vec<String>>,
    notices: Arc<dyn Notices>,
    /// Upload sessions open now, cancelled if the client is dropped with them open.
    uploads: sessions::OpenUploads,
    retry: RetryPolicy,
    /// What this host was seen to refuse (a way of uploading, a manifest format).
    facts: HostFactsStore,
}

impl Client {
    /// Finds the scheme, pings `/v2/`, and authenticates if the registry asks.
    ///
    /// HTTPS first; plain HTTP only as `scheme.rs` allows (loopback or `insecure`, no CA, and
    /// the server does not speak TLS or cut the handshake). A certificate error never falls
    /// back.
    pub async fn connect(
        reference: &Reference,
        options: ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let host = reference.api_host();
        let tls = TlsOptions {
            insecure: options.insecure,
            ca_cert: options.ca_cert.clone(),
        }
        .for_host(host)?;
        let http = Transport::new(&tls, host)?;
        let may_use_http = scheme::may_use_http(
            options.insecure,
            reference.is_loopback(),
            !tls.ca_certs.is_empty(),
        );
        let mut client = Client {
            http,
            base: base_url("https", host)?,
            registry: reference.registry().to_owned(),
            repository: reference.repository().to_owned(),
            credentials: options.credentials,
            access: options.access,
            auth: Mutex::new(Auth::Anonymous),
            mount_sources: std::sync::Mutex::new(Vec::new()),
            notices: options.notices,
            uploads: Default::default(),
            retry: options.retry,
            facts: HostFactsStore::open(options.host_facts.clone(), host),
        };
        let response = match client.ping_either(host, may_use_http).await {
            // Still "not now" when the first-contact budget ran out.
            Ok(r) if is_temporary_status(r.status()) => {
                let url = client.base.join("v2/").expect("static path");
                return Err(status_error(&Method::GET, &url, r).await.given_up());
            }
            Ok(r) => r,
            Err(PingError::NotTls) => {
                return Err(HttpError::NotTls {
                    host: host.to_owned(),
                }
                .into())
            }
            Err(PingError::Other(e) | PingError::HandshakeCut(e)) => return Err(e),
        };
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                let challenge = challenge_of(&response).ok_or_else(|| {
                    client.protocol(
                        "GET /v2/ answered 401 without a usable WWW-Authenticate challenge",
                    )
                })?;
                let budget = Budget::starting_now(client.retry.retry_for);
                client.authenticate(challenge, budget).await?;
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

    /// What this host was seen to refuse, here or on an earlier push.
    pub fn host_facts(&self) -> HostFacts {
        self.facts.get()
    }

    /// Remembers something the host refused; said once, when it is news.
    pub(crate) fn learn(&self, what: &str, change: impl FnOnce(&mut HostFacts)) {
        if self.facts.learn(change) {
            self.notices.learnt(&format!("{}: {what}", self.registry));
        }
    }

    /// How long this client keeps trying.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// A retry is worth telling: a push that is slow because of them should say why.
    pub(crate) fn retrying(&self, reason: &str) {
        self.notices
            .retrying(&format!("{}: {reason}", self.registry));
    }

    /// `GET /v2/`, retried while the registry may be starting (a temporary status, a dropped
    /// connection); a server that does not speak TLS, or a certificate error, is final, and so is
    /// a TLS handshake cut short when `may_use_http` (plain HTTP is tried next).
    async fn ping(&self, may_use_http: bool) -> Result<Response, PingError> {
        let url = self.base.join("v2/").expect("static path");
        let url = &url;
        // First contact: a registry that is not there is said in seconds.
        let budget = Budget::starting_now(self.retry.retry_for.min(FIRST_CONTACT_RETRY_FOR));
        with_retries(
            budget,
            |reason| self.retrying(reason),
            async |attempt| {
                let ping = self.http.send(Outgoing::new(Method::GET, url.clone()));
                let Some(sent) = self.watched(ping, None).await else {
                    return self.stalled_attempt(&Method::GET, url, attempt);
                };
                self.trace(&Method::GET, url, &sent);
                match sent {
                    Ok(r) if is_temporary_status(r.status()) => Attempt::Again {
                        wait: backoff(attempt, Some(r.headers())),
                        last: Ok(r),
                        reason: None,
                    },
                    Ok(r) => Attempt::Done(Ok(r)),
                    Err(e) if e.is_not_tls() => Attempt::Done(Err(PingError::NotTls)),
                    Err(e) if may_use_http && e.is_handshake_cut() => {
                        Attempt::Done(Err(PingError::HandshakeCut(
                            HttpError::Connect {
                                url: display_url(url),
                                reason: e.reason(),
                            }
                            .into(),
                        )))
                    }
                    Err(e) if e.is_certificate_error() => Attempt::Done(Err(PingError::Other(
                        HttpError::Tls {
                            host: self.registry.clone(),
                            reason: e.reason(),
                        }
                        .into(),
                    ))),
                    Err(e @ SendError::TooManyRedirects) => Attempt::Done(Err(PingError::Other(
                        e.to_http_error(&Method::GET, url).into(),
                    ))),
                    Err(e) => Attempt::Again {
                        last: Err(PingError::Other(
                            HttpError::Connect {
                                url: display_url(url),
                                reason: e.reason(),
                            }
                            .into(),
                        )),
                        wait: backoff(attempt, None),
                        reason: Some(e.reason()),
                    },
                }
            },
        )
        .await
    }

    /// Runs a request until it completes, or until nothing has moved for the stall timeout
    /// (`None`); `watch` is the progress of its body, when it streams one.
    pub(crate) async fn watched<T>(
        &self,
        request: impl std::future::Future<Output = T>,
        watch: Option<&Watch>,
    ) -> Option<T> {
        let fresh = Watch::new();
        watched(request, watch.unwrap_or(&fresh), self.retry.stall_timeout).await
    }

    /// The attempt of a request that stalled: tried again after the backoff.
    pub(crate) fn stalled_attempt<T, E: From<RegistryError>>(
        &self,
        method: &Method,
        url: &Url,
        attempt: u32,
    ) -> Attempt<T, E> {
        let stalled = self.stalled(method, url);
        Attempt::Again {
            reason: Some(stalled.to_string()),
            last: Err(stalled.into()),
            wait: backoff(attempt, None),
        }
    }

    /// The error of a request that stalled.
    pub(crate) fn stalled(&self, method: &Method, url: &Url) -> RegistryError {
        self.notices.detail(&format!(
            "{method} {} -> nothing for {} s",
            display_url(url),
            self.retry.stall_timeout.as_secs_f64()
        ));
        HttpError::Stalled {
            method: method.to_string(),
            url: display_url(url),
            host: self.registry.clone(),
            after: self.retry.stall_timeout,
        }
        .into()
    }

    /// Tells `--verbose` of a request and its answer: method, URL without its query (which may
    /// carry upload state), status. Never a header: they carry the credentials.
    fn trace(&self, method: &Method, url: &Url, sent: &Result<Response, SendError>) {
        let answer = match sent {
            Ok(r) => r.status().to_string(),
            Err(e) => e.reason(),
        };
        self.notices
            .detail(&format!("{method} {} -> {answer}", display_url(url)));
    }
}

enum PingError {
    /// The server answered the TLS handshake with something that is not TLS.
    NotTls,
    /// The connection was closed or reset during the TLS handshake (the error to tell if plain
    /// HTTP does not answer either).
    HandshakeCut(RegistryError),
    Other(RegistryError),
}

impl From<RegistryError> for PingError {
    fn from(e: RegistryError) -> Self {
        PingError::Other(e)
    }
}

/// Reads at most `MAX_ERROR_BODY` bytes of a response body; errors, and a body that stops
/// coming for a while, give what was read.
pub(crate) async fn read_bounded(mut response: Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(ERROR_BODY_STALL, response.chunk()).await {
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
        let url = response.url().clone();
        // An answer cut or stalled half-way may come whole next time: a transport failure.
        loop {
            let Ok(next) = tokio::time::timeout(self.retry.stall_timeout, response.chunk()).await
            else {
                return Err(self.stalled(&Method::GET, &url));
            };
            let Some(chunk) = next.map_err(|e| HttpError::Transport {
                method: "GET".into(),
                url: display_url(&url),
                reason: format!("{what} was cut short: {}", transport_reason(&e)),
            })?
            else {
                break;
            };
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
    let retry_after = crate::http::retry_after(response.headers());
    let rate_limit = rate_limit_note(response.headers());
    let mut detail = explain_body(&read_bounded(response).await);
    if let Some(note) = rate_limit {
        detail = if detail.is_empty() {
            note
        } else {
            format!("{detail}; {note}")
        };
    }
    RegistryError::Status {
        method: method.to_string(),
        url: display_url(url),
        status,
        detail,
        retry_after,
    }
}

/// Docker Hub's rate-limit headers (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining`),
/// said with the error: how many requests per how many seconds, and how many are left.
fn rate_limit_note(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    let (limit, remaining) = (value("ratelimit-limit")?, value("ratelimit-remaining"));
    let per_window = |v: &str| match v.split_once(";w=") {
        Some((n, w)) => format!("{} per {} s", n.trim(), w.trim()),
        None => v.to_owned(),
    };
    let left = remaining
        .map(|r| format!(", {} left", r.split(';').next().unwrap_or_default().trim()))
        .unwrap_or_default();
    Some(format!("rate limit {}{left}", per_window(&limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_rate_limit_headers_are_said() {
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_note(&h), None);
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        h.insert("ratelimit-remaining", "0;w=21600".parse().unwrap());
        assert_eq!(
            rate_limit_note(&h).unwrap(),
            "rate limit 100 per 21600 s, 0 left"
        );
    }
}
