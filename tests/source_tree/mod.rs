//! The source tree as the layout checks read it: every file of `src/`, `crates/layer/src/` and
//! `tests/` with its text, and reachability in an import graph. Shared by `architecture.rs` (the
//! folders) and `file_cycles.rs` (the files within a folder).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a source or test file may be, its unit tests included.
pub const MAX_LINES: usize = 500;

pub fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The sources of nixpush-layer (the layer bytes, compiled optimised), whose modules the
/// library re-exports under the same names (`crate::layer`, `crate::digest`, ...).
pub fn layer_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/layer/src")
}

/// The end-to-end tests and their test bed.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file of both crates, relative to its crate's `src/`: nixpush's, then
/// nixpush-layer's (their module names do not overlap, so one graph holds both; only `lib.rs`
/// is in both).
pub fn sources() -> Vec<(String, String)> {
    [src(), layer_src()]
        .iter()
        .flat_map(|root| files_under(root))
        .collect()
}

/// Every `.rs` file under `root`, relative to it, with its text, in path order.
fn files_under(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Everything `from` reaches, by any path.
pub fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(m) = todo.pop() {
        for d in graph.get(&m).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

/// Every `.rs` file under `tests/`, relative to it, with its text.
pub fn test_files() -> Vec<(String, String)> {
    files_under(&tests_dir())
}

/// The identifier `s` starts with.
pub fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}
