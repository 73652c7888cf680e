//! Store paths read from Nix binary caches (`--substituter`): a second source of store paths
//! beside the local store, behind the same seam ([`crate::layer::NarSource`]). A closure is
//! learnt from narinfos alone (hashes, sizes, references, signatures checked against the
//! trusted keys), so layer keys, layering and skip decisions need no NAR; a layer the registry
//! lacks streams its paths' NARs, checked against their narinfos as they are read. Nothing is
//! written to the local store.

mod checked_nar;
mod fetch;
#[cfg(test)]
mod fetch_tests;
mod listing;
mod nar_url;
mod narinfo;
mod nix_config;
mod priority;
mod s3;
mod s3_credentials;
mod s3_url;
mod trust;
mod url_credentials;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};

pub use fetch::Cache;
pub use nar_url::NarUrlProblem;
pub use narinfo::{NarCompression, NarInfo};
pub use s3_url::{S3Location, S3UrlProblem};
pub use trust::{BadKey, SignatureProblem, TrustedKeys};
pub use url_credentials::redact;

use crate::http::{HttpError, RetryPolicy, TlsOptions};
use crate::layer::NarSource;
use crate::nix::{Closure, NixError, StorePath};

/// Narinfos fetched at once while a closure is learnt.
const NARINFOS_IN_FLIGHT: usize = 16;
/// Largest NAR of a store path read whole (a dockerTools conf.json).
const MAX_SMALL_FILE: u64 = 16 * 1024 * 1024;
/// Largest narinfo read (they are a few hundred bytes).
const MAX_NARINFO: u64 = 1024 * 1024;
/// Largest `.ls` listing read (a path of a hundred thousand files lists in about 10 MB).
const MAX_LISTING: u64 = 64 * 1024 * 1024;

/// The caches to read from and whom to trust, as the user gave them (or Nix is configured).
/// Its `Debug` shows the URLs without credentials and the keys by name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SubstituterSettings {
    /// `--substituter` URLs, in order; empty: Nix's own `substituters`.
    pub urls: Vec<String>,
    /// `--trusted-public-key`s (`NAME:BASE64`); with no `--substituter`, Nix's are added.
    pub trusted_public_keys: Vec<String>,
    /// `false` with `--no-check-sigs`: unsigned narinfos are taken.
    pub check_sigs: bool,
}

impl std::fmt::Debug for SubstituterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubstituterSettings")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact(u)).collect::<Vec<_>>(),
            )
            // Names only: a key given by mistake may be a secret one.
            .field(
                "trusted_public_keys",
                &self
                    .trusted_public_keys
                    .iter()
                    .map(|k| k.split_once(':').map_or("?", |(name, _)| name))
                    .collect::<Vec<_>>(),
            )
            .field("check_sigs", &self.check_sigs)
            .finish()
    }
}

/// What went wrong reading from the binary caches.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path} is not in the local store, and no binary cache is configured: give --substituter URL (and --trusted-public-key NAME:KEY)")]
    NoCaches { path: String },
    #[error("{0:?} is not a binary cache URL")]
    BadUrl(String),
    #[error(
        "{1}: {0}:// binary caches are not supported (http://, https://, s3:// and file:// are)"
    )]
    Scheme(String, String),
    #[error(transparent)]
    S3Url(#[from] S3UrlProblem),
    #[error("binary cache s3://{bucket}: no S3 credentials found ({})", match profile {
        Some(p) => format!("profile {p} of AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials"),
        None => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE or profile= in ~/.aws/credentials".into(),
    })]
    S3NoCredentials {
        bucket: String,
        profile: Option<String>,
    },
    #[error("binary cache s3://{bucket}: {reason}")]
    S3Bucket { bucket: String, reason: String },
    #[error("binary cache s3://{bucket}: no such bucket at {endpoint}")]
    S3NoBucket { bucket: String, endpoint: String },
    #[error("binary cache s3://{bucket}: the request was refused ({status} {code}): check the access key and its secret")]
    S3Refused {
        bucket: String,
        status: u16,
        code: String,
    },
    #[error(transparent)]
    Http(HttpError),
    #[error("cannot reach binary cache {cache}: {reason}")]
    Unreachable { cache: String, reason: String },
    #[error("{url} is larger than {max} bytes")]
    TooLarge { url: String, max: u64 },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("cannot read {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is in none of the binary caches ({caches})")]
    Missing { path: String, caches: String },
    #[error("{path} from {cache} is refused: signature check failed: {problem}")]
    Untrusted {
        path: String,
        cache: String,
        problem: SignatureProblem,
    },
    #[error("{cache} has a bad narinfo for {path}: {reason}")]
    BadNarInfo {
        path: String,
        cache: String,
        reason: String,
    },
    #[error("cannot read {path} from {cache}")]
    Nar {
        path: String,
        cache: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Key(#[from] BadKey),
    #[error(transparent)]
    Nix(#[from] NixError),
}

/// The caches of a run, in order, and the keys their narinfos must be signed with.
pub struct BinaryCaches {
    caches: Vec<Arc<Cache>>,
    /// Each cache's base URL, which its narinfos' `URL`s must stay below.
    bases: Vec<url::Url>,
    keys: TrustedKeys,
    check_sigs: bool,
    /// Substituters of Nix's configuration that are not binary caches nixpush reads.
    pub passed_over: Vec<String>,
}

impl BinaryCaches {
    /// The caches `settings` name; none named: those Nix is configured with (`nix show-config`),
    /// with its trusted keys and `require-sigs`, in their `Priority` order, as Nix itself would
    /// substitute `path`.
    /// `tls` applies to every HTTPS cache, with what certs.d holds for its host.
    pub async fn open(
        settings: &SubstituterSettings,
        policy: RetryPolicy,
        tls: &TlsOptions,
        path: &Path,
    ) -> Result<BinaryCaches, CacheError> {
        let mut urls = settings.urls.clone();
        let mut keys = settings.trusted_public_keys.clone();
        let mut check_sigs = settings.check_sigs;
        let mut passed_over = Vec::new();
        let from_nix = urls.is_empty();
        let mut tls = tls.clone();
        if from_nix {
            let nix = nix_config::nix_substituters().await?;
            // Nix's own caches are trusted as Nix trusts them: its CA file too, when no
            // --ca-cert is given.
            if tls.ca_cert.is_none() {
                tls.ca_cert = nix.ssl_cert_file;
            }
            // Nix's own list may name stores nixpush cannot read (ssh://, daemon): those
            // are passed over, as Nix passes over a substituter it cannot reach.
            (urls, passed_over) = nix.substituters.into_iter().partition(|u| is_cache_url(u));
            keys.extend(nix.trusted_public_keys);
            check_sigs &= nix.require_sigs;
        }
        if urls.is_empty() {
            return Err(CacheError::NoCaches {
                path: path.display().to_string(),
            });
        }
        let mut passed_over: Vec<String> = passed_over.iter().map(|u| redact(u)).collect();
        let mut caches = Vec::with_capacity(urls.len());
        let mut usable = Vec::with_capacity(urls.len());
        let mut unusable = None;
        for url in urls {
            match Cache::new(&url, &tls, policy) {
                Ok(cache) => {
                    caches.push(Arc::new(cache));
                    usable.push(url);
                }
                // One of Nix's own that cannot be used here (an S3 bucket without credentials)
                // is passed over, as Nix passes over a substituter it cannot use, unless none
                // is left; one the request names is an error.
                Err(e) if from_nix => {
                    passed_over.push(format!("{} ({e})", redact(&url)));
                    unusable.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let (true, Some(e)) = (usable.is_empty(), unusable) {
            return Err(e);
        }
        let urls = usable;
        let bases: Vec<url::Url> = urls
            .iter()
            .map(|u| nar_url::cache_base(u).ok_or_else(|| CacheError::BadUrl(redact(u))))
            .collect::<Result<_, _>>()?;
        let (caches, bases) = if from_nix {
            by_priority(&urls, caches, bases).await
        } else {
            (caches, bases)
        };
        Ok(BinaryCaches {
            caches,
            bases,
            keys: TrustedKeys::parse(&keys)?,
            check_sigs,
            passed_over,
        })
    }

    /// The caches' URLs, for messages.
    pub fn names(&self) -> String {
        self.caches
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The closure of `tops` as the caches describe it: every narinfo fetched (a bounded number
    /// at once) and its signature checked; each path from the first cache that has it signed.
    pub async fn closure(&self, tops: &[PathBuf]) -> Result<CachedClosure, CacheError> {
        let mut found: BTreeMap<PathBuf, (usize, NarInfo)> = BTreeMap::new();
        let mut asked: BTreeSet<PathBuf> = tops.iter().cloned().collect();
        let mut pending = FuturesUnordered::new();
        let mut queue: Vec<PathBuf> = tops.to_vec();
        loop {
            while pending.len() < NARINFOS_IN_FLIGHT {
                let Some(path) = queue.pop() else { break };
                pending.push(async move {
                    let located = self.locate(&path).await;
                    (path, located)
                });
            }
            let Some((path, located)) = pending.next().await else {
                break;
            };
            let (cache, info) = located?;
            for r in info.others() {
                if asked.insert(r.clone()) {
                    queue.push(r.clone());
                }
            }
            found.insert(path, (cache, info));
        }
        let closure = Closure {
            paths: found
                .values()
                .map(|(_, info)| {
                    let sp = StorePath {
                        path: info.store_path.clone(),
                        nar_hash: info.nar_hash.sri(),
                        nar_size: info.nar_size,
                        references: info.others().cloned().collect(),
                    };
                    (sp.path.clone(), sp)
                })
                .collect(),
        };
        Ok(CachedClosure {
            caches: self.caches.clone(),
            infos: found,
            closure,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The narinfo of `path` from the first cache that has it, trusted.
    async fn locate(&self, path: &Path) -> Result<(usize, NarInfo), CacheError> {
        let shown = path.display().to_string();
        let hash = hash_part(path);
        // A cache that cannot be reached, or whose narinfo is not trusted, is passed over for
        // the next; if none has the path, the first such problem is the answer.
        let mut problem = None;
        for (i, cache) in self.caches.iter().enumerate() {
            let text = match cache.get(&format!("{hash}.narinfo"), MAX_NARINFO).await {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(e) => {
                    problem.get_or_insert(e);
                    continue;
                }
            };
            let bad = |reason: String| CacheError::BadNarInfo {
                path: shown.clone(),
                cache: cache.name.clone(),
                reason,
            };
            let info = NarInfo::parse(&String::from_utf8_lossy(&text)).map_err(bad)?;
            if info.store_path != path {
                return Err(bad(format!("it describes {}", info.store_path.display())));
            }
            // Checked before anything is fetched from it: the URL is not signed.
            nar_url::check_nar_url(&self.bases[i], &info.url).map_err(|e| bad(e.to_string()))?;
            if self.check_sigs {
                if let Err(p) = self.keys.check(&info) {
                    problem.get_or_insert(CacheError::Untrusted {
                        path: shown.clone(),
                        cache: cache.name.clone(),
                        problem: p,
                    });
                    continue;
                }
            }
            return Ok((i, info));
        }
        Err(problem.unwrap_or_else(|| CacheError::Missing {
            path: shown,
            caches: self.names(),
        }))
    }
}

/// Nix's configured caches in the order Nix asks them: by the `Priority` of each one's
/// `nix-cache-info` (or its URL's `priority=`), fetched all at once; a cache without one (or
/// not answering now: its own requests will say so) has Nix's default.
async fn by_priority(
    urls: &[String],
    caches: Vec<Arc<Cache>>,
    bases: Vec<url::Url>,
) -> (Vec<Arc<Cache>>, Vec<url::Url>) {
    let infos = futures_util::future::join_all(
        caches
            .iter()
            .map(|c| async move { c.get("nix-cache-info", MAX_NARINFO).await.ok().flatten() }),
    )
    .await;
    let priorities: Vec<u32> = urls
        .iter()
        .zip(&infos)
        .map(|(url, info)| {
            let text = info
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            priority::priority(url, text.as_deref())
        })
        .collect();
    priority::asking_order(&priorities)
        .into_iter()
        .map(|i| (caches[i].clone(), bases[i].clone()))
        .unzip()
}

/// Whether `url` names a binary cache nixpush reads: `http://`, `https://`, `s3://` or
/// `file://`.
pub fn is_cache_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "s3" | "file"))
}

/// `<hash>` of `/nix/store/<hash>-<name>`: what a cache names a path's files by.
fn hash_part(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.split('-').next().unwrap_or_default().to_owned()
}

/// A closure learnt from the caches, and where each path's NAR is.
pub struct CachedClosure {
    caches: Vec<Arc<Cache>>,
    infos: BTreeMap<PathBuf, (usize, NarInfo)>,
    pub closure: Closure,
    runtime: tokio::runtime::Handle,
}

impl CachedClosure {
    /// The system a cache says `path` was built for, when it says.
    pub fn system_of(&self, path: &Path) -> Option<&str> {
        self.infos.get(path)?.1.system.as_deref()
    }

    /// Whether `rel` is in store path `path`, from the cache's listing: `None` when the cache
    /// has no listing or it cannot tell (no NAR is fetched for this).
    pub async fn holds(&self, path: &Path, rel: &str) -> Result<Option<bool>, CacheError> {
        let Some((cache, _)) = self.infos.get(path) else {
            return Ok(None);
        };
        // A listing that cannot be had is no error: the NAR can still tell.
        let json = self.caches[*cache]
            .get(&format!("{}.ls", hash_part(path)), MAX_LISTING)
            .await
            .unwrap_or(None);
        Ok(json
            .and_then(|j| listing::parse(&j))
            .and_then(|root| listing::holds(&root, rel)))
    }

    /// The contents of store path `path`, a single small file, read from its NAR.
    pub async fn read_file(&self, path: &Path) -> Result<Vec<u8>, CacheError> {
        // The NAR is checked against its narinfo's size as it is read: bounding that bounds
        // what is kept.
        if let Some((cache, info)) = self.infos.get(path) {
            if info.nar_size > MAX_SMALL_FILE {
                return Err(CacheError::TooLarge {
                    url: format!("{}/{}", self.caches[*cache].name, info.url),
                    max: MAX_SMALL_FILE,
                });
            }
        }
        let nars = self.nars(BTreeMap::new());
        let owned = path.to_owned();
        let read = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let nar = nars.open_nar(&owned)?;
            let mut out = Vec::new();
            crate::layer::copy_nar_member(nar, b"", &mut out)?;
            Ok(out)
        })
        .await
        .map_err(|_| io::Error::other("reading the NAR stopped"))
        .and_then(|r| r);
        read.map_err(|source| CacheError::Nar {
            path: path.display().to_string(),
            cache: self.cache_of(path),
            source,
        })
    }

    fn cache_of(&self, path: &Path) -> String {
        self.infos
            .get(path)
            .map(|(c, _)| self.caches[*c].name.clone())
            .unwrap_or_default()
    }

    /// The NARs of the closure's paths, for layers: `must_hold` names what a path's NAR must
    /// hold (what no listing could confirm beforehand).
    pub fn nars(&self, must_hold: BTreeMap<PathBuf, Vec<String>>) -> Arc<dyn NarSource> {
        Arc::new(CacheNars {
            caches: self.caches.clone(),
            infos: self.infos.clone(),
            runtime: self.runtime.clone(),
            must_hold,
        })
    }
}

/// The closure's NARs, read from the caches as layers are written.
struct CacheNars {
    caches: Vec<Arc<Cache>>,
    infos: BTreeMap<PathBuf, (usize, NarInfo)>,
    runtime: tokio::runtime::Handle,
    must_hold: BTreeMap<PathBuf, Vec<String>>,
}

impl NarSource for CacheNars {
    fn open_nar(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        let (cache, info) = self.infos.get(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "it is not in the closure read from the binary caches",
            )
        })?;
        let cache = &self.caches[*cache];
        let compressed = cache.open(&info.url, &self.runtime)?;
        checked_nar::checked(info, &cache.name, compressed)
    }

    fn must_hold(&self, path: &Path) -> Vec<String> {
        self.must_hold.get(path).cloned().unwrap_or_default()
    }
}
