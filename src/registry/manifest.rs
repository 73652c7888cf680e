//! The manifest step: `PUT /v2/<name>/manifests/<tag or digest>`. The `Content-Type` is the
//! manifest's own `mediaType`, and the registry must store exactly the bytes sent.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::client::{status_error, Client};
use super::RegistryError;
use crate::digest::Digest;
use crate::image::media_types::MANIFEST_ACCEPT;

impl Client {
    /// Puts `bytes` (a manifest of `media_type` whose digest is `digest`) under `reference`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &'static str,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
        let r = self
            .send(Method::PUT, url.clone(), headers, Some(bytes))
            .await?;
        if r.status() != StatusCode::CREATED {
            return Err(status_error(&Method::PUT, &url, r).await);
        }
        self.check_content_digest(&r, digest)
    }
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
        let r = self.send(Method::GET, url.clone(), headers, None).await?;
        match r.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(status_error(&Method::GET, &url, r).await),
        }
        let body = self
            .read_body(r, MAX_MANIFEST_BYTES, "the manifest")
            .await?;
        Ok(Some(Bytes::from(body)))
    }
}
