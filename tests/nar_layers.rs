//! A layer made from NARs (a binary cache) is byte for byte the layer made from the local store:
//! every edge case of the fixtures, alone and all in one layer, with the default and odd owners,
//! under both eras' `/nix` modes, from a cache in each NAR compression Nix writes. The cache is
//! written by `nix copy` itself; the paths stay in the local store, so both sources are at hand.

use crate::common;

use std::path::PathBuf;

use common::binary_cache::{BinaryCache, CopyOptions, NarCompression, SigningKey};
use common::{fixture, nix_build, nix_closure};
use nixpush::binary_cache::{BinaryCaches, SubstituterSettings};
use nixpush::layer::{
    build_layer, Compression, LayerContent, LayerDigests, LayerKey, LayerSpec, Owner, StoreSource,
    NIX_DIRS_MODE, OLD_NIX_DIRS_MODE,
};
use nixpush::registry::RetryPolicy;

fn layer(paths: &[PathBuf], owner: &Owner, mode: u32, source: &StoreSource) -> LayerDigests {
    let spec = LayerSpec {
        content: LayerContent::StorePaths {
            paths: paths.to_vec(),
            owner: owner.clone(),
            nix_dirs_mode: mode,
            source: source.clone(),
        },
        key: LayerKey::of_entries(&[], Compression::default()),
        nar_size: 0,
    };
    build_layer(&spec, Compression::default(), std::io::sink())
        .unwrap_or_else(|e| panic!("layer of {paths:?}: {e:?}"))
        .1
}

#[test]
fn every_edge_case_from_nars_is_the_local_store_layer() {
    let closure = nix_closure(&nix_build(&fixture("edge", "all")));
    let key = SigningKey::generate("nar-layers-1");
    let odd = Owner {
        mtime: 1_700_000_000,
        uid: 1000,
        gid: 100,
        uname: "a-user-name-longer-than-thirty-two-bytes".into(),
        gname: "users".into(),
    };
    for compression in NarCompression::ALL {
        let cache = BinaryCache::new();
        cache.copy(
            &closure,
            &CopyOptions {
                compression,
                ..CopyOptions::signed(&key)
            },
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let nars = runtime.block_on(async {
            let settings = SubstituterSettings {
                urls: vec![cache.file_url()],
                trusted_public_keys: vec![key.public.clone()],
                check_sigs: true,
            };
            let tls = Default::default();
            let caches = BinaryCaches::open(&settings, RetryPolicy::default(), &tls, &closure[0])
                .await
                .unwrap();
            let cached = caches.closure(&closure).await.unwrap();
            assert_eq!(
                cached.closure.paths.keys().cloned().collect::<Vec<_>>(),
                closure,
                "the narinfos name the closure Nix names"
            );
            cached.nars(Default::default())
        });
        let nars = StoreSource::Nars(nars);
        // Each case alone, then all of them in one layer.
        let mut sets: Vec<Vec<PathBuf>> = closure.iter().map(|p| vec![p.clone()]).collect();
        sets.push(closure.clone());
        for paths in &sets {
            for (owner, mode) in [
                (Owner::default(), NIX_DIRS_MODE),
                (odd.clone(), OLD_NIX_DIRS_MODE),
            ] {
                let local = layer(paths, &owner, mode, &StoreSource::Local);
                // Built on a blocking thread, as pushes build layers: NARs stream in from the
                // runtime.
                let from_nars = runtime.block_on({
                    let (paths, owner, nars) = (paths.clone(), owner.clone(), nars.clone());
                    async move {
                        tokio::task::spawn_blocking(move || layer(&paths, &owner, mode, &nars))
                            .await
                            .unwrap()
                    }
                });
                assert_eq!(
                    from_nars, local,
                    "{paths:?} from {compression:?} NARs, owner {owner:?}"
                );
            }
        }
    }
}
