//! The blob steps of the distribution API, one function each: check, read a small blob, start an
//! upload, send the data, commit, cancel. Upload follows the sequence that works on every major registry: `POST`
//! (empty body), one `PATCH` carrying the whole stream with no `Content-Range`, then
//! `PUT ?digest=`. Registries answer PATCH with 202, 201 (ECR) or 204; all are accepted.
//!
//! Each step is tried again on its own (a failed POST asks for a new session; a commit whose
//! answer is lost, or that the registry no longer knows, is checked with a HEAD of the digest
//! first). Only the streamed PATCH (or monolithic PUT) is sent once: the caller opens the layer
//! stream again when it fails. A `Location` is resolved
//! against the URL of the request that returned it, as HTTP says (it may be relative, and the
//! upload may have moved to another host).

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};

use super::client::{status_error, Client};
use super::session::{BlobBody, Mount, UploadSession};
use super::RegistryError;
use crate::digest::Digest;
use crate::http::{backoff, with_retries, Attempt, Budget};

/// `Content-Length: 0`, which hyper leaves out of a request with an empty body, and which
/// some registries (Google Artifact Registry) require on POST and the final PUT.
/// How long the `DELETE` of an abandoned upload session is tried.
const CANCEL_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// Where an upload session is completed: its `Location` with `?digest=`.
fn commit_url(session: &UploadSession, digest: &Digest) -> Url {
    let mut url = session.location.clone();
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

/// The headers of a request carrying blob bytes.
pub(super) fn blob_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

fn empty_body_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    headers
}

/// A `PATCH` taken: 202 as the spec says, 201 (ECR) or 204.
pub(super) fn is_patch_accepted(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::ACCEPTED | StatusCode::CREATED | StatusCode::NO_CONTENT
    )
}

impl Client {
    /// `HEAD /v2/<name>/blobs/<digest>`: whether the registry has the blob, and its size when
    /// the registry says (`Some(None)`: present, size not given).
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<Option<u64>>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let r = self
            .send(Method::HEAD, url.clone(), HeaderMap::new(), None)
            .await?;
        match r.status() {
            StatusCode::OK => Ok(Some(
                r.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::HEAD, &url, r).await),
        }
    }

    /// `GET /v2/<name>/blobs/<digest>`: a small blob (an image config) read whole into memory,
    /// or `None` if the registry does not have it (404). At most `max_bytes` are read, and what
    /// was read must have `digest`: a registry (or the object storage it redirects to) that
    /// sends other bytes is an error, not an answer.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        max_bytes: usize,
    ) -> Result<Option<Bytes>, RegistryError> {
        let Some(r) = self.open_blob(digest).await? else {
            return Ok(None);
        };
        let body = self
            .read_body(r, max_bytes, &format!("the blob {digest}"))
            .await?;
        let got = Digest::of(&body);
        if got != *digest {
            return Err(self.protocol(&format!(
                "it sent bytes of digest {got} for the blob {digest}"
            )));
        }
        Ok(Some(Bytes::from(body)))
    }

    /// `GET /v2/<name>/blobs/<digest>`: the answer whose body is the blob, or `None` if the
    /// registry does not have it (404); what reads the body checks it against `digest`.
    pub(super) async fn open_blob(
        &self,
        digest: &Digest,
    ) -> Result<Option<Response>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let r = self
            .send(Method::GET, url.clone(), HeaderMap::new(), None)
            .await?;
        match r.status() {
            StatusCode::OK => Ok(Some(r)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&Method::GET, &url, r).await),
        }
    }

    /// `POST /v2/<name>/blobs/uploads/` with an empty body.
    pub async fn start_upload(&self) -> Result<UploadSession, RegistryError> {
        self.start_upload_within(Budget::starting_now(self.retry_policy().retry_for))
            .await
    }

    async fn start_upload_within(&self, budget: Budget) -> Result<UploadSession, RegistryError> {
        let url = self.url("blobs/uploads/");
        let r = self.post_empty(&url, budget).await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(status_error(&Method::POST, &url, r).await);
        }
        Ok(self.track_upload(self.location_of(&r)?))
    }

    /// One `PATCH` carrying the whole stream.
    pub async fn send_upload_data(
        &self,
        session: &UploadSession,
        body: BlobBody,
    ) -> Result<UploadSession, RegistryError> {
        let r = self
            .send_stream(
                Method::PATCH,
                session.location.clone(),
                blob_headers(),
                body,
            )
            .await?;
        match r.status() {
            s if is_patch_accepted(s) => self.session_after_patch(session, &r),
            StatusCode::LENGTH_REQUIRED | StatusCode::BAD_REQUEST => {
                Err(self.refused_streaming(session, r).await)
            }
            _ => Err(status_error(&Method::PATCH, &session.location, r).await),
        }
    }

    /// Where the upload goes after an accepted `PATCH`: the new `Location` when there is one.
    pub(super) fn session_after_patch(
        &self,
        session: &UploadSession,
        r: &Response,
    ) -> Result<UploadSession, RegistryError> {
        let location = match r.headers().get(LOCATION) {
            Some(_) => self.location_of(r)?,
            None => session.location.clone(),
        };
        Ok(self.track_move(session, location))
    }

    /// A monolithic upload in an open session: one `PUT <location>?digest=...` carrying the whole
    /// blob as a stream with its `Content-Length` (for registries that refuse chunks).
    pub async fn put_upload_whole(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: BlobBody,
    ) -> Result<(), RegistryError> {
        let url = commit_url(&session, digest);
        let mut headers = blob_headers();
        headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(size));
        let r = self
            .send_stream(Method::PUT, url.clone(), headers, body)
            .await?;
        match r.status() {
            StatusCode::CREATED => {}
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return Err(self.refused_size(&Method::PUT, &url, size, r).await)
            }
            _ => return Err(status_error(&Method::PUT, &url, r).await),
        }
        self.untrack(&session);
        self.check_content_digest(&r, digest)
    }

    /// `PUT <location>?digest=...` with an optional final body: ends the upload.
    pub async fn commit_upload(
        &self,
        session: UploadSession,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let url = commit_url(&session, digest);
        let mut headers = blob_headers();
        if body.is_empty() {
            headers.extend(empty_body_headers());
        }
        let answer = self
            .send(Method::PUT, url.clone(), headers, Some(body))
            .await;
        let failure = match answer {
            Ok(r) if r.status() == StatusCode::CREATED => {
                self.untrack(&session);
                return self.check_content_digest(&r, digest);
            }
            Ok(r) => status_error(&Method::PUT, &url, r).await,
            Err(e) => e,
        };
        // An answer lost on the way (the blob usually stored), or a PUT tried again that the
        // registry no longer knows because the first one committed: ask before calling it a
        // failure (briefly: the PUT had its budget).
        let briefly = Budget::starting_now(CANCEL_RETRY_FOR);
        if let Ok(Some(_)) = self.blob_exists_briefly(digest, briefly).await {
            self.untrack(&session);
            return Ok(());
        }
        // Not there, and the session gone (a registry cancels an upload whose commit failed):
        // the upload can start again from its stream.
        if let RegistryError::Status { status, .. } = &failure {
            if *status == StatusCode::NOT_FOUND {
                return Err(RegistryError::SessionLost {
                    url: crate::http::display_url(&url),
                });
            }
        }
        Err(failure)
    }

    /// Whether the registry has `digest` (a HEAD tried within `budget`: a few seconds at most).
    async fn blob_exists_briefly(
        &self,
        digest: &Digest,
        budget: Budget,
    ) -> Result<Option<()>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let r = self
            .send_for(&Method::HEAD, &url, HeaderMap::new(), None, budget)
            .await?;
        Ok((r.status() == StatusCode::OK).then_some(()))
    }

    /// Cross-repository mount: `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`.
    /// `Linked` when the registry linked the blob (201). A 202 means it will not (another
    /// storage, no permission on `from`) and opened an upload session instead, which is handed
    /// back to upload the blob with. `from=` is always sent (Quay fails a mount without it).
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<Mount, RegistryError> {
        self.allow_mount_from(from).await;
        let mut url = self.url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let budget = Budget::starting_now(self.retry_policy().retry_for);
        let r = self.post_empty(&url, budget).await?;
        match r.status() {
            StatusCode::CREATED => Ok(Mount::Linked),
            StatusCode::ACCEPTED => Ok(Mount::Declined(self.track_upload(self.location_of(&r)?))),
            _ => Err(status_error(&Method::POST, &url, r).await),
        }
    }

    /// `DELETE` to where the session was last (the latest `Location` the registry gave), tried
    /// again for a few seconds at most: best effort, so an abandoned upload does not linger.
    pub async fn cancel_upload(&self, session: UploadSession) {
        self.cancel_upload_within(session, Budget::starting_now(CANCEL_RETRY_FOR))
            .await
    }

    async fn cancel_upload_within(&self, session: UploadSession, budget: Budget) {
        let location = self.untrack(&session);
        let _ = self
            .send_for(&Method::DELETE, &location, HeaderMap::new(), None, budget)
            .await;
    }

    /// Uploads a small blob held in memory (the image config): POST, then PUT with the bytes.
    /// A PUT that carried part of its body before failing has moved the session on (the
    /// registry holds those bytes), so it is never sent again in that session: the blob is
    /// looked for (the PUT may have gone through), and else sent again in a new session. The
    /// whole of it, every request included, keeps within one `--retry-for`.
    pub async fn put_blob(&self, digest: &Digest, data: Bytes) -> Result<(), RegistryError> {
        let budget = Budget::starting_now(self.retry_policy().retry_for);
        let answer = with_retries(
            budget,
            |reason| self.retrying(reason),
            async |attempt| {
                let session = match self.start_upload_within(budget).await {
                    Ok(session) => session,
                    Err(e) => return Attempt::Done(Err(e)),
                };
                let url = commit_url(&session, digest);
                let sent = self
                    .send_briefly(
                        Method::PUT,
                        url.clone(),
                        blob_headers(),
                        Some(data.clone()),
                        std::time::Duration::ZERO,
                    )
                    .await;
                let failure = match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        self.untrack(&session);
                        return Attempt::Done(self.check_content_digest(&r, digest));
                    }
                    Ok(r) => status_error(&Method::PUT, &url, r).await,
                    Err(e) => e,
                };
                let briefly = budget.at_most(CANCEL_RETRY_FOR);
                if let Ok(Some(_)) = self.blob_exists_briefly(digest, briefly).await {
                    self.untrack(&session);
                    return Attempt::Done(Ok(()));
                }
                self.cancel_upload_within(session, briefly).await;
                if !failure.is_temporary() {
                    return Attempt::Done(Err(failure));
                }
                Attempt::Again {
                    reason: Some(failure.to_string()),
                    wait: failure
                        .retry_after()
                        .unwrap_or_else(|| backoff(attempt, None)),
                    last: Err(failure),
                }
            },
        )
        .await;
        answer.map_err(RegistryError::given_up)
    }

    /// Puts a small blob held in memory unless the registry has it already (a `HEAD` first).
    pub async fn ensure_blob(&self, digest: &Digest, data: Bytes) -> Result<(), RegistryError> {
        if self.blob_size(digest).await?.is_none() {
            self.put_blob(digest, data).await?;
        }
        Ok(())
    }

    /// `POST url` with an empty body: how every upload session starts (tried again on its own
    /// when it fails: a new session is asked for).
    async fn post_empty(&self, url: &Url, budget: Budget) -> Result<Response, RegistryError> {
        self.send_within(
            Method::POST,
            url.clone(),
            empty_body_headers(),
            Some(Bytes::new()),
            budget,
        )
        .await
    }

    /// The `Location` of an answer, resolved against the URL that gave it.
    pub(super) fn location_of(&self, r: &Response) -> Result<Url, RegistryError> {
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol("an upload answer has no Location header"))?;
        // Relative to the URL that answered: after a redirect, not the one requested.
        r.url()
            .join(location)
            .map_err(|_| self.protocol("a Location header is not a valid URL"))
    }

    /// A registry that names what it stored must name what was sent.
    pub(crate) fn check_content_digest(
        &self,
        r: &Response,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        match r
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(got) if got != digest.to_string() => {
                Err(self.protocol(&format!("it stored {got} where {digest} was sent")))
            }
            _ => Ok(()),
        }
    }
}
