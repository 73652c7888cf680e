//! The manifest step: `PUT /v2/<name>/manifests/<tag or digest>`. The `Content-Type` is the
//! manifest's own `mediaType`, and the registry must store exactly the bytes sent.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::client::{status_error, Client};
use super::RegistryError;
use crate::digest::Digest;
use crate::http::{backoff, with_retries, Attempt, Budget};
use crate::image::media_types::MANIFEST_ACCEPT;

impl Client {
    /// Puts `bytes` (a manifest of `media_type` whose digest is `digest`) under `reference`. An
    /// OCI document refused as such is [`RegistryError::FormatRefused`]: older Artifactory,
    /// Nexus and Harbor 1.x answer 400 `MANIFEST_INVALID`, old Quay 415
    /// (containers/image#584 falls back the same way). Returns whether the registry said it
    /// indexed the manifest's `subject` (the `OCI-Subject` header of the referrers API).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let mut attempt = 1;
        loop {
            match self
                .put_manifest_once(reference, media_type, bytes.clone(), digest)
                .await
            {
                Err(e) if names_a_blob_unknown(&e) && attempt < BLOB_UNKNOWN_TRIES => {
                    self.retrying(&e.to_string());
                    tokio::time::sleep(BLOB_UNKNOWN_WAIT * attempt).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    async fn put_manifest_once(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
        let r = self
            .send(Method::PUT, url.clone(), headers, Some(bytes))
            .await?;
        let status = r.status();
        if status != StatusCode::CREATED {
            let error = status_error(&Method::PUT, &url, r).await;
            return Err(match &error {
                RegistryError::Status { detail, .. }
                    if media_type.starts_with("application/vnd.oci.")
                        && (status == StatusCode::UNSUPPORTED_MEDIA_TYPE
                            || (status == StatusCode::BAD_REQUEST
                                && detail.contains("MANIFEST_INVALID"))) =>
                {
                    RegistryError::FormatRefused(Box::new(error))
                }
                _ => error,
            });
        }
        let indexed = r.headers().contains_key("oci-subject");
        self.check_content_digest(&r, digest)?;
        Ok(indexed)
    }
}

/// Tries of a manifest `PUT` answered `MANIFEST_BLOB_UNKNOWN`, and the wait before the first
/// retry (doubled, then tripled). Every blob a manifest names is confirmed before it is written,
/// so such an answer is a registry that has not seen a blob yet: docker-registry's filesystem
/// storage rewrites a repository's blob link in place, and a second push uploading the same
/// blob at that moment (two CI jobs publishing one image) makes it look missing for a few
/// milliseconds (seen in tests/sbom_race.rs). A blob that is really missing fails after about a
/// second, as it would have at once.
const BLOB_UNKNOWN_TRIES: u32 = 4;
const BLOB_UNKNOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether the registry refused a manifest for naming a blob it does not know.
fn names_a_blob_unknown(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Status { status, detail, .. }
        if *status == StatusCode::BAD_REQUEST && detail.contains("MANIFEST_BLOB_UNKNOWN"))
}

/// What `get_manifest` accepts: OCI and Docker manifests and indexes.
/// Largest manifest read: the distribution spec's own limit is 4 MiB.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

impl Client {
    /// `GET /v2/<repository>/manifests/<reference>`: the manifest's bytes, or `None` if there is
    /// none (404). `repository` may be another repository of the same registry.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Bytes>, RegistryError> {
        let url = self.url_in(repository, &format!("manifests/{reference}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(MANIFEST_ACCEPT),
        );
        // The request is retried by `send_within`; an answer whose body is cut or stalls
        // half-way is asked for again here, within the same budget.
        let budget = Budget::starting_now(self.retry_policy().retry_for);
        with_retries(
            budget,
            |reason| self.retrying(reason),
            async |attempt| {
                let r = match self
                    .send_within(Method::GET, url.clone(), headers.clone(), None, budget)
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Attempt::Done(Err(e)),
                };
                match r.status() {
                    StatusCode::OK => {}
                    StatusCode::NOT_FOUND => return Attempt::Done(Ok(None)),
                    _ => return Attempt::Done(Err(status_error(&Method::GET, &url, r).await)),
                }
                match self.read_body(r, MAX_MANIFEST_BYTES, "the manifest").await {
                    Ok(body) => Attempt::Done(Ok(Some(Bytes::from(body)))),
                    Err(e) if e.is_temporary() => Attempt::Again {
                        reason: Some(e.to_string()),
                        last: Err(e),
                        wait: backoff(attempt, None),
                    },
                    Err(e) => Attempt::Done(Err(e)),
                }
            },
        )
        .await
    }
}

impl Client {
    /// `GET /v2/<repository>/referrers/<digest>` (OCI 1.1): the index of what is attached to
    /// `subject`, or `None` when the registry has no referrers API (404, or anything but an
    /// index).
    pub async fn get_referrers(&self, subject: &Digest) -> Result<Option<Bytes>, RegistryError> {
        let url = self.url(&format!("referrers/{subject}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(crate::image::media_types::OCI_INDEX),
        );
        let r = self.send(Method::GET, url, headers, None).await?;
        let is_index = r
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with(crate::image::media_types::OCI_INDEX));
        if r.status() != StatusCode::OK || !is_index {
            return Ok(None);
        }
        let body = self
            .read_body(r, MAX_MANIFEST_BYTES, "the referrers index")
            .await?;
        Ok(Some(Bytes::from(body)))
    }
}
