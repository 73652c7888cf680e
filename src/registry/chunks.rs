//! The upload ways for hosts that bend the spec on blob bodies, and how a refusal of one way is
//! told apart from a failure: a streamed `PATCH` without a length answered 411 or 400 (Google
//! Artifact Registry, front ends that refuse `Transfer-Encoding: chunked`), a body over a
//! per-request cap answered 416 (GHCR's 4 MiB). Each refusal is learned as a host fact
//! (`host_facts.rs`) and handed back as [`RegistryError::WayRefused`], so the uploader tries the
//! way the host takes.
//!
//! Chunks are fixed-size `PATCH`es, each with its `Content-Length` and `Content-Range`, the last
//! one shorter. The offset is counted from the bytes sent, never read back from the answer's
//! `Range`: ECR's stops advancing after the second chunk (aws/containers-roadmap#2831). A chunk
//! is held in memory while it goes (one chunk per upload running).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{HeaderValue, CONTENT_LENGTH};
use reqwest::{Method, StatusCode};

use super::blob::{blob_headers, is_patch_accepted};
use super::client::{status_error, Client};
use super::host_facts::cap_named_in;
use super::session::{BlobBody, UploadSession};
use super::RegistryError;

/// Smallest chunk tried: a host whose cap is below it is not one to upload to.
const MIN_CHUNK: u64 = 256 * 1024;

/// Error codes of the distribution spec a registry answers an upload it understood with.
const SPEC_UPLOAD_ERRORS: [&str; 6] = [
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "SIZE_INVALID",
    "NAME_INVALID",
    "NAME_UNKNOWN",
];

/// Pieces a chunk is handed to the network in, so its progress is seen (the stall timeout).
const PIECE: usize = 64 * 1024;

impl Client {
    /// A streamed `PATCH` answered 411 or 400: the host wants a length on every request.
    pub(super) async fn refused_streaming(
        &self,
        session: &UploadSession,
        r: reqwest::Response,
    ) -> RegistryError {
        let status = r.status();
        let error = status_error(&Method::PATCH, &session.location, r).await;
        // A 400 the registry explains with one of the distribution spec's own error codes is
        // about the upload, not about how it was sent.
        let spec_error = matches!(&error, RegistryError::Status { detail, .. }
            if SPEC_UPLOAD_ERRORS.iter().any(|code| detail.contains(code)));
        if status == StatusCode::LENGTH_REQUIRED
            || (status == StatusCode::BAD_REQUEST && !spec_error)
        {
            self.learn(
                &format!("a streamed upload was refused ({status}); sending blobs with lengths"),
                |f| f.length_required = Some(status.as_u16()),
            );
            return RegistryError::WayRefused(Box::new(error));
        }
        error
    }

    /// A body of `size` bytes answered 416: over the host's cap. The cap is the one the answer
    /// names, else half of what was refused (the next try finds out).
    pub(super) async fn refused_size(
        &self,
        method: &Method,
        url: &reqwest::Url,
        size: u64,
        r: reqwest::Response,
    ) -> RegistryError {
        let status = r.status();
        let error = status_error(method, url, r).await;
        let RegistryError::Status { detail, .. } = &error else {
            return error;
        };
        if status != StatusCode::RANGE_NOT_SATISFIABLE || size / 2 < MIN_CHUNK {
            return error;
        }
        // A `PATCH` answered 416 is, by the spec, a range the registry did not expect: only one
        // that names a size is a cap. A whole `PUT` has no range: its 416 is a cap either way.
        let named = cap_named_in(detail).filter(|cap| *cap < size);
        if *method == Method::PATCH && named.is_none() {
            return error;
        }
        let cap = named.unwrap_or(size / 2).max(MIN_CHUNK);
        self.learn(
            &format!(
                "a {} KiB request body was refused ({status}); bodies stay under {} KiB",
                size / 1024,
                cap / 1024
            ),
            |f| f.body_cap = Some(f.body_cap.map_or(cap, |c| c.min(cap))),
        );
        RegistryError::WayRefused(Box::new(error))
    }

    /// Sends `body` in `PATCH`es of `chunk` bytes (the last one shorter), each with its length
    /// and range; the session is then committed by the caller, as after a streamed `PATCH`.
    pub async fn send_upload_chunks(
        &self,
        session: &UploadSession,
        body: BlobBody,
        chunk: u64,
    ) -> Result<UploadSession, RegistryError> {
        let chunk = chunk.max(MIN_CHUNK) as usize;
        let mut stream = body.0;
        let mut session = session.clone();
        let mut buffer = BytesMut::with_capacity(chunk);
        let mut offset = 0u64;
        let mut ended = false;
        while !ended {
            while buffer.len() < chunk {
                match stream.next().await {
                    Some(Ok(bytes)) => buffer.extend_from_slice(&bytes),
                    Some(Err(e)) => {
                        return Err(crate::http::HttpError::Transport {
                            method: Method::PATCH.to_string(),
                            url: crate::http::display_url(&session.location),
                            reason: format!("the blob's bytes stopped: {e}"),
                        }
                        .into())
                    }
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            let take = buffer.len().min(chunk);
            if take == 0 {
                break;
            }
            let part = buffer.split_to(take).freeze();
            session = self.send_chunk(&session, part, offset).await?;
            offset += take as u64;
        }
        Ok(session)
    }

    /// One chunk at `offset`: `PATCH` with `Content-Length` and `Content-Range`.
    async fn send_chunk(
        &self,
        session: &UploadSession,
        part: Bytes,
        offset: u64,
    ) -> Result<UploadSession, RegistryError> {
        let len = part.len() as u64;
        let mut headers = blob_headers();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        let range = format!("{offset}-{}", offset + len - 1);
        headers.insert(
            "content-range",
            HeaderValue::from_str(&range).expect("digits and a dash"),
        );
        let pieces: Vec<Result<Bytes, std::convert::Infallible>> = (0..part.len())
            .step_by(PIECE)
            .map(|at| Ok(part.slice(at..(at + PIECE).min(part.len()))))
            .collect();
        let body = BlobBody::new(futures_util::stream::iter(pieces));
        let url = session.location.clone();
        let r = self
            .send_stream(Method::PATCH, url.clone(), headers, body)
            .await?;
        match r.status() {
            s if is_patch_accepted(s) => self.session_after_patch(session, &r),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                Err(self.refused_size(&Method::PATCH, &url, len, r).await)
            }
            _ => Err(status_error(&Method::PATCH, &url, r).await),
        }
    }
}
