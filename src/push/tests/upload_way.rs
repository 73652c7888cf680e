//! The way a layer is uploaded: `--upload`, a blob known beforehand, what the host refused.

use super::digests;
use crate::destination::test_plan;
use crate::layer::Compression;
use crate::push::upload::{choose_way, Way};
use crate::registry::HostFacts;
use crate::request::UploadMode;

#[tokio::test]
async fn upload_way_choices() {
    let spec = test_plan::layer(5, true);
    let compression = Compression::default();
    let d = digests(&spec, compression);
    let facts = |length_required: Option<u16>, body_cap: Option<u64>| HostFacts {
        length_required,
        body_cap,
        docker_media_types: false,
    };
    let small_cap = d.size / 2;
    // (mode, blob known beforehand, host facts, expected way)
    let cases = [
        (
            UploadMode::Streaming,
            true,
            facts(None, None),
            Way::Streamed,
        ),
        (
            UploadMode::Streaming,
            false,
            facts(Some(411), None),
            Way::Streamed,
        ),
        (
            UploadMode::Monolithic,
            true,
            facts(None, None),
            Way::Whole(d.clone()),
        ),
        // Hashed first, to know what to announce.
        (
            UploadMode::Monolithic,
            false,
            facts(None, None),
            Way::Whole(d.clone()),
        ),
        (
            UploadMode::Auto,
            true,
            facts(None, None),
            Way::Whole(d.clone()),
        ),
        (UploadMode::Auto, false, facts(None, None), Way::Streamed),
        // A known blob over the host's cap is not sent whole.
        (
            UploadMode::Auto,
            true,
            facts(None, Some(small_cap)),
            Way::Streamed,
        ),
        // 411 (Artifact Registry): hashed, then whole.
        (
            UploadMode::Auto,
            false,
            facts(Some(411), None),
            Way::Whole(d.clone()),
        ),
        // 411 with a cap under the blob: chunks under the cap.
        (
            UploadMode::Auto,
            false,
            facts(Some(411), Some(small_cap)),
            Way::Chunks(small_cap),
        ),
        // 400 to a streamed PATCH (lengths wanted, chunks taken): chunks of the default size.
        (
            UploadMode::Auto,
            false,
            facts(Some(400), None),
            Way::Chunks(crate::registry::DEFAULT_CHUNK),
        ),
    ];
    for (mode, known_before, facts, expected) in cases {
        let mut known = known_before.then(|| d.clone());
        let way = choose_way(mode, &mut known, &facts, &spec, compression)
            .await
            .unwrap();
        assert_eq!(way, expected, "{mode:?}, known {known_before}, {facts:?}");
        if matches!(way, Way::Whole(_)) {
            // A layer hashed to learn its blob is remembered for the attempts after.
            assert_eq!(known.as_ref(), Some(&d));
        }
    }
}
