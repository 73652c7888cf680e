//! An upload as the protocol steps hand it around: the session (where the next request of the
//! upload goes), the body (a blob's bytes as they are produced, sent once), and what a mount
//! request did. Its own file, so the client (which keeps track of open sessions) and the steps
//! that use them (`blob.rs`, `chunks.rs`) both name it without naming each other.

use bytes::Bytes;
use reqwest::Url;

use crate::http::Watch;

/// What a mount request did.
#[derive(Debug)]
pub enum Mount {
    /// The blob is now in the repository.
    Linked,
    /// Not mounted; the registry opened this upload session instead.
    Declined(UploadSession),
}

/// An open upload: where the next request of the upload goes. The client keeps track of the
/// sessions it opened (`client/sessions.rs`) until they are committed or cancelled.
#[derive(Clone, Debug)]
pub struct UploadSession {
    pub(super) location: Url,
    pub(super) id: u64,
}

/// A blob's bytes as they are produced, sent once as a request body: a stream cannot be sent
/// again, so a failed upload is retried by producing the bytes again.
pub struct BlobBody(
    pub(super) std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, BoxError>> + Send>>,
);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl BlobBody {
    pub fn new<S, E>(stream: S) -> Self
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        use futures_util::TryStreamExt;
        BlobBody(Box::pin(stream.map_err(Into::into)))
    }

    /// The request body, telling `watch` of each chunk taken (progress, for the stall timeout).
    pub(super) fn into_body(self, watch: Watch) -> reqwest::Body {
        use futures_util::StreamExt;
        let done = watch.clone();
        let end = futures_util::stream::poll_fn(move |_| {
            done.body_done();
            std::task::Poll::Ready(None)
        });
        reqwest::Body::wrap_stream(self.0.inspect(move |_| watch.tick()).chain(end))
    }
}
