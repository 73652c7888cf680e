//! Reading files of one binary cache, over HTTP(S) or from a `file://` directory: small ones
//! (narinfos, listings) whole, NARs as a stream. Requests go through the http layer, as a
//! registry's do: the same TLS (`--ca-cert`, certs.d for the cache's host), credentials from the
//! URL's `user:password@` sent to the cache's own origin only (never to where it redirects), the
//! stall timeout, and the retry loop: a cache restarting or a dropped connection is tried again
//! within `--retry-for`, and a NAR cut off mid-way is fetched again, the bytes already read
//! skipped. The first request to a cache has a short budget, so a cache that is not there at all
//! is said at once.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use reqwest::{Method, Response, StatusCode, Url};
use tokio::sync::mpsc;

use super::s3::{S3Signer, MAX_ERROR_BODY};
use super::s3_url::S3Location;
use super::url_credentials::{basic_credential, redact};
use super::CacheError;
use crate::http::{
    backoff, display_url, host_of, is_temporary_status, watched, with_retries, Attempt, Budget,
    OriginCredential, Outgoing, Retries, RetryPolicy, SendError, TlsOptions, Transport, Watch,
    FIRST_CONTACT_RETRY_FOR,
};

/// NAR chunks that may wait between the download and the layer being written.
const NAR_DEPTH: usize = 8;

/// One binary cache.
pub struct Cache {
    /// Its URL as shown to the user (no credentials).
    pub name: String,
    place: Place,
    policy: RetryPolicy,
    /// Whether it has answered once (its first request has a short budget).
    answered: AtomicBool,
}

enum Place {
    Http(Arc<Remote>),
    File(PathBuf),
}

/// A cache over HTTP(S): where, how to reach it, and its credential (a URL's `user:password@`,
/// or, for an `s3://` cache, the keys its requests are pre-signed with).
struct Remote {
    base: Url,
    http: Transport,
    credential: Option<OriginCredential>,
    s3: Option<S3Signer>,
    stall: Duration,
}

impl Cache {
    /// A cache at `url`: `http://`, `https://` or `file://`; `tls` for an HTTPS one (with what
    /// certs.d holds for its host).
    pub fn new(url: &str, tls: &TlsOptions, policy: RetryPolicy) -> Result<Cache, CacheError> {
        let parsed = Url::parse(url).map_err(|_| CacheError::BadUrl(redact(url)))?;
        let name = display_url(&parsed).trim_end_matches('/').to_owned();
        let place = match parsed.scheme() {
            "http" | "https" => {
                let mut base = parsed.clone();
                if !base.path().ends_with('/') {
                    base.set_path(&format!("{}/", base.path()));
                }
                let credential = basic_credential(&base);
                let _ = base.set_username("");
                let _ = base.set_password(None);
                Place::Http(Arc::new(Remote::new(base, credential, None, tls, policy)?))
            }
            "s3" => {
                let location = S3Location::parse(url)?;
                let signer = S3Signer::new(&location, &|name| std::env::var(name).ok())?;
                let base = signer.base().clone();
                Place::Http(Arc::new(Remote::new(
                    base,
                    None,
                    Some(signer),
                    tls,
                    policy,
                )?))
            }
            "file" => Place::File(
                parsed
                    .to_file_path()
                    .map_err(|_| CacheError::BadUrl(redact(url)))?,
            ),
            other => return Err(CacheError::Scheme(other.to_owned(), name)),
        };
        Ok(Cache {
            name,
            place,
            policy,
            answered: AtomicBool::new(false),
        })
    }

    fn budget(&self) -> Duration {
        if self.answered.load(Ordering::Relaxed) {
            self.policy.retry_for
        } else {
            FIRST_CONTACT_RETRY_FOR.min(self.policy.retry_for)
        }
    }

    /// The file at `rel`, or `None` when the cache does not have it; one larger than `max`
    /// bytes is an error, never read whole.
    pub async fn get(&self, rel: &str, max: u64) -> Result<Option<Bytes>, CacheError> {
        let too_large = || CacheError::TooLarge {
            url: format!("{}/{rel}", self.name),
            max,
        };
        let remote = match &self.place {
            Place::File(dir) => {
                let path = dir.join(inside(rel)?);
                let read = async {
                    use tokio::io::AsyncReadExt as _;
                    let file = tokio::fs::File::open(&path).await?;
                    let mut bytes = Vec::new();
                    file.take(max + 1).read_to_end(&mut bytes).await?;
                    Ok::<_, io::Error>(bytes)
                };
                return match read.await {
                    Ok(bytes) if bytes.len() as u64 > max => Err(too_large()),
                    Ok(bytes) => Ok(Some(bytes.into())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(CacheError::File { path, source }),
                };
            }
            Place::Http(remote) => remote,
        };
        let url = remote.url(rel)?;
        let unreachable = |reason: String| CacheError::Unreachable {
            cache: self.name.clone(),
            reason,
        };
        let answer = with_retries(
            Budget::starting_now(self.budget()),
            |_| {},
            async |n| match remote.send(&url, 0).await {
                Ok(r) if r.status().is_success() => {
                    let headers = r.headers().clone();
                    match bounded_body(r, max, remote.stall).await {
                        Ok(Some(body)) => Attempt::Done(Ok(Some(body))),
                        Ok(None) => Attempt::Done(Err(too_large())),
                        Err(reason) => Attempt::Again {
                            last: Err(unreachable(reason)),
                            wait: backoff(n, Some(&headers)),
                            reason: None,
                        },
                    }
                }
                // S3 says in its body whether the key, the bucket or the signature is wrong.
                Ok(r) if remote.s3.is_some() && matches!(r.status().as_u16(), 403 | 404) => {
                    let status = r.status().as_u16();
                    let body = bounded_body(r, MAX_ERROR_BODY, remote.stall).await;
                    let body = body.ok().flatten().unwrap_or_default();
                    match remote.s3.as_ref().and_then(|s3| s3.refusal(status, &body)) {
                        None => Attempt::Done(Ok(None)),
                        Some(refused) => Attempt::Done(Err(refused)),
                    }
                }
                // What Nix itself takes for "not in this cache" (403: S3 without list rights).
                Ok(r) if is_absent(r.status()) => Attempt::Done(Ok(None)),
                Ok(r) if is_temporary_status(r.status()) => Attempt::Again {
                    wait: backoff(n, Some(r.headers())),
                    last: Err(self.status(&url, r.status())),
                    reason: None,
                },
                Ok(r) => Attempt::Done(Err(self.status(&url, r.status()))),
                Err(Failed::Send(e @ SendError::TooManyRedirects)) => {
                    Attempt::Done(Err(CacheError::Http(e.to_http_error(&Method::GET, &url))))
                }
                Err(Failed::Send(e)) if e.is_certificate_error() => {
                    Attempt::Done(Err(CacheError::Http(e.to_http_error(&Method::GET, &url))))
                }
                Err(e) => Attempt::Again {
                    last: Err(unreachable(e.reason())),
                    wait: backoff(n, None),
                    reason: None,
                },
            },
        )
        .await;
        if answer.is_ok() {
            self.answered.store(true, Ordering::Relaxed);
        }
        answer
    }

    fn status(&self, url: &Url, status: StatusCode) -> CacheError {
        CacheError::Status {
            url: display_url(url),
            status,
        }
    }

    /// The file at `rel` as a stream, read on a blocking thread; the download runs on
    /// `runtime`, at most a few chunks ahead of the reader. Blocking.
    pub fn open(
        self: &Arc<Self>,
        rel: &str,
        runtime: &tokio::runtime::Handle,
    ) -> io::Result<Box<dyn Read + Send>> {
        let remote = match &self.place {
            Place::File(dir) => {
                let rel = inside(rel).map_err(io::Error::other)?;
                return Ok(Box::new(std::fs::File::open(dir.join(rel))?));
            }
            Place::Http(remote) => remote.clone(),
        };
        let url = remote.url(rel).map_err(io::Error::other)?;
        let (tx, rx) = mpsc::channel(NAR_DEPTH);
        let budget = self.policy.retry_for;
        runtime.spawn(remote.download(url, tx, budget));
        Ok(Box::new(ChannelReader {
            rx,
            current: Bytes::new(),
        }))
    }
}

/// Why a request to a cache got no usable answer.
enum Failed {
    Send(SendError),
    Stalled,
}

impl Failed {
    fn reason(&self) -> String {
        match self {
            Failed::Send(e) => e.reason(),
            Failed::Stalled => "nothing came for the stall timeout (--stall-timeout)".into(),
        }
    }
}

impl Remote {
    /// A cache at `base` reached with `tls` (and what certs.d holds for its host).
    fn new(
        base: Url,
        credential: Option<OriginCredential>,
        s3: Option<S3Signer>,
        tls: &TlsOptions,
        policy: RetryPolicy,
    ) -> Result<Remote, CacheError> {
        let host = host_of(&base);
        let settings = tls.for_host(&host).map_err(CacheError::Http)?;
        let http = Transport::new(&settings, &host).map_err(CacheError::Http)?;
        Ok(Remote {
            base,
            http,
            credential,
            s3,
            stall: policy.stall_timeout,
        })
    }

    /// The URL of the file at `rel`: below the base, pre-signed for an S3 bucket.
    fn url(&self, rel: &str) -> Result<Url, CacheError> {
        let rel = inside(rel)?;
        if let Some(s3) = &self.s3 {
            return Ok(s3.presign(rel));
        }
        self.base
            .join(rel)
            .map_err(|_| CacheError::BadUrl(rel.to_owned()))
    }

    /// `GET url` (from byte `from` on, when not 0), its credential on the cache's origin only.
    async fn send(&self, url: &Url, from: u64) -> Result<Response, Failed> {
        let mut request = Outgoing::new(Method::GET, url.clone());
        request.credential = self.credential.as_ref();
        if from > 0 {
            let range = HeaderValue::from_str(&format!("bytes={from}-")).expect("digits");
            request.headers.insert(reqwest::header::RANGE, range);
        }
        match watched(self.http.send(request), &Watch::new(), self.stall).await {
            None => Err(Failed::Stalled),
            Some(sent) => sent.map_err(Failed::Send),
        }
    }

    /// Sends `url`'s body down `tx`, fetching the rest again after a failure (from where it
    /// broke, with `Range`, or from the start skipping what was already sent when the cache
    /// ignores `Range`), until it is all sent, the reader is gone, or `budget` has passed since
    /// the first failure (then the reader gets the error).
    async fn download(
        self: Arc<Self>,
        url: Url,
        tx: mpsc::Sender<io::Result<Bytes>>,
        budget: Duration,
    ) {
        let sent = AtomicU64::new(0);
        // The retry loop written out: the task's future must be `Send`.
        let mut retries = Retries::new(Budget::AfterFirstFailure(budget));
        let answer = loop {
            match self
                .download_once(&url, &tx, &sent, retries.attempt())
                .await
            {
                Attempt::Done(answer) => break answer,
                Attempt::Again { last, wait, .. } if !retries.fits(wait) => break last,
                Attempt::Again { wait, .. } => retries.wait(wait).await,
            }
        };
        if let Err(problem) = answer {
            let message = format!("cannot download {}: {problem}", display_url(&url));
            let _ = tx.send(Err(io::Error::other(message))).await;
        }
    }

    /// One try of a download, from byte `sent` on.
    async fn download_once(
        &self,
        url: &Url,
        tx: &mpsc::Sender<io::Result<Bytes>>,
        sent: &AtomicU64,
        attempt: u32,
    ) -> Attempt<(), String> {
        let from = sent.load(Ordering::Relaxed);
        let r = match self.send(url, from).await {
            Ok(r) => r,
            Err(Failed::Send(e @ SendError::TooManyRedirects)) => {
                return Attempt::Done(Err(e.reason()))
            }
            Err(e) => {
                return Attempt::Again {
                    last: Err(e.reason()),
                    wait: backoff(attempt, None),
                    reason: None,
                }
            }
        };
        if is_temporary_status(r.status()) {
            return Attempt::Again {
                last: Err(format!("answered {}", r.status())),
                wait: backoff(attempt, Some(r.headers())),
                reason: None,
            };
        }
        if !r.status().is_success() {
            return Attempt::Done(Err(format!("answered {}", r.status())));
        }
        let headers = r.headers().clone();
        // A 206 starts where it broke; a 200 starts over.
        let mut skip = if r.status() == StatusCode::PARTIAL_CONTENT {
            0
        } else {
            from
        };
        let mut body = r.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(self.stall, body.next()).await {
                Err(_) => Err(Failed::Stalled.reason()),
                Ok(None) => return Attempt::Done(Ok(())),
                Ok(Some(chunk)) => {
                    chunk.map_err(|e| Failed::Send(SendError::Transport(e)).reason())
                }
            };
            let mut chunk = match chunk {
                Ok(chunk) => chunk,
                Err(reason) => {
                    return Attempt::Again {
                        last: Err(reason),
                        wait: backoff(attempt, Some(&headers)),
                        reason: None,
                    }
                }
            };
            let drop = skip.min(chunk.len() as u64) as usize;
            skip -= drop as u64;
            chunk = chunk.slice(drop..);
            if chunk.is_empty() {
                continue;
            }
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if tx.send(Ok(chunk)).await.is_err() {
                // The reader is gone: nothing more to do.
                return Attempt::Done(Ok(()));
            }
        }
    }
}

/// `rel` (a narinfo's `URL`, a file name) if it stays inside the cache: relative, no `..`.
fn inside(rel: &str) -> Result<&str, CacheError> {
    if rel.starts_with('/') || rel.contains("://") || rel.split('/').any(|p| p == "..") {
        return Err(CacheError::BadUrl(rel.to_owned()));
    }
    Ok(rel)
}

/// The body of `r` if it holds at most `max` bytes (`None` if more), read as it comes; a body
/// cut, or silent for `stall`, is an error (its reason).
async fn bounded_body(r: Response, max: u64, stall: Duration) -> Result<Option<Bytes>, String> {
    if r.content_length().is_some_and(|n| n > max) {
        return Ok(None);
    }
    let mut body = Vec::new();
    let mut chunks = r.bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(stall, chunks.next()).await {
            Err(_) => return Err(Failed::Stalled.reason()),
            Ok(None) => break,
            Ok(Some(chunk)) => chunk.map_err(|e| Failed::Send(SendError::Transport(e)).reason())?,
        };
        if (body.len() + chunk.len()) as u64 > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.into()))
}

fn is_absent(status: StatusCode) -> bool {
    matches!(status.as_u16(), 403 | 404 | 410)
}

/// The blocking side of a download.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                // The download ended: the NAR's own checks tell a whole one from a cut one.
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_url_is_shown_without_its_credentials() {
        let tls = TlsOptions::default();
        let cache = Cache::new(
            "https://user:s3cret@cache.example/",
            &tls,
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(cache.name, "https://cache.example");
        let e = Cache::new("https://user:s3cret@[bad", &tls, RetryPolicy::default())
            .err()
            .unwrap();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
