//! Layer bytes are the contract: for every edge case of the fixtures, the tar nixpush writes is
//! byte for byte the one Python's tarfile writes under nixpkgs' rules (tests/oracle/layer_tar.py).

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::{fixture, nix_build, nix_closure, repo_root, require};
use nixpush::layer::{write_layer_tar, Owner};

/// Runs the oracle with `owner`'s settings and returns its tar bytes.
fn oracle_tar(paths: &[PathBuf], owner: &Owner) -> Vec<u8> {
    require("python3");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("layer.tar");
    let status = Command::new("python3")
        .arg(repo_root().join("tests/oracle/layer_tar.py"))
        .args(["--mtime", &owner.mtime.to_string()])
        .args(["--uid", &owner.uid.to_string()])
        .args(["--gid", &owner.gid.to_string()])
        .args(["--uname", &owner.uname])
        .args(["--gname", &owner.gname])
        .arg("--out")
        .arg(&out)
        .args(paths)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the oracle failed for {paths:?}");
    std::fs::read(out).unwrap()
}

fn assert_same_bytes(paths: &[PathBuf], owner: &Owner) {
    let expected = oracle_tar(paths, owner);
    let actual = write_layer_tar(paths, owner, Vec::new()).unwrap();
    if actual != expected {
        let at = actual
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(actual.len().min(expected.len()));
        let block = at / 512 * 512;
        panic!(
            "layer of {paths:?} differs from the oracle at byte {at} (lengths {} vs {}):\nnixpush: {:?}\noracle:  {:?}",
            actual.len(),
            expected.len(),
            String::from_utf8_lossy(&actual[block..(block + 512).min(actual.len())]),
            String::from_utf8_lossy(&expected[block..(block + 512).min(expected.len())]),
        );
    }
}

fn edge_closure() -> Vec<PathBuf> {
    nix_closure(&nix_build(&fixture("edge", "all")))
}

#[test]
fn each_edge_case_store_path_gives_the_oracle_bytes() {
    let closure = edge_closure();
    assert!(
        closure.len() >= 14,
        "the edge fixture closure is {closure:?}"
    );
    for path in &closure {
        assert_same_bytes(std::slice::from_ref(path), &Owner::default());
    }
}

#[test]
fn a_layer_of_many_store_paths_gives_the_oracle_bytes() {
    let mut closure = edge_closure();
    assert_same_bytes(&closure, &Owner::default());
    // The order given is the order written, whatever it is.
    closure.reverse();
    assert_same_bytes(&closure, &Owner::default());
}

#[test]
fn non_default_owners_and_long_or_non_ascii_names_follow_the_pax_rules() {
    let closure = edge_closure();
    let owners = [
        Owner {
            mtime: 1_700_000_000,
            uid: 1000,
            gid: 100,
            uname: "app".into(),
            gname: "users".into(),
        },
        // Over 32 bytes: a PAX uname; not ASCII: a PAX gname.
        Owner {
            mtime: 1,
            uid: 0,
            gid: 0,
            uname: "a-user-name-that-is-longer-than-32-bytes".into(),
            gname: "grüppe".into(),
        },
        // Too large for the octal uid/gid/mtime fields: PAX numbers, 0 in the header.
        Owner {
            mtime: 8u64.pow(11),
            uid: 8u64.pow(7),
            gid: 8u64.pow(7) + 1,
            uname: "root".into(),
            gname: "root".into(),
        },
    ];
    for owner in &owners {
        assert_same_bytes(&closure, owner);
    }
}

#[test]
fn an_unreadable_path_is_an_error_naming_it() {
    let missing = PathBuf::from("/nix/store/00000000000000000000000000000000-missing");
    let err = write_layer_tar(
        std::slice::from_ref(&missing),
        &Owner::default(),
        Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
}

#[test]
fn the_oracle_still_writes_the_bytes_it_wrote_when_the_fixtures_were_made() {
    // chain-a is two small text files; its store path depends only on the flake's text. This
    // digest came from the Python oracle, not from nixpush: if it changes, the oracle (Python's
    // tarfile) or the fixture changed, and every other comparison here needs a fresh look.
    let closure = edge_closure();
    let chain_a = closure
        .iter()
        .find(|p| p.to_str().unwrap().ends_with("-chain-a"))
        .unwrap();
    assert_eq!(
        common::oracle_diff_id(std::slice::from_ref(chain_a), &[]),
        PINNED_CHAIN_A_DIFF_ID
    );
}

const PINNED_CHAIN_A_DIFF_ID: &str =
    "sha256:6e36bcb056cce31598bbeda8a8d9fc046cc9f1fb1d0ed6ae43575669a0afd1a1";
