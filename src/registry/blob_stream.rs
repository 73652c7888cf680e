//! A blob read as a stream, for moving it to another registry with no file on disk: `GET` the
//! blob, hand its body on chunk by chunk as an upload's body, hashing it as it goes. A body that
//! stalls past the stall timeout, is cut short, or ends with bytes of another digest fails the
//! stream before it ends, so the upload it feeds is never committed with them.

use reqwest::header::CONTENT_LENGTH;
use reqwest::Response;
use sha2::{Digest as _, Sha256};

use super::client::Client;
use super::session::BlobBody;
use super::RegistryError;
use crate::digest::Digest;

/// Why a streamed blob failed half-way.
#[derive(Debug, thiserror::Error)]
pub enum StreamFailure {
    #[error("the source registry stopped sending {0} for longer than the stall timeout")]
    Stalled(Digest),
    #[error("the source registry cut {digest} short: {reason}")]
    Cut { digest: Digest, reason: String },
    #[error("the source registry sent bytes of digest {got} for {digest}")]
    WrongDigest { digest: Digest, got: Digest },
}

/// Where a streamed blob is.
struct Reading {
    response: Option<Response>,
    hasher: Sha256,
}

impl Client {
    /// `GET /v2/<name>/blobs/<digest>` as a stream checked against `digest`, with its size when
    /// the registry says; `None` if the registry does not have it.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
    ) -> Result<Option<(Option<u64>, BlobBody)>, RegistryError> {
        let Some(r) = self.open_blob(digest).await? else {
            return Ok(None);
        };
        let size = r
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let stall = self.retry_policy().stall_timeout;
        let expected = digest.clone();
        let state = Reading {
            response: Some(r),
            hasher: Sha256::new(),
        };
        let stream = futures_util::stream::unfold(state, move |mut state| {
            let expected = expected.clone();
            async move {
                let response = state.response.as_mut()?;
                let next = match tokio::time::timeout(stall, response.chunk()).await {
                    Err(_) => Err(StreamFailure::Stalled(expected)),
                    Ok(Err(e)) => Err(StreamFailure::Cut {
                        digest: expected,
                        reason: e.to_string(),
                    }),
                    Ok(Ok(Some(chunk))) => {
                        state.hasher.update(&chunk);
                        Ok(chunk)
                    }
                    Ok(Ok(None)) => {
                        let got = Digest::from_sha256(state.hasher.clone().finalize().into());
                        state.response = None;
                        if got == expected {
                            return None;
                        }
                        Err(StreamFailure::WrongDigest {
                            digest: expected,
                            got,
                        })
                    }
                };
                if next.is_err() {
                    state.response = None;
                }
                Some((next, state))
            }
        });
        Ok(Some((size, BlobBody::new(stream))))
    }
}
