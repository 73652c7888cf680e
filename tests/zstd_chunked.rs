//! zstd:chunked layers (`--compression zstd:chunked`) for fleets: a node with partial pulls on
//! (podman with containers/storage's `enable_partial_images`, tests/common/partial_pulls.rs)
//! that holds version 1 of a large store path pulls version 2, rebuilt under a new hash with
//! one file changed, by fetching that file's frame and the table of contents; with gzip it
//! fetches the whole layer. What the registry served is read from its access log. The layer
//! is plain zstd to every other reader: its tar is the gzip layer's (the diff_ids and the image
//! ID are the same), the Python tarfile oracle's, its tar-split the one vbatts/tar-split makes
//! of that tar; containerd pulls and runs it; the same bytes on one core and two and from a
//! binary cache.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::binary_cache::assert_not_in_store;
use common::cached_closure::*;
use common::containerd::Containerd;
use common::partial_pulls::{file_digests, FleetNode};
use common::*;

/// Pushes `installable` to `image` with `flags`: the `--json` document.
fn push(installable: &str, image: &str, flags: &[&str]) -> serde_json::Value {
    let mut args = vec![
        installable.to_owned(),
        image.to_owned(),
        "--json".to_owned(),
    ];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    push_json(&Nixpush::new(), &args)
}

/// The image's layer holding `store_path`: its digest, size and diff_id.
fn layer_of(json: &serde_json::Value, store_path: &Path) -> (String, u64, String) {
    let layer = json["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["storePaths"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == store_path.to_str().unwrap()))
        })
        .unwrap_or_else(|| panic!("no layer of {}: {json}", store_path.display()));
    (
        layer["digest"].as_str().unwrap().to_owned(),
        layer["size"].as_u64().unwrap(),
        layer["diffId"].as_str().unwrap().to_owned(),
    )
}

/// What the registry served of blob `digest`: every answer partial (206), the bytes summed.
fn served_in_ranges(registry: &Registry, digest: &str) -> u64 {
    let gets = registry.blob_gets(digest);
    assert!(!gets.is_empty(), "{digest} was fetched");
    assert!(
        gets.iter().all(|(status, _)| *status == 206),
        "only ranges of {digest}: {gets:?}"
    );
    gets.iter().map(|(_, bytes)| bytes).sum()
}

#[test]
fn a_fleet_node_pulls_only_the_changed_file_of_a_rebuilt_store_path() {
    let registry = Registry::start();
    let (v1, v2) = (fixture("demo", "fleet-v1"), fixture("demo", "fleet-v2"));
    let (data_v1, data_v2) = (nix_build(&v1).remove(0), nix_build(&v2).remove(0));
    assert_ne!(data_v1, data_v2, "rebuilt under a new hash");
    let entrypoint = |data: &Path| format!("{}/bin/fleet", data.display());
    let image = |repo: &str, tag: &str| format!("{}/fleet/{repo}:{tag}", registry.host());
    let mut layers = Vec::new();
    for compression in ["zstd:chunked", "gzip"] {
        let repo = compression.replace(':', "-");
        for (installable, data, tag) in [(&v1, &data_v1, "1"), (&v2, &data_v2, "2")] {
            let json = push(
                installable,
                &image(&repo, tag),
                &[
                    "--compression",
                    compression,
                    "--entrypoint",
                    &entrypoint(data),
                ],
            );
            layers.push(layer_of(&json, data));
        }
    }
    let (chunked_v2, gzip_v2) = (&layers[1], &layers[3]);
    assert!(chunked_v2.1 > 45_000_000, "a large layer: {chunked_v2:?}");
    assert_eq!(chunked_v2.2, gzip_v2.2, "the same tar");

    let node = FleetNode::new();
    node.pull(&image("zstd-chunked", "1"));
    node.pull(&image("zstd-chunked", "2"));
    let fetched = served_in_ranges(&registry, &chunked_v2.0);
    println!("zstd:chunked: {fetched} of {} bytes", chunked_v2.1);
    assert!(
        fetched * 20 < chunked_v2.1,
        "under 5% of the layer: {fetched} of {} bytes",
        chunked_v2.1
    );
    assert!(
        fetched > 170_000,
        "the changed file's frame at least: {fetched}"
    );
    // What the node holds is the store path, file for file.
    assert_eq!(
        node.file_digests(&image("zstd-chunked", "2"), &data_v2),
        file_digests(&data_v2)
    );
    assert_eq!(node.run(&image("zstd-chunked", "2")), "fleet data\n");

    // The same pair with gzip, on a node of its own (the images have the same IDs, and podman
    // 4.3 keeps a partially pulled layer under another ID): the whole layer again.
    let node = FleetNode::new();
    node.pull(&image("gzip", "1"));
    node.pull(&image("gzip", "2"));
    let gzip_fetched: u64 = registry.blob_gets(&gzip_v2.0).iter().map(|g| g.1).sum();
    println!("gzip: {gzip_fetched} of {} bytes", gzip_v2.1);
    assert!(gzip_fetched >= gzip_v2.1, "{gzip_fetched} of {}", gzip_v2.1);
}

/// `zstd -dc` of a blob of `copy`: its tar, written beside the layout.
fn decompressed(copy: &OciCopy, digest: &str) -> PathBuf {
    let tar = copy
        .layout
        .with_file_name(format!("{}.tar", &digest[7..19]));
    let out = run_ok(
        Command::new("zstd")
            .args(["-q", "-d", "-f", "-o"])
            .arg(&tar)
            .arg(oci_blob(&copy.layout, digest)),
        "zstd -d",
    );
    assert!(out.status.success());
    tar
}

/// `tar-split disasm` of `tar`: its JSON lines, as vbatts/tar-split writes them.
fn tar_split_disasm(tar: &Path) -> Vec<u8> {
    let packed = tar.with_extension("json.gz");
    run_ok(
        Command::new("tar-split")
            .args(["disasm", "--no-stdout", "--output"])
            .arg(&packed)
            .arg(tar),
        "tar-split disasm",
    );
    let mut lines = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&packed).unwrap()),
        &mut lines,
    )
    .unwrap();
    lines
}

/// The entries of a tar-split, as JSON values; segments with nothing in them (tar-split
/// versions differ in writing one at the end) left out.
fn tar_split_entries(lines: &[u8]) -> Vec<serde_json::Value> {
    lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap())
        .filter(|e| !(e["type"] == 2 && e["payload"] == ""))
        .collect()
}

#[test]
fn a_zstd_chunked_layer_is_plain_zstd_of_the_gzip_layers_tar_on_any_core_count() {
    let registry = Registry::start();
    let installable = fixture("demo", "app");
    let push_as = |repo: &str, flags: &[&str]| {
        push(
            &installable,
            &format!("{}/{repo}:v1", registry.host()),
            flags,
        )
    };
    let chunked = push_as("chunked", &["--compression", "zstd:chunked"]);
    let gzip = push_as("gzip", &[]);
    // The image ID does not depend on the compression.
    assert_eq!(
        chunked["images"][0]["configDigest"],
        gzip["images"][0]["configDigest"]
    );
    // From an empty cache, the tag's manifest names each layer with its table of contents.
    let again = push_as("chunked", &["--compression", "zstd:chunked"]);
    assert_eq!(again["images"][0]["unchanged"], true, "{again}");

    // skopeo copies it; each blob decompresses to its diff_id, and to the oracle's tar.
    let copy = OciCopy::pull(&format!("{}/chunked:v1", registry.host()));
    let diff_ids = copy.config()["rootfs"]["diff_ids"].clone();
    for (i, layer) in copy.manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let annotations = &layer["annotations"];
        for key in [
            "io.containers.zstd-chunked.manifest-checksum",
            "io.containers.zstd-chunked.manifest-position",
            "io.github.containers.zstd-chunked.manifest-checksum",
            "io.github.containers.zstd-chunked.manifest-position",
            "io.github.containers.zstd-chunked.tarsplit-position",
        ] {
            assert!(annotations[key].is_string(), "{key}: {layer}");
        }
        let tar = decompressed(&copy, layer["digest"].as_str().unwrap());
        // The tar-split is the one vbatts/tar-split itself makes of the layer's tar.
        let blob =
            std::fs::read(oci_blob(&copy.layout, layer["digest"].as_str().unwrap())).unwrap();
        let place = annotations["io.github.containers.zstd-chunked.tarsplit-position"]
            .as_str()
            .unwrap();
        let place: Vec<usize> = place.split(':').map(|n| n.parse().unwrap()).collect();
        let ours = zstd::stream::decode_all(&blob[place[0]..place[0] + place[1]]).unwrap();
        assert_eq!(ours.len(), place[2]);
        assert_eq!(
            tar_split_entries(&ours),
            tar_split_entries(&tar_split_disasm(&tar))
        );
        let check = check_layer(&tar);
        assert_eq!(check["diff_id"], diff_ids[i], "{check}");
        if !check["expected"].is_null() {
            assert_eq!(
                check["diff_id"], check["expected"],
                "the oracle's tar: {check}"
            );
        }
    }

    // containerd pulls it and runs it.
    let containerd = Containerd::start();
    let image = format!("{}/chunked:v1", registry.host());
    containerd.pull(&image);
    let app = nix_build(&installable).remove(0);
    let command = format!("{}/bin/app", app.display());
    assert_eq!(containerd.run(&image, &[&command]), "hello from nixpush\n");

    // One core and one job, or both cores: the same blobs.
    let cache = tempfile::tempdir().unwrap();
    let one_core = run_ok(
        nix_env(&mut Command::new("taskset"))
            .args(["-c", "0", env!("CARGO_BIN_EXE_nixpush")])
            .arg(&installable)
            .arg(format!("{}/one-core:v1", registry.host()))
            .args(["--compression", "zstd:chunked", "--jobs", "1", "--json"])
            .env("NIXPUSH_CACHE_DIR", cache.path()),
        "nixpush on one core",
    );
    let one_core: serde_json::Value = serde_json::from_slice(&one_core.stdout).unwrap();
    assert_eq!(
        one_core["images"][0]["manifestDigest"],
        chunked["images"][0]["manifestDigest"]
    );
}

#[test]
fn a_zstd_chunked_layer_from_a_binary_cache_is_the_one_from_the_local_store() {
    let app = Built::attr("cached-26");
    let entrypoint = format!("{}/bin/app", app.top());
    let flags = [
        "--compression",
        "zstd:chunked",
        "--entrypoint",
        entrypoint.as_str(),
    ];
    let (_local_registry, _, local) = push_from_the_local_store(&app, &flags);
    let cached = FromCache::only_there(&app);
    let json = cached.push(app.top(), "cache/chunked:v1", &flags);
    assert_eq!(image_facts(&json), image_facts(&local));
    let pinned = json["images"][0]["reference"].as_str().unwrap();
    assert_eq!(podman_run(pinned, &[], &[]), "hello from cached app 26\n");
    assert_not_in_store(&app.closure);
}
