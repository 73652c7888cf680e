//! What is attached to an image (OCI 1.1 referrers): asked of the registry's referrers API
//! (`GET /v2/<name>/referrers/<digest>`), else read from the distribution spec's fallback tag
//! (`sha256-<hex>`), which registries without the API hold. And the attached SBOM itself, for
//! `inspect --sbom`.

use bytes::Bytes;
use serde::Serialize;

use super::InspectError;
use crate::digest::Digest;
use crate::image::artifact::referrers_tag;
use crate::registry::Client;

/// The artifact types of an SBOM, SPDX first.
const SBOM_TYPES: [&str; 2] = ["application/spdx+json", "application/vnd.cyclonedx+json"];
/// Largest SBOM read.
const MAX_SBOM_BYTES: usize = 64 * 1024 * 1024;

/// One artifact attached to the image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub artifact_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// The artifacts attached to `subject`: the referrers API's answer, else the fallback tag's.
pub async fn referrers_of(
    client: &Client,
    subject: &Digest,
) -> Result<Vec<Referrer>, InspectError> {
    let index = match client.get_referrers(subject).await? {
        Some(index) => Some(index),
        None => {
            client
                .get_manifest(client.repository(), &referrers_tag(subject))
                .await?
        }
    };
    Ok(index.map(|b| parse(&b)).unwrap_or_default())
}

fn parse(index: &[u8]) -> Vec<Referrer> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        #[serde(default)]
        artifact_type: String,
        digest: String,
        #[serde(default)]
        size: u64,
    }
    serde_json::from_slice::<Index>(index)
        .map(|i| {
            i.manifests
                .into_iter()
                .filter_map(|e| {
                    Some(Referrer {
                        artifact_type: e.artifact_type,
                        digest: e.digest.parse().ok()?,
                        size: e.size,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The SBOM attached to `subject` (`shown` in errors): its artifact manifest's one layer.
pub async fn attached_sbom(
    client: &Client,
    subject: &Digest,
    shown: &str,
) -> Result<Bytes, InspectError> {
    let referrers = referrers_of(client, subject).await?;
    let sbom = SBOM_TYPES
        .iter()
        .find_map(|t| referrers.iter().find(|r| r.artifact_type == *t))
        .ok_or_else(|| InspectError::NoSbom(shown.to_owned()))?;
    let manifest = client
        .get_manifest(client.repository(), &sbom.digest.to_string())
        .await?
        .ok_or_else(|| InspectError::NoSbom(shown.to_owned()))?;
    let layer = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["layers"][0]["digest"].as_str()?.parse::<Digest>().ok())
        .ok_or_else(|| InspectError::NoSbom(shown.to_owned()))?;
    client
        .get_blob(&layer, MAX_SBOM_BYTES)
        .await?
        .ok_or_else(|| InspectError::NoSbom(shown.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_index_of_referrers_and_skips_what_it_cannot() {
        let d = Digest::of(b"x");
        let index = format!(
            r#"{{"manifests":[{{"artifactType":"application/spdx+json","digest":"{d}","size":5}},{{"digest":"not-a-digest"}}]}}"#
        );
        assert_eq!(
            parse(index.as_bytes()),
            [Referrer {
                artifact_type: "application/spdx+json".into(),
                digest: d,
                size: 5
            }]
        );
        assert!(parse(b"not json").is_empty());
    }
}
