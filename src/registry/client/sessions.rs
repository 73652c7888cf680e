//! Upload sessions still open, so that none is left behind. A session is registered when the
//! registry opens it, follows the `Location` it moves to, and is forgotten once committed or
//! cancelled. A push that fails or is interrupted leaves some open (uploads running beside the
//! one that failed, or cut short by Ctrl-C): a client dropped with sessions open hands them to a
//! process-wide list, and [`cancel_abandoned_uploads`] (the binary calls it before it exits)
//! `DELETE`s them, best effort and bounded in time. Otherwise a registry keeps an abandoned
//! session and its partial data until its own purge (distribution's: after a week).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};

use super::{Auth, Client};
use crate::http::{OriginCredential, Outgoing, Transport};
use crate::registry::UploadSession;

/// The whole time given to cancelling abandoned sessions: a registry that does not answer must
/// not hold up the end of a failed or interrupted push.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(3);

/// The sessions one client has open: id -> where the next request of the upload goes.
#[derive(Default)]
pub(super) struct OpenUploads {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Url>>,
}

impl OpenUploads {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Url>> {
        // The map stays consistent whatever panicked while holding it.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session left open by a dropped client, with what its `DELETE` needs.
struct Abandoned {
    http: Transport,
    url: Url,
    credential: Option<OriginCredential>,
}

/// Sessions of every client dropped with uploads open, until cancelled.
static ABANDONED: Mutex<Vec<Abandoned>> = Mutex::new(Vec::new());

impl Client {
    /// Registers the session the registry just opened at `location`.
    pub(in crate::registry) fn track_upload(&self, location: Url) -> UploadSession {
        let id = self.uploads.next_id.fetch_add(1, Ordering::Relaxed);
        self.uploads.open().insert(id, location.clone());
        UploadSession { location, id }
    }

    /// The session continues at `location` (the `Location` of the last answer).
    pub(in crate::registry) fn track_move(
        &self,
        session: &UploadSession,
        location: Url,
    ) -> UploadSession {
        self.uploads.open().insert(session.id, location.clone());
        UploadSession {
            location,
            id: session.id,
        }
    }

    /// The session is over (committed or cancelled); returns where it was last.
    pub(in crate::registry) fn untrack(&self, session: &UploadSession) -> Url {
        self.uploads
            .open()
            .remove(&session.id)
            .unwrap_or_else(|| session.location.clone())
    }

    /// The credential the client holds now, without waiting or fetching anything (the client
    /// is going away): a basic header, or the last token.
    fn authorization_now(&mut self) -> Option<OriginCredential> {
        let value = match self.auth.get_mut() {
            Auth::Anonymous => return None,
            Auth::Basic => self.credentials.as_ref()?.basic_header(),
            Auth::Bearer { token, .. } => format!("Bearer {}", token.as_ref()?.value.expose()),
        };
        let header = HeaderValue::from_str(&value).ok()?;
        Some(OriginCredential::new(&self.base, header))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let open: Vec<Url> = self.uploads.open().drain().map(|(_, url)| url).collect();
        if open.is_empty() {
            return;
        }
        let credential = self.authorization_now();
        let mut abandoned = ABANDONED.lock().unwrap_or_else(|e| e.into_inner());
        for url in open {
            abandoned.push(Abandoned {
                http: self.http.clone(),
                // Credentials go to the registry's own origin only, as for every request.
                credential: credential.clone(),
                url,
            });
        }
    }
}

/// `DELETE`s the upload sessions that clients dropped while they were open (a failed or
/// interrupted push), all at once, for at most a few seconds; failures are ignored.
///
/// Boxed: an `async fn`'s future is compiled again in every crate that awaits it, so the
/// binary and each test binary would compile the whole push once more (docs/benchmarks.md).
pub fn cancel_abandoned_uploads() -> LocalBoxFuture<'static, ()> {
    Box::pin(async move {
        let abandoned = std::mem::take(&mut *ABANDONED.lock().unwrap_or_else(|e| e.into_inner()));
        if abandoned.is_empty() {
            return;
        }
        let deletes = abandoned.into_iter().map(|a| async move {
            let mut request = Outgoing::new(Method::DELETE, a.url);
            request.credential = a.credential.as_ref();
            let _ = a.http.send(request).await;
        });
        let _ = tokio::time::timeout(CANCEL_TIMEOUT, futures_util::future::join_all(deletes)).await;
    })
}
