//! Reading files of one binary cache, over HTTP(S) or from a `file://` directory: small ones
//! (narinfos, listings) whole, NARs as a stream. Every request goes through the registry's retry
//! policy: a cache restarting or a dropped connection is tried again within `--retry-for`, a
//! NAR cut off mid-way is fetched again and the bytes already read are skipped. The first
//! request to a cache has a short budget, so a cache that is not there at all is said at once.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;

use super::CacheError;
use crate::registry::{
    backoff, display_url, is_temporary_status, transport_reason, with_retries, Attempt,
    RetryPolicy, FIRST_CONTACT_RETRY_FOR,
};

/// NAR chunks that may wait between the download and the layer being written.
const NAR_DEPTH: usize = 8;
/// How long to wait for a TCP connection to a cache.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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
    Http { base: Url, client: reqwest::Client },
    File(PathBuf),
}

/// The HTTP client every cache of a run shares.
pub fn http_client(policy: &RetryPolicy) -> Result<reqwest::Client, CacheError> {
    reqwest::Client::builder()
        .user_agent(concat!("nixpush/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(policy.stall_timeout)
        .referer(false)
        .build()
        .map_err(|e| CacheError::Client(transport_reason(&e)))
}

impl Cache {
    /// A cache at `url`: `http://`, `https://` or `file://`.
    pub fn new(
        url: &str,
        client: &reqwest::Client,
        policy: RetryPolicy,
    ) -> Result<Cache, CacheError> {
        let parsed = Url::parse(url).map_err(|_| CacheError::BadUrl(redact(url)))?;
        let name = display_url(&parsed).trim_end_matches('/').to_owned();
        let place = match parsed.scheme() {
            "http" | "https" => {
                let mut base = parsed.clone();
                if !base.path().ends_with('/') {
                    base.set_path(&format!("{}/", base.path()));
                }
                Place::Http {
                    base,
                    client: client.clone(),
                }
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

    fn url(&self, base: &Url, rel: &str) -> Result<Url, CacheError> {
        base.join(inside(rel)?)
            .map_err(|_| CacheError::BadUrl(rel.to_owned()))
    }

    /// The file at `rel`, or `None` when the cache does not have it; one larger than `max`
    /// bytes is an error, never read whole.
    pub async fn get(&self, rel: &str, max: u64) -> Result<Option<Bytes>, CacheError> {
        let too_large = || CacheError::TooLarge {
            url: format!("{}/{rel}", self.name),
            max,
        };
        let (base, client) = match &self.place {
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
            Place::Http { base, client } => (base, client),
        };
        let url = self.url(base, rel)?;
        let answer = with_retries(
            self.budget(),
            |_| {},
            async |n| {
                let failed = |e: &reqwest::Error| CacheError::Unreachable {
                    cache: self.name.clone(),
                    reason: transport_reason(e),
                };
                match client.get(url.clone()).send().await {
                    Ok(r) if r.status().is_success() => {
                        let headers = r.headers().clone();
                        match bounded_body(r, max).await {
                            Ok(Some(body)) => Attempt::Done(Ok(Some(body))),
                            Ok(None) => Attempt::Done(Err(too_large())),
                            Err(e) => Attempt::Again {
                                last: Err(failed(&e)),
                                wait: backoff(n, Some(&headers)),
                                reason: None,
                            },
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
                    Err(e) => Attempt::Again {
                        last: Err(failed(&e)),
                        wait: backoff(n, None),
                        reason: None,
                    },
                }
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
        let (base, client) = match &self.place {
            Place::File(dir) => {
                let rel = inside(rel).map_err(io::Error::other)?;
                return Ok(Box::new(std::fs::File::open(dir.join(rel))?));
            }
            Place::Http { base, client } => (base, client.clone()),
        };
        let url = self.url(base, rel).map_err(io::Error::other)?;
        let (tx, rx) = mpsc::channel(NAR_DEPTH);
        let budget = self.policy.retry_for;
        runtime.spawn(download(client, url, tx, budget));
        Ok(Box::new(ChannelReader {
            rx,
            current: Bytes::new(),
        }))
    }
}

/// A cache URL as it may be shown: without what stands between `://` and `@` (a user and
/// password), even when the URL does not parse.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            // A password may hold `/` (the reason such a URL does not parse): everything up to
            // the last `@` goes, whatever is taken with it.
            match rest.rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// `rel` (a narinfo's `URL`, a file name) if it stays inside the cache: relative, no `..`.
fn inside(rel: &str) -> Result<&str, CacheError> {
    if rel.starts_with('/') || rel.contains("://") || rel.split('/').any(|p| p == "..") {
        return Err(CacheError::BadUrl(rel.to_owned()));
    }
    Ok(rel)
}

/// The body of `r` if it holds at most `max` bytes (`None` if more), read as it comes.
async fn bounded_body(r: reqwest::Response, max: u64) -> Result<Option<Bytes>, reqwest::Error> {
    if r.content_length().is_some_and(|n| n > max) {
        return Ok(None);
    }
    let mut body = Vec::new();
    let mut chunks = r.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
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

/// Sends `url`'s body down `tx`, fetching the rest again after a failure (from where it broke,
/// with `Range`, or from the start skipping what was already sent when the cache ignores
/// `Range`), until it is all sent, the reader is gone, or `budget` has passed since the first
/// failure (then the reader gets the error).
async fn download(
    client: reqwest::Client,
    url: Url,
    tx: mpsc::Sender<io::Result<Bytes>>,
    budget: Duration,
) {
    let mut first_failure: Option<Instant> = None;
    let mut sent: u64 = 0;
    let mut attempt = 1;
    loop {
        let mut request = client.get(url.clone());
        if sent > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={sent}-"));
        }
        let (problem, headers) = match request.send().await {
            Ok(r) if r.status().is_success() => {
                let headers = r.headers().clone();
                // A 206 starts where it broke; a 200 starts over.
                let mut skip = if r.status() == StatusCode::PARTIAL_CONTENT {
                    0
                } else {
                    sent
                };
                let mut body = r.bytes_stream();
                let mut failed = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(mut chunk) => {
                            let drop = skip.min(chunk.len() as u64) as usize;
                            skip -= drop as u64;
                            chunk = chunk.slice(drop..);
                            if chunk.is_empty() {
                                continue;
                            }
                            sent += chunk.len() as u64;
                            if tx.send(Ok(chunk)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            failed = Some(transport_reason(&e));
                            break;
                        }
                    }
                }
                match failed {
                    None => return,
                    Some(reason) => (reason, Some(headers)),
                }
            }
            Ok(r) if is_temporary_status(r.status()) => (
                format!("answered {}", r.status()),
                Some(r.headers().clone()),
            ),
            Ok(r) => {
                let message = format!("{} answered {}", display_url(&url), r.status());
                let _ = tx.send(Err(io::Error::other(message))).await;
                return;
            }
            Err(e) => (transport_reason(&e), None),
        };
        let wait = backoff(attempt, headers.as_ref());
        let since = *first_failure.get_or_insert_with(Instant::now);
        if since.elapsed() + wait >= budget {
            let message = format!("cannot download {}: {problem}", display_url(&url));
            let _ = tx.send(Err(io::Error::other(message))).await;
            return;
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
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
        assert_eq!(
            redact("https://user:s3cret@cache.example/x"),
            "https://cache.example/x"
        );
        assert_eq!(redact("https://us@er:pw@host:99"), "https://host:99");
        assert_eq!(
            redact("https://ci:ab/cd@cache.example"),
            "https://cache.example"
        );
        assert_eq!(redact("file:///srv/cache"), "file:///srv/cache");
        let client = http_client(&RetryPolicy::default()).unwrap();
        let cache = Cache::new(
            "https://user:s3cret@cache.example/",
            &client,
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(cache.name, "https://cache.example");
        let e = Cache::new("https://user:s3cret@[bad", &client, RetryPolicy::default())
            .err()
            .unwrap();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
