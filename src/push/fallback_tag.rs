//! Adding an entry to a tag's document without losing a concurrent writer's: an artifact to the
//! referrers tag schema's fallback tag (`sha256-<hex of the subject>`), a signature to cosign's
//! `.sig` tag, an attestation to `.att`. The distribution spec has no atomic update of a tag:
//! two pushes attaching to one image at once both read the document, both add their own entry
//! and both write, and the second write drops the first's entry. So after
//! writing, a writer waits for other writes in flight to land, reads the index back, and merges
//! again while its own entry is missing, for a bounded number of rounds. The wait is twice this
//! writer's own read-and-write time (others' take about as long), never under a floor, with a
//! little jitter so two writers fall out of step.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::remote::Remote;
use super::PushError;
use crate::digest::Digest;
use crate::image::artifact::{referrers_tag, with_referrer, Described};
use crate::image::OCI_INDEX;

/// Most rounds of merging before giving up: each round is one read and one write.
const MAX_ROUNDS: u32 = 10;
/// The least wait before reading the index back: what a loopback registry needs.
const SETTLE_FLOOR: Duration = Duration::from_millis(100);

/// What one writer makes of a tag's current document: the document to write, its media type,
/// and blobs it needs in the registry first.
pub(super) struct Merged {
    pub document: Bytes,
    pub media_type: &'static str,
    pub blobs: Vec<Bytes>,
}

/// Writes under `tag` what `merge` makes of the tag's current document, and reads it back (after
/// other writes in flight have landed) until `merge` has nothing to add, for a bounded number of
/// rounds; whether anything was written. `entry` names this writer's entry in errors, and seeds
/// its jitter.
pub(super) async fn merge_into_tag(
    client: &impl Remote,
    tag: &str,
    entry: &Digest,
    merge: impl Fn(Option<&[u8]>) -> Option<Merged>,
) -> Result<bool, PushError> {
    for round in 0..MAX_ROUNDS {
        let started = Instant::now();
        let current = client.get_manifest(client.repository(), tag).await?;
        let Some(merged) = merge(current.as_deref()) else {
            // There (after a write: and still there once other writes in flight landed).
            return Ok(round > 0);
        };
        for blob in merged.blobs {
            client.ensure_blob(&Digest::of(&blob), blob).await?;
        }
        let digest = Digest::of(&merged.document);
        client
            .put_manifest(tag, merged.media_type, merged.document, &digest)
            .await?;
        tokio::time::sleep(settle(started.elapsed(), entry, round)).await;
    }
    Err(PushError::ReferrerNotListed {
        tag: tag.to_owned(),
        artifact: entry.clone(),
        rounds: MAX_ROUNDS,
    })
}

/// Lists `artifact` (of `artifact_type`) in the fallback tag of `subject`.
pub(super) async fn list_in_fallback_tag(
    client: &impl Remote,
    subject: &Digest,
    artifact: &Described,
    artifact_type: &str,
) -> Result<(), PushError> {
    let tag = referrers_tag(subject);
    merge_into_tag(client, &tag, &artifact.digest, |current| {
        with_referrer(current, artifact, artifact_type).map(|index| Merged {
            document: Bytes::from(index),
            media_type: OCI_INDEX,
            blobs: Vec::new(),
        })
    })
    .await
    .map(|_| ())
}

/// How long to wait before reading the index back, after a read and write that took `took`.
fn settle(took: Duration, digest: &Digest, round: u32) -> Duration {
    // Jitter from the artifact's own digest and the round: writers of different artifacts
    // wait differently, and no clock or random source is needed.
    let seed = digest.hex().bytes().fold(round as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    });
    let base = (took * 2).max(SETTLE_FLOOR);
    base + base.mul_f64((seed % 100) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::OCI_MANIFEST;
    use crate::push::tests::FakeRemote;

    fn artifact(name: &[u8]) -> Described {
        Described {
            media_type: OCI_MANIFEST.to_owned(),
            digest: Digest::of(name),
            size: name.len() as u64,
        }
    }

    fn listed(remote: &FakeRemote, subject: &Digest) -> Vec<String> {
        let key = ("app".to_owned(), referrers_tag(subject));
        let index = remote.manifests.lock().unwrap().get(&key).cloned().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&index).unwrap();
        v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn two_writers_at_once_both_stay_listed() {
        // Every request takes 30 ms: both writers read the empty index before either writes,
        // which loses one entry unless it is read back and merged again.
        let remote = FakeRemote {
            latency: Duration::from_millis(30),
            ..FakeRemote::new("app")
        };
        let subject = Digest::of(b"image");
        let (a, b) = (artifact(b"spdx"), artifact(b"cyclonedx"));
        let (first, second) = tokio::join!(
            list_in_fallback_tag(&remote, &subject, &a, "application/spdx+json"),
            list_in_fallback_tag(&remote, &subject, &b, "application/vnd.cyclonedx+json"),
        );
        first.unwrap();
        second.unwrap();
        let mut got = listed(&remote, &subject);
        got.sort();
        let mut expected = vec![a.digest.to_string(), b.digest.to_string()];
        expected.sort();
        assert_eq!(got, expected);
        // Both read the empty index at once and one write was lost: merged again.
        let puts = remote
            .requests()
            .iter()
            .filter(|r| r.starts_with("PUT"))
            .count();
        assert!(puts >= 3, "{:?}", remote.requests());
    }

    #[tokio::test(start_paused = true)]
    async fn an_artifact_already_listed_is_not_written_again() {
        let remote = FakeRemote::new("app");
        let subject = Digest::of(b"image");
        let a = artifact(b"spdx");
        list_in_fallback_tag(&remote, &subject, &a, "application/spdx+json")
            .await
            .unwrap();
        let before = remote.requests().len();
        list_in_fallback_tag(&remote, &subject, &a, "application/spdx+json")
            .await
            .unwrap();
        let after = remote.requests();
        assert_eq!(after.len(), before + 1, "one read, no write: {after:?}");
        assert_eq!(listed(&remote, &subject), [a.digest.to_string()]);
    }

    #[test]
    fn the_wait_is_twice_the_round_never_under_the_floor() {
        let d = Digest::of(b"x");
        let short = settle(Duration::from_millis(1), &d, 0);
        assert!(
            short >= SETTLE_FLOOR && short < SETTLE_FLOOR * 2,
            "{short:?}"
        );
        let long = settle(Duration::from_secs(1), &d, 0);
        assert!(
            long >= Duration::from_secs(2) && long < Duration::from_secs(4),
            "{long:?}"
        );
    }
}
