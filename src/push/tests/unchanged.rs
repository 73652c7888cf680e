//! The unchanged re-push decision: every blob known, and the same bytes as the tag names.

use super::digests;
use crate::destination::test_plan;
use crate::image::ManifestFormat;
use crate::known_layers::{KnownBlob, KnownLayer, LayerCache, LearntLayers};
use crate::layer::{Compression, LayerDigests, DEFAULT_ZSTD_LEVEL};
use crate::plan::ImagePlan;
use crate::push::documents::ImageSet;
use crate::push::unchanged::unchanged_images;

fn known_plan(compression: Compression) -> (ImagePlan, Vec<LayerDigests>) {
    let plan = test_plan::plan(compression);
    let d = plan
        .layers
        .iter()
        .map(|l| digests(l, compression))
        .collect();
    (plan, d)
}

#[test]
fn unchanged_decisions() {
    let (plan, d) = known_plan(Compression::default());
    let (mut arm, arm_d) = known_plan(Compression::default());
    arm.platform.architecture = "arm64".into();
    let current_of = |plans: &[&ImagePlan], layers: Vec<Vec<LayerDigests>>, multi_arch| {
        ImageSet {
            plans: plans.to_vec(),
            layers,
            multi_arch,
        }
        .top(ManifestFormat::Oci)
        .unwrap()
    };
    let current = current_of(&[&plan], vec![d.clone()], false);
    let index = current_of(&[&plan, &arm], vec![d.clone(), arm_d.clone()], true);
    let gzip = Compression::default().media_type();

    let tmp = tempfile::tempdir().unwrap();
    let cache = LayerCache::at(tmp.path().into());
    let empty = LayerCache::disabled();
    for (spec, digests) in plan.layers.iter().zip(&d) {
        cache
            .put(&spec.key, &KnownBlob::new(digests, gzip))
            .unwrap();
    }
    // Learnt from the tag's manifest rather than cached: the same decision.
    let learnt_from = |skip: usize| {
        let mut learnt = LearntLayers::default();
        for (spec, digests) in plan.layers.iter().zip(&d).skip(skip) {
            learnt.add(
                spec.key.clone(),
                KnownLayer {
                    layer: KnownBlob::new(digests, gzip),
                    repository: "app".into(),
                },
            );
        }
        learnt
    };
    let (learnt, one_short) = (learnt_from(0), learnt_from(1));
    let mut changed = current.to_vec();
    *changed.last_mut().unwrap() ^= 1;
    let none = LearntLayers::default();
    let oci = ManifestFormat::Oci;

    let decide =
        |plans: &[&ImagePlan], multi, cache: &LayerCache, learnt, format, current: &[u8]| {
            unchanged_images(plans, multi, cache, learnt, format, current)
                .map(|u| (u.known.len(), u.top))
        };
    // Every blob cached, the same bytes: unchanged, with the bytes the tag names.
    assert_eq!(
        decide(&[&plan], false, &cache, &none, oci, &current),
        Some((1, current.clone()))
    );
    assert!(decide(&[&plan], false, &empty, &learnt, oci, &current).is_some());
    // One layer unknown: it must be built to know, so not unchanged.
    assert!(decide(&[&plan], false, &empty, &one_short, oci, &current).is_none());
    // One byte of difference.
    assert!(decide(&[&plan], false, &cache, &none, oci, &changed).is_none());
    // The tag names the Docker form of it: the OCI one is not it.
    assert!(decide(
        &[&plan],
        false,
        &cache,
        &none,
        ManifestFormat::Docker,
        &current
    )
    .is_none());
    // zstd asked for, gzip blobs known: another image.
    let zstd_plan = test_plan::plan(Compression::Zstd {
        level: DEFAULT_ZSTD_LEVEL,
    });
    assert!(decide(&[&zstd_plan], false, &cache, &learnt, oci, &current).is_none());
    // Multi-arch: the index, once every platform's layers are known.
    for (spec, digests) in arm.layers.iter().zip(&arm_d) {
        cache
            .put(&spec.key, &KnownBlob::new(digests, gzip))
            .unwrap();
    }
    assert_eq!(
        decide(&[&plan, &arm], true, &cache, &none, oci, &index),
        Some((2, index.clone()))
    );
    assert!(decide(&[&plan, &arm], true, &cache, &none, oci, &current).is_none());
}
