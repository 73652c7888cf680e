//! A binary cache in an S3 bucket: each file a pre-signed `GET` (AWS Signature V4 in the query,
//! by `rusty-s3`), sent over the same HTTP layer as every other cache, so TLS, stall timeouts,
//! retries and resumed NAR downloads are those of an `https://` cache. What S3 answers instead
//! of a file is read from its error body: a missing key (or a key hidden by `AccessDenied`, as
//! Nix takes it) is "not in this cache"; a missing bucket and a refused signature are errors
//! naming the bucket.

use std::time::Duration;

use rusty_s3::actions::S3Action as _;
use rusty_s3::{Bucket, Credentials, UrlStyle};
use url::Url;

use super::s3_credentials::find_credentials;
use super::s3_url::S3Location;
use super::CacheError;

/// How long a pre-signed URL is valid: it is signed just before its request is sent, and a NAR
/// download resumed later within `--retry-for` is signed again.
const PRESIGNED_FOR: Duration = Duration::from_secs(60 * 60);

/// Largest S3 error body read (they are a few hundred bytes of XML).
pub const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The bucket of an `s3://` cache and the credentials its requests are signed with.
pub struct S3Signer {
    bucket: Bucket,
    credentials: Credentials,
}

impl S3Signer {
    /// The signer for `location`, with credentials found in `env` (see `s3_credentials`).
    pub fn new(
        location: &S3Location,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Signer, CacheError> {
        let (credentials, _source) = find_credentials(location.profile.as_deref(), env)
            .ok_or_else(|| CacheError::S3NoCredentials {
                bucket: location.bucket.clone(),
                profile: location.profile.clone(),
            })?;
        let style = if location.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            location.endpoint.clone(),
            style,
            location.bucket.clone(),
            location.region.clone(),
        )
        .map_err(|e| CacheError::S3Bucket {
            bucket: location.bucket.clone(),
            reason: format!("{e:?}"),
        })?;
        Ok(S3Signer {
            bucket,
            credentials,
        })
    }

    /// The bucket's URL, every object below it.
    pub fn base(&self) -> &Url {
        self.bucket.base_url()
    }

    /// A `GET` of the object `key`, pre-signed now.
    pub fn presign(&self, key: &str) -> Url {
        self.bucket
            .get_object(Some(&self.credentials), key)
            .sign(PRESIGNED_FOR)
    }

    /// What a `403` or `404` with `body` means: `None` for a file the bucket does not have.
    pub fn refusal(&self, status: u16, body: &[u8]) -> Option<CacheError> {
        let bucket = self.bucket.name().to_owned();
        match (status, error_code(body).as_deref()) {
            (404, Some("NoSuchBucket")) => Some(CacheError::S3NoBucket {
                bucket,
                endpoint: self.base().origin().ascii_serialization(),
            }),
            (404, _) | (403, Some("AccessDenied")) => None,
            (_, code) => Some(CacheError::S3Refused {
                bucket,
                status,
                code: code.unwrap_or("no error code").to_owned(),
            }),
        }
    }
}

/// The `<Code>` of an S3 error body.
fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    code.chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> S3Signer {
        let location =
            S3Location::parse("s3://cache?endpoint=http://127.0.0.1:9000&region=r1").unwrap();
        S3Signer::new(&location, &|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKID".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("the-secret".into()),
            _ => None,
        })
        .unwrap()
    }

    fn body(code: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
            .into_bytes()
    }

    #[test]
    fn s3_answers_say_absent_missing_bucket_or_refused() {
        let s = signer();
        assert!(s.refusal(404, &body("NoSuchKey")).is_none());
        assert!(s.refusal(404, b"").is_none());
        assert!(s.refusal(403, &body("AccessDenied")).is_none());
        let missing = s.refusal(404, &body("NoSuchBucket")).unwrap().to_string();
        assert!(missing.contains("s3://cache"), "{missing}");
        assert!(missing.contains("no such bucket"), "{missing}");
        for code in ["SignatureDoesNotMatch", "InvalidAccessKeyId"] {
            let refused = s.refusal(403, &body(code)).unwrap().to_string();
            assert!(refused.contains("s3://cache"), "{refused}");
            assert!(refused.contains(code), "{refused}");
        }
        let odd = s
            .refusal(403, b"<Code>no<script></Code>")
            .unwrap()
            .to_string();
        assert!(odd.contains("no error code"), "{odd}");
    }

    #[test]
    fn a_presigned_url_is_path_style_and_carries_no_secret() {
        let url = signer().presign("nar/abc.nar.xz");
        assert_eq!(url.path(), "/cache/nar/abc.nar.xz");
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        let query = url.query().unwrap();
        assert!(query.contains("X-Amz-Signature="), "{query}");
        assert!(query.contains("AKID"), "{query}");
        assert!(!query.contains("the-secret"), "{query}");
    }
}
