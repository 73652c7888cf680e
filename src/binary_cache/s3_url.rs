//! `s3://BUCKET?region=R&endpoint=URL&scheme=http|https&profile=P`, Nix's URL of a binary
//! cache in an S3 bucket, parsed once into where the bucket is and how it is addressed: an
//! `endpoint` (MinIO, Ceph, R2, SeaweedFS; a host or a URL, `scheme` overriding its scheme) is
//! addressed path-style, `https://ENDPOINT/BUCKET/KEY`, as those servers need on a bare host;
//! AWS itself virtual-host style, `https://BUCKET.s3.REGION.amazonaws.com/KEY`.

use url::Url;

/// The region when the URL names none: Nix's default, as the AWS SDK's.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Why an `s3://` URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum S3UrlProblem {
    #[error("{0:?} names no bucket (s3://BUCKET?region=...)")]
    NoBucket(String),
    #[error("{url:?}: scheme={scheme:?} is neither http nor https")]
    Scheme { url: String, scheme: String },
    #[error("{url:?}: endpoint={endpoint:?} is not a host or an http(s) URL")]
    Endpoint { url: String, endpoint: String },
    #[error("{url:?}: unknown parameter {name:?} (region, endpoint, scheme and profile are read)")]
    Parameter { url: String, name: String },
}

/// Where an S3 binary cache is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub region: String,
    /// The server's URL (no bucket in it).
    pub endpoint: Url,
    /// Path-style (`ENDPOINT/BUCKET/KEY`) rather than virtual-host addressing.
    pub path_style: bool,
    /// `profile=`: the credentials come from this profile of the shared credentials file.
    pub profile: Option<String>,
}

/// Parameters of Nix's S3 store that change how objects are written, not read: accepted and
/// ignored, so a URL copied from a `nix copy --to` command works.
const WRITE_PARAMETERS: [&str; 7] = [
    "compression",
    "parallel-compression",
    "secret-key",
    "write-nar-listing",
    "ls-compression",
    "narinfo-compression",
    "multipart-upload",
];

impl S3Location {
    /// Parses an `s3://` URL as Nix reads it.
    pub fn parse(url: &str) -> Result<S3Location, S3UrlProblem> {
        let parsed = Url::parse(url).map_err(|_| S3UrlProblem::NoBucket(url.to_owned()))?;
        let bucket = match parsed.host_str() {
            Some(b) if parsed.scheme() == "s3" && !b.is_empty() => b.to_owned(),
            _ => return Err(S3UrlProblem::NoBucket(url.to_owned())),
        };
        let (mut region, mut endpoint, mut scheme, mut profile) = (None, None, None, None);
        for (name, value) in parsed.query_pairs() {
            let value = value.into_owned();
            match &*name {
                "region" => region = Some(value),
                "endpoint" => endpoint = Some(value),
                "scheme" => scheme = Some(value),
                "profile" => profile = Some(value).filter(|p| !p.is_empty()),
                n if WRITE_PARAMETERS.contains(&n) || n.starts_with("buffer-size") => {}
                n => {
                    return Err(S3UrlProblem::Parameter {
                        url: url.to_owned(),
                        name: n.to_owned(),
                    })
                }
            }
        }
        if let Some(s) = &scheme {
            if s != "http" && s != "https" {
                return Err(S3UrlProblem::Scheme {
                    url: url.to_owned(),
                    scheme: s.clone(),
                });
            }
        }
        let region = region
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let bad_endpoint = |e: &str| S3UrlProblem::Endpoint {
            url: url.to_owned(),
            endpoint: e.to_owned(),
        };
        let (endpoint, path_style) = match endpoint.filter(|e| !e.is_empty()) {
            Some(e) => {
                let written = if e.contains("://") {
                    e.clone()
                } else {
                    format!("{}://{e}", scheme.as_deref().unwrap_or("https"))
                };
                let mut u = Url::parse(&written).map_err(|_| bad_endpoint(&e))?;
                if let Some(s) = &scheme {
                    u.set_scheme(s).map_err(|_| bad_endpoint(&e))?;
                }
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(bad_endpoint(&e));
                }
                (u, true)
            }
            None => {
                let s = scheme.as_deref().unwrap_or("https");
                let u = Url::parse(&format!("{s}://s3.{region}.amazonaws.com"))
                    .map_err(|_| bad_endpoint(&region))?;
                (u, false)
            }
        };
        Ok(S3Location {
            bucket,
            region,
            endpoint,
            path_style,
            profile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL, and the bucket, region, endpoint, path-style and profile read from it.
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
        Option<&'static str>,
    );

    #[test]
    fn nix_s3_urls_are_read_as_nix_reads_them() {
        let table: [Row; 6] = [
            (
                "s3://cache",
                "cache",
                "us-east-1",
                "https://s3.us-east-1.amazonaws.com/",
                false,
                None,
            ),
            (
                "s3://cache?region=eu-west-1&profile=ci",
                "cache",
                "eu-west-1",
                "https://s3.eu-west-1.amazonaws.com/",
                false,
                Some("ci"),
            ),
            (
                "s3://cache?endpoint=minio.example.com:9000&region=r1",
                "cache",
                "r1",
                "https://minio.example.com:9000/",
                true,
                None,
            ),
            (
                "s3://cache?endpoint=127.0.0.1:8333&scheme=http",
                "cache",
                "us-east-1",
                "http://127.0.0.1:8333/",
                true,
                None,
            ),
            (
                "s3://cache?endpoint=http://127.0.0.1:8333",
                "cache",
                "us-east-1",
                "http://127.0.0.1:8333/",
                true,
                None,
            ),
            (
                "s3://cache?endpoint=https://r2.example&compression=zstd&secret-key=/k",
                "cache",
                "us-east-1",
                "https://r2.example/",
                true,
                None,
            ),
        ];
        for (url, bucket, region, endpoint, path_style, profile) in table {
            let l = S3Location::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(l.bucket, bucket, "{url}");
            assert_eq!(l.region, region, "{url}");
            assert_eq!(l.endpoint.as_str(), endpoint, "{url}");
            assert_eq!(l.path_style, path_style, "{url}");
            assert_eq!(l.profile.as_deref(), profile, "{url}");
        }
    }

    #[test]
    fn bad_s3_urls_are_refused() {
        for url in [
            "s3://",
            "s3:///x",
            "http://bucket",
            "s3://cache?scheme=ftp",
            "s3://cache?endpoint=ftp://host",
            "s3://cache?endpoint=http://",
            "s3://cache?regoin=eu-west-1",
        ] {
            assert!(S3Location::parse(url).is_err(), "{url} accepted");
        }
    }
}
