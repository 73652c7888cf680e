//! The files of each folder of `src/` import each other one way, as the folders do
//! (`architecture.rs`): each file can be read knowing only the ones it names.

use crate::source_tree;

use std::collections::{BTreeMap, BTreeSet};

use source_tree::*;

// ---- Files within a folder ----
//
// The same one-way rule one floor down: within a folder (a module with a `mod.rs`), the files
// import each other without a cycle, so each file can be read knowing only the ones it names
// (the way `push/prepare.rs` once dispatched to the kinds of image, which imported its toolbox
// back, is what fails). A node is a file of the folder, or a subfolder as a whole; the edges:
// - a file naming `super::x`, `self::x` or `crate::folder::x` (plain or in a `{}` group, at
//   any depth of `super::`) points to `x` when `x` is a file or subfolder of the folder;
// - a name that is an item of `mod.rs` points to where the item lives: to the file `mod.rs`
//   re-exports it from (`pub use x::Item`: `mod.rs` is only a signpost on the way), else to
//   `mod` itself;
// - `mod.rs` has no edges of its own: it is the folder's face, which declares the files,
//   re-exports them, may define what they share and dispatch to them. A shared item that
//   grows its own dependencies belongs in a file of its own;
// - unit tests (from a file's first `#[cfg(test)]` on) are left out: there `super` is the file.

/// A file's code without its unit tests and comment lines.
fn code_of(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a path expression starting at `s` names, as segments: `a::{b, c::D}` gives
/// `[a, b]` and `[a, c, D]`.
fn path_segments(s: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut items = Vec::new();
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for item in items {
                for tail in path_segments(item) {
                    let mut p = segments.clone();
                    p.extend(tail);
                    out.push(p);
                }
            }
            return out;
        }
        let id = ident(rest);
        if id.is_empty() {
            break;
        }
        rest = &rest[id.len()..];
        segments.push(id);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    vec![segments]
}

/// Whether `code[..i]` ends where a path may begin (not inside an identifier or a longer path).
fn path_starts_at(code: &str, i: usize) -> bool {
    code[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
}

/// The module path of a file: `push/upload.rs` -> `[push, upload]`, `push/mod.rs` -> `[push]`.
fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every absolute path (from the crate root) a file's code names through `crate::`, `self::`
/// or `super::`.
fn absolute_paths(rel: &str, code: &str) -> Vec<Vec<String>> {
    let here = module_path(rel);
    let mut found = Vec::new();
    for prefix in ["crate::", "self::", "super::"] {
        for (i, _) in code.match_indices(prefix) {
            if !path_starts_at(code, i) {
                continue;
            }
            for segments in path_segments(&code[i..]) {
                let mut base: Vec<String> = Vec::new();
                let mut rest = segments.as_slice();
                match rest.first().map(String::as_str) {
                    Some("crate") => rest = &rest[1..],
                    Some("self") => {
                        base = here.clone();
                        rest = &rest[1..];
                    }
                    _ => {
                        base = here.clone();
                        while rest.first().is_some_and(|s| s == "super") {
                            base.pop();
                            rest = &rest[1..];
                        }
                    }
                }
                base.extend(rest.iter().cloned());
                found.push(base);
            }
        }
    }
    found
}

/// Folder (as `a/b`) -> file or subfolder -> the files or subfolders of the same folder it
/// names.
fn folder_graphs() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let files = sources();
    let folders: BTreeSet<String> = files
        .iter()
        .filter_map(|(rel, _)| rel.strip_suffix("/mod.rs").map(str::to_owned))
        .collect();
    let mut graphs = BTreeMap::new();
    for folder in &folders {
        let inside: Vec<&(String, String)> = files
            .iter()
            .filter(|(rel, _)| rel.starts_with(&format!("{folder}/")))
            .collect();
        // The folder's nodes: its files and subfolders, by the name `mod.rs` declares them.
        let node_of = |rel: &str| -> String {
            let below = &rel[folder.len() + 1..];
            match below.split_once('/') {
                Some((sub, _)) => sub.to_owned(),
                None => below.trim_end_matches(".rs").to_owned(),
            }
        };
        let nodes: BTreeSet<String> = inside.iter().map(|(rel, _)| node_of(rel)).collect();
        let mod_text = &files
            .iter()
            .find(|(rel, _)| *rel == format!("{folder}/mod.rs"))
            .unwrap()
            .1;
        // What `mod.rs` re-exports, and from which child.
        let mut reexported: BTreeMap<String, String> = BTreeMap::new();
        let is_reexport = |l: &str| {
            let l = l.trim_start();
            l.starts_with("pub use ") || l.starts_with("pub(crate) use ")
        };
        for line in code_of(mod_text).lines().filter(|l| is_reexport(l)) {
            let path = line.trim_start().split_once("use ").unwrap().1;
            for segments in path_segments(path) {
                if let (Some(child), Some(item)) = (segments.first(), segments.last()) {
                    if nodes.contains(child) {
                        reexported.insert(item.clone(), child.clone());
                    }
                }
            }
        }
        let folder_path = module_path(&format!("{folder}/mod.rs"));
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, text) in inside {
            let from = node_of(rel);
            if from == "mod" {
                graph.entry(from).or_default();
                continue;
            }
            let code = code_of(text);
            let mut targets = BTreeSet::new();
            for path in absolute_paths(rel, &code) {
                if path.len() <= folder_path.len() || path[..folder_path.len()] != folder_path[..] {
                    continue;
                }
                let name = &path[folder_path.len()];
                if nodes.contains(name) {
                    targets.insert(name.clone());
                } else if let Some(child) = reexported.get(name) {
                    targets.insert(child.clone());
                } else if !name.is_empty() {
                    targets.insert("mod".to_owned());
                }
            }
            targets.remove(&from);
            graph.entry(from).or_default().extend(targets);
        }
        graphs.insert(folder.clone(), graph);
    }
    graphs
}

#[test]
fn the_folder_graph_reads_groups_super_and_reexports() {
    let code = "use super::{a::X, b};\nuse super::super::top::Y;\nlet z = crate::push::c::f();";
    let paths = absolute_paths("push/d.rs", code);
    for expected in [
        &["push", "a", "X"][..],
        &["push", "b"],
        &["top", "Y"],
        &["push", "c", "f"],
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected:?} not in {paths:?}"
        );
    }
    // Inside `self::` of a mod.rs, and a `super` that is part of a longer path is not one.
    let paths = absolute_paths("push/mod.rs", "use self::e::Z; x::super::q;");
    assert_eq!(paths, [vec!["push", "e", "Z"]]);
}

#[test]
fn the_files_of_each_folder_import_each_other_without_a_cycle() {
    let mut cycles = Vec::new();
    for (folder, graph) in folder_graphs() {
        let on_cycle: Vec<&String> = graph
            .keys()
            .filter(|f| reachable(&graph, f).contains(*f))
            .collect();
        if !on_cycle.is_empty() {
            cycles.push(format!("src/{folder}/: {on_cycle:?} in {graph:?}"));
        }
    }
    assert!(
        cycles.is_empty(),
        "files on an import cycle:\n{}",
        cycles.join("\n")
    );
}
