//! The manifest step: `PUT /v2/<name>/manifests/<tag or digest>`. The `Content-Type` is the
//! manifest's own `mediaType`, and the registry must store exactly the bytes sent.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::client::{status_error, Client};
use super::RegistryError;
use crate::digest::Digest;

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
