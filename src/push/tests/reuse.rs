//! Reuse decisions: a known blob skipped, mounted, or the layer built; `--verify`.

use super::{digests, FakeRemote, Heard};
use crate::destination::test_plan;
use crate::known_layers::{KnownBlob, KnownLayer, LayerCache, LearntLayers};
use crate::layer::{Compression, LayerDigests, LayerSpec, DEFAULT_ZSTD_LEVEL};
use crate::outcome::{LayerAction, LayerReport};
use crate::progress::Warning;
use crate::push::reuse::Reuse;
use crate::push::upload_options::UploadOptions;
use crate::request::UploadMode;

fn options(cache: LayerCache, learnt: LearntLayers) -> UploadOptions {
    UploadOptions {
        compression: Compression::default(),
        jobs: 1,
        cache,
        learnt,
        verify: false,
        mount_from: Vec::new(),
        upload: UploadMode::Auto,
        stop: Default::default(),
    }
}

/// What a reuse decision gave: the report (if reused), the session a declined mount left for
/// the upload, the requests made, the warnings said.
struct Decided {
    report: Option<LayerReport>,
    offered: Option<u32>,
    requests: Vec<String>,
    warnings: Vec<Warning>,
}

async fn decide(remote: &FakeRemote, spec: &LayerSpec, options: &UploadOptions) -> Decided {
    let heard = Heard::default();
    let (mut rebuilt, mut offered) = (None, None);
    let cached = options.cache.entry(&spec.key);
    let mut reuse = Reuse {
        client: remote,
        spec,
        index: 0,
        options,
        reporter: &heard,
        rebuilt: &mut rebuilt,
        offered: &mut offered,
    };
    let report = reuse.known_blob(cached.as_ref()).await.unwrap();
    Decided {
        report,
        offered,
        requests: remote.requests(),
        warnings: heard.0.into_inner().unwrap(),
    }
}

fn gzip_blob(d: &LayerDigests) -> KnownBlob {
    KnownBlob::new(d, Compression::default().media_type())
}

#[tokio::test]
async fn a_cached_blob_the_registry_has_is_skipped_after_one_head() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = test_plan::layer(1, false);
    let d = digests(&spec, Compression::default());
    let cache = LayerCache::at(tmp.path().into());
    cache.put(&spec.key, &gzip_blob(&d)).unwrap();

    let remote = FakeRemote::new("app").with_blob(&d.digest, d.size);
    let got = decide(&remote, &spec, &options(cache, Default::default())).await;
    let report = got.report.expect("reused");
    assert_eq!(report.action, LayerAction::Skipped);
    assert_eq!(report.digests, d);
    assert_eq!(report.bytes_sent, 0);
    assert_eq!(got.requests, [format!("HEAD {}", d.digest)]);
}

#[tokio::test]
async fn reuse_decisions() {
    // (what the case is, where the blob is known from, the registry, mount answer, expected
    // action, expected requests (d = the blob's digest), a declined session left for the upload)
    struct Case {
        name: &'static str,
        cached_seen: Option<&'static str>,
        learnt_in: Option<&'static str>,
        here_size: Option<i64>,
        elsewhere: Option<&'static str>,
        mount_from: &'static [&'static str],
        mounts_link: bool,
        action: Option<LayerAction>,
        requests: &'static [&'static str],
        offered: bool,
    }
    let cases = [
        Case {
            name: "cached, present with its size",
            cached_seen: Some("fake.example/app"),
            learnt_in: None,
            here_size: Some(0),
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: Some(LayerAction::Skipped),
            requests: &["HEAD d"],
            offered: false,
        },
        Case {
            name: "cached, present with another size: a damaged entry, built again",
            cached_seen: Some("fake.example/app"),
            learnt_in: None,
            here_size: Some(7),
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: None,
            requests: &["HEAD d"],
            offered: false,
        },
        Case {
            name: "cached, absent here, seen in another repository: mounted",
            cached_seen: Some("fake.example/base"),
            learnt_in: None,
            here_size: None,
            elsewhere: Some("base"),
            mount_from: &[],
            mounts_link: true,
            action: Some(LayerAction::Mounted),
            requests: &["HEAD d", "MOUNT d from base"],
            offered: false,
        },
        Case {
            name: "cached, absent, --mount-from tried before where the cache saw it",
            cached_seen: Some("fake.example/seen"),
            learnt_in: None,
            here_size: None,
            elsewhere: Some("named"),
            mount_from: &["named"],
            mounts_link: true,
            action: Some(LayerAction::Mounted),
            requests: &["HEAD d", "MOUNT d from named"],
            offered: false,
        },
        Case {
            name: "cached, absent, the mount declined: its session is kept for the upload",
            cached_seen: Some("fake.example/base"),
            learnt_in: None,
            here_size: None,
            elsewhere: Some("base"),
            mount_from: &[],
            mounts_link: false,
            action: None,
            requests: &["HEAD d", "MOUNT d from base"],
            offered: true,
        },
        Case {
            name: "cached, seen only here and absent: nothing to mount from",
            cached_seen: Some("fake.example/app"),
            learnt_in: None,
            here_size: None,
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: None,
            requests: &["HEAD d"],
            offered: false,
        },
        Case {
            name: "learnt from the tag's manifest, present",
            cached_seen: None,
            learnt_in: Some("app"),
            here_size: Some(0),
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: Some(LayerAction::Skipped),
            requests: &["HEAD d"],
            offered: false,
        },
        Case {
            name: "learnt from --cache-from in another repository: mounted, no HEAD",
            cached_seen: None,
            learnt_in: Some("base"),
            here_size: None,
            elsewhere: Some("base"),
            mount_from: &[],
            mounts_link: true,
            action: Some(LayerAction::Mounted),
            requests: &["MOUNT d from base"],
            offered: false,
        },
        Case {
            name: "learnt, gone from the registry: built",
            cached_seen: None,
            learnt_in: Some("app"),
            here_size: None,
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: None,
            requests: &["HEAD d"],
            offered: false,
        },
        Case {
            name: "known nowhere: no request at all",
            cached_seen: None,
            learnt_in: None,
            here_size: Some(0),
            elsewhere: None,
            mount_from: &[],
            mounts_link: true,
            action: None,
            requests: &[],
            offered: false,
        },
    ];
    for case in cases {
        let tmp = tempfile::tempdir().unwrap();
        let spec = test_plan::layer(2, false);
        let d = digests(&spec, Compression::default());
        let cache = LayerCache::at(tmp.path().into());
        if let Some(place) = case.cached_seen {
            cache
                .put_seen(&spec.key, &gzip_blob(&d), Some(place))
                .unwrap();
        }
        let mut learnt = LearntLayers::default();
        if let Some(repository) = case.learnt_in {
            learnt.add(
                spec.key.clone(),
                KnownLayer {
                    layer: gzip_blob(&d),
                    repository: repository.into(),
                },
            );
        }
        let mut remote = FakeRemote::new("app");
        if let Some(extra) = case.here_size {
            remote = remote.with_blob(&d.digest, (d.size as i64 + extra) as u64);
        }
        if let Some(other) = case.elsewhere {
            remote
                .elsewhere
                .insert(other.into(), [d.digest.clone()].into());
        }
        remote.mounts_link = case.mounts_link;
        let mut options = options(cache, learnt);
        options.mount_from = case.mount_from.iter().map(|s| s.to_string()).collect();

        let got = decide(&remote, &spec, &options).await;
        assert_eq!(
            got.report.as_ref().map(|r| r.action.clone()),
            case.action,
            "{}",
            case.name
        );
        let expected: Vec<String> = case
            .requests
            .iter()
            .map(|r| r.replace(" d", &format!(" {}", d.digest)))
            .collect();
        assert_eq!(got.requests, expected, "{}", case.name);
        assert_eq!(got.offered.is_some(), case.offered, "{}", case.name);
        if got.report.is_some() {
            // A reused blob is recorded, as seen here, for the next push.
            let entry = options.cache.entry(&spec.key).expect("recorded");
            assert_eq!(entry.layer.digest, d.digest, "{}", case.name);
            assert_eq!(entry.seen[0], "fake.example/app", "{}", case.name);
        }
    }
}

#[tokio::test]
async fn verify_takes_a_known_blob_only_when_rebuilding_gives_it() {
    let spec = test_plan::layer(3, false);
    let d = digests(&spec, Compression::default());
    let wrong = LayerDigests {
        digest: crate::digest::Digest::of(b"poison"),
        ..d.clone()
    };
    for (known, reused) in [(&d, true), (&wrong, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let cache = LayerCache::at(tmp.path().into());
        cache.put(&spec.key, &gzip_blob(known)).unwrap();
        let remote = FakeRemote::new("app").with_blob(&known.digest, known.size);
        let mut options = options(cache, Default::default());
        options.verify = true;
        let got = decide(&remote, &spec, &options).await;
        assert_eq!(got.report.is_some(), reused);
        if reused {
            assert!(got.warnings.is_empty());
        } else {
            assert_eq!(
                got.warnings,
                [Warning::VerifyMismatch {
                    layer: 1,
                    known: wrong.digest.clone()
                }]
            );
        }
    }
}

#[tokio::test]
async fn a_blob_of_another_compression_is_never_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = test_plan::layer(4, false);
    let zstd = Compression::Zstd {
        level: DEFAULT_ZSTD_LEVEL,
    };
    let d = digests(&spec, zstd);
    let mut learnt = LearntLayers::default();
    learnt.add(
        spec.key.clone(),
        KnownLayer {
            layer: KnownBlob::new(&d, zstd.media_type()),
            repository: "app".into(),
        },
    );
    let remote = FakeRemote::new("app").with_blob(&d.digest, d.size);
    let got = decide(
        &remote,
        &spec,
        &options(LayerCache::at(tmp.path().into()), learnt),
    )
    .await;
    assert!(got.report.is_none());
    assert!(got.requests.is_empty(), "{:?}", got.requests);
}
