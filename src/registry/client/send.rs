//! Sending a request: credentials attached (to the registry's own origin only, on every hop
//! of a redirect), an expired token renewed once on a 401, and (`send`) the http layer's retry
//! loop for single requests, every step of an upload included. Only a streamed body
//! (`send_stream`) is sent once: the uploader opens the stream again when it fails. A request
//! that used its budget fails for good, and a step that retries around requests gives them its
//! own budget ([`Client::send_within`]), so nested retries never add their budgets up.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode, Url};

use super::status_error;
use super::{Auth, Client};
use crate::http::{
    backoff, display_url, is_temporary_status, with_retries, Attempt, Budget, Outgoing, Payload,
    Watch,
};
use crate::registry::error::RegistryError;
use crate::registry::BlobBody;

impl Client {
    /// Sends a request whose body can be sent again, retrying what may succeed later for as
    /// long as the policy says, and renewing authentication once. Returns the response whatever
    /// its status, except 401/403, and except a "not now" (a 5xx, 429, a dropped connection) that
    /// outlasted the budget: that is [`RegistryError::GaveUp`], which nothing retries again.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        let budget = Budget::starting_now(self.retry.retry_for);
        self.send_within(method, url, headers, body, budget).await
    }

    /// [`Client::send`] within `budget`: for a step that retries around its requests, which
    /// share its deadline.
    pub(crate) async fn send_within(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        budget: Budget,
    ) -> Result<Response, RegistryError> {
        let answer = self.send_for(&method, &url, headers, body, budget).await;
        match answer {
            Ok(r) if is_temporary_status(r.status()) => {
                Err(status_error(&method, &url, r).await.given_up())
            }
            other => other.map_err(RegistryError::given_up),
        }
    }

    /// Like [`Client::send`], retrying for at most `retry_for` and handing back the last answer
    /// as it is: for clean-up requests that must not hold a push up.
    pub async fn send_briefly(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        retry_for: std::time::Duration,
    ) -> Result<Response, RegistryError> {
        let budget = Budget::starting_now(retry_for);
        self.send_for(&method, &url, headers, body, budget).await
    }

    /// The loop itself: the last answer as it is once `budget` is spent.
    pub(in crate::registry) async fn send_for(
        &self,
        method: &Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        budget: Budget,
    ) -> Result<Response, RegistryError> {
        let mut reauthenticated = false;
        let (headers, body) = (&headers, &body);
        with_retries(
            budget,
            |reason| self.retrying(reason),
            async |attempt| loop {
                let credential = match self.authorization(budget).await {
                    Ok(c) => c,
                    Err(e) => return Attempt::Done(Err(e)),
                };
                let request = Outgoing {
                    method: method.clone(),
                    url: url.clone(),
                    headers: headers.clone(),
                    body: match body {
                        Some(b) => Payload::Bytes(b.clone()),
                        None => Payload::Empty,
                    },
                    credential: credential.as_ref(),
                };
                let Some(sent) = self.watched(self.http.send(request), None).await else {
                    return self.stalled_attempt(method, url, attempt);
                };
                self.trace(method, url, &sent);
                return match sent {
                    Err(e) => {
                        let err: RegistryError = e.to_http_error(method, url).into();
                        // A redirect loop would loop again.
                        if !err.is_temporary() {
                            return Attempt::Done(Err(err));
                        }
                        Attempt::Again {
                            reason: Some(err.to_string()),
                            last: Err(err),
                            wait: backoff(attempt, None),
                        }
                    }
                    // Only the registry's own 401 is a reason to authenticate: a challenge from
                    // another host (a redirect, object storage) could name a realm that
                    // collects credentials. Theirs is answered to the caller like any other.
                    // Renewed once, within the same attempt.
                    Ok(r) if !reauthenticated && self.may_renew(&r) => {
                        reauthenticated = true;
                        if let Err(e) = self.reauthenticate(&r, budget).await {
                            return Attempt::Done(Err(e));
                        }
                        continue;
                    }
                    Ok(r)
                        if matches!(
                            r.status(),
                            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                        ) && self.is_own(r.url()) =>
                    {
                        Attempt::Done(Err(self.refusal(method, url, r).await))
                    }
                    Ok(r) if is_temporary_status(r.status()) => Attempt::Again {
                        reason: Some(format!("{method} answered {}", r.status())),
                        wait: backoff(attempt, Some(r.headers())),
                        last: Ok(r),
                    },
                    Ok(r) => Attempt::Done(Ok(r)),
                };
            },
        )
        .await
    }

    /// Sends a request with a streamed body, once: a stream cannot be replayed, so retrying is
    /// the caller's (it reopens the stream). Authentication is whatever is current.
    pub async fn send_stream(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: BlobBody,
    ) -> Result<Response, RegistryError> {
        // The body's progress keeps the request alive: a layer takes as long as it takes, as
        // long as its bytes keep going.
        let watch = Watch::new();
        let budget = Budget::starting_now(self.retry.retry_for);
        let credential = self.authorization(budget).await?;
        let request = Outgoing {
            method: method.clone(),
            url: url.clone(),
            headers,
            body: Payload::Stream(body.into_body(watch.clone())),
            credential: credential.as_ref(),
        };
        let Some(sent) = self.watched(self.http.send(request), Some(&watch)).await else {
            return Err(self.stalled(&method, &url));
        };
        self.trace(&method, &url, &sent);
        let r = sent.map_err(|e| RegistryError::from(e.to_http_error(&method, &url)))?;
        if !self.is_own(r.url()) {
            return Ok(r);
        }
        let has_token = matches!(*self.auth.lock().await, Auth::Bearer { .. });
        if has_token && self.may_renew(&r) {
            // A token that expired in the middle of the push: renew it. The stream cannot be
            // sent again, so the caller retries the upload as a whole, with the new token.
            self.reauthenticate(&r, budget).await?;
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
}
